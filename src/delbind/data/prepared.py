"""Prepared datasets: what scripts/prepare_data.py writes, and a train run reads back with ``data.prepared``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig

from delbind.data.splits import SPLITS
from delbind.errors import DataError
from delbind.io import atomic_write, write_json


def write_dataset(out_dir: Path, df: pd.DataFrame, stats: dict[str, Any], external: dict[str, pd.DataFrame]) -> None:
    """``<out_dir>/{train,val,test}.parquet``, ``stats.json`` and ``external/<name>.parquet``."""
    write_external(out_dir, external)
    for split in SPLITS:
        with atomic_write(out_dir / f"{split}.parquet") as tmp:
            df[df["split"] == split].to_parquet(tmp, index=False)
    write_json(out_dir / "stats.json", stats)


def write_external(out_dir: Path, external: dict[str, pd.DataFrame]) -> None:
    """``<out_dir>/external/<name>.parquet``: the external sets with their own columns (KinDEL: ``kd``)."""
    (out_dir / "external").mkdir(parents=True, exist_ok=True)
    for name, frame in external.items():
        with atomic_write(out_dir / "external" / f"{name}.parquet") as tmp:
            frame.to_parquet(tmp, index=False)


def prepared_dir(path: str) -> Path:
    """A prepare_data run dir or its ``dataset/`` folder."""
    folder = Path(path).expanduser()
    folder = folder / "dataset" if (folder / "dataset" / "train.parquet").is_file() else folder
    if not all((folder / f"{split}.parquet").is_file() for split in SPLITS):
        raise DataError(
            f"data.prepared={path} holds no prepared dataset ({', '.join(s + '.parquet' for s in SPLITS)}): "
            "give the run dir of scripts/prepare_data.py"
        )
    return folder


def read_prepared(cfg: DictConfig) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The dataset written by scripts/prepare_data.py, checked against this run's data source."""
    folder = prepared_dir(cfg.prepared)
    stats = json.loads((folder / "stats.json").read_text()) if (folder / "stats.json").is_file() else {}
    if stats.get("source", cfg.name) != cfg.name:
        raise DataError(
            f"data.prepared={cfg.prepared} was built from data={stats['source']}, this run has data={cfg.name}: "
            f"add data={stats['source']} to the command"
        )
    df = pd.concat([pd.read_parquet(folder / f"{split}.parquet") for split in SPLITS], ignore_index=True)
    return df, {**stats, "prepared_from": str(folder)}


def read_prepared_external(cfg: DictConfig) -> dict[str, pd.DataFrame]:
    """The external eval sets written beside a prepared dataset."""
    folder = prepared_dir(cfg.prepared) / "external"
    return {p.stem: pd.read_parquet(p) for p in sorted(folder.glob("*.parquet"))}
