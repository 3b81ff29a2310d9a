"""What an arm is: data + config in, P(binder) per eval set + facts about its cost out; registered by family.

An arm (``finetune``, ``frozen``, ``ecfp_rf``, ...) is named by ``cfg.arm``; its family (``cfg.arm_family``:
``transformer``, ``baseline``) names the module that runs it. Adding an arm of an existing family is a yaml;
adding a family is a module that registers one function here and a yaml whose ``family`` names it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from delbind.registry import Registry

VAL_SETS = ("val_easy", "val_hard")
TEST_SETS = ("test_easy", "test_hard")


@dataclass(frozen=True)
class ArmInputs:
    """Everything an arm may use. ``df`` holds every row (train / val / test / external, in that order);
    ``frames`` are the eval sets by name, indexed into ``df``."""

    cfg: DictConfig
    df: pd.DataFrame
    frames: dict[str, pd.DataFrame]
    run_dir: Path
    precision: str
    report_to: list[str] = field(default_factory=list)
    resume_from: str | None = None

    @property
    def train_rows(self) -> np.ndarray:
        return np.flatnonzero(self.df["split"] == "train")


@dataclass
class ArmResult:
    """``scores``: P(binder) for every eval set in ``frames``, in row order; ``facts``: flat metrics.json entries
    (costs, parameter counts, best val metrics); ``model``: what was trained on, for the comparison."""

    model: str
    scores: dict[str, np.ndarray]
    facts: dict[str, Any]


Arm = Callable[[ArmInputs], ArmResult]
ARM_FAMILIES: Registry[Arm] = Registry("arm family")
