"""Shared fixtures: Hydra's real config composed with test overrides, and runs in tmp dirs."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import DictConfig

from tests.helpers import SMOKE, compose_cfg

os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.pop("WANDB_API_KEY", None)  # tests never log online


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    def make(*overrides: str, run: str = "run") -> DictConfig:
        return compose_cfg(tmp_path / run, [*SMOKE, *overrides])

    return make


@pytest.fixture
def initial_weights(monkeypatch):
    """The model's weights as built, before any training step."""
    from delbind.arms import transformer

    captured = {}
    real = transformer.load_tokenizer_and_model

    def capture(cfg):
        tok, model = real(cfg)
        captured.update({k: v.detach().clone() for k, v in model.state_dict().items()})
        return tok, model

    monkeypatch.setattr(transformer, "load_tokenizer_and_model", capture)
    return captured
