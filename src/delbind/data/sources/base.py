"""What a data source is: a builder of the labelled, split dataset, and optionally external eval sets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from omegaconf import DictConfig

from delbind.errors import DataError
from delbind.registry import Registry

Stats = dict[str, Any]


@dataclass(frozen=True)
class DataSource:
    """``build(data_cfg, seed) -> (frame, stats)``; ``external(data_cfg, stats) -> {name: frame}`` scored after
    training (never trained on), e.g. KinDEL's held-out Kd sets."""

    build: Callable[[DictConfig, int], tuple[pd.DataFrame, Stats]]
    external: Callable[[DictConfig, Stats], dict[str, pd.DataFrame]] | None = None


SOURCES: Registry[DataSource] = Registry("data source", error=DataError)
