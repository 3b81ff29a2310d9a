"""Shared fixtures: Hydra's real config composed with test overrides, and runs in tmp dirs."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.pop("WANDB_API_KEY", None)  # tests never log online

SMOKE = ["model=tiny", "debug=smoke", "logger=none"]


def compose_cfg(run_dir: Path, overrides: list[str]) -> DictConfig:
    """The real train config, with the run dir and outputs root pointed at ``run_dir``."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(
            "train",
            overrides=[f"paths.output_dir={run_dir}", f"paths.outputs_root={run_dir.parent}", *overrides],
        )


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    def make(*overrides: str, run: str = "run") -> DictConfig:
        return compose_cfg(tmp_path / run, [*SMOKE, *overrides])

    return make
