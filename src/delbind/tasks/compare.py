"""Compare runs: every metrics.json below the given dirs -> comparison.{md,csv,png} (``python scripts/compare.py``)."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from delbind.comparison import write_comparison


def output_dir(cfg: DictConfig, folder: str) -> Path:
    """``cfg.out``, else the single dir given, else ``<outputs_root>/<folder>/<time>``."""
    dirs = [Path(d) for d in cfg.dirs]
    if cfg.get("out") is not None:
        return Path(cfg.out)
    if len(dirs) == 1 and dirs[0].is_dir():
        return dirs[0]
    return Path(cfg.paths.outputs_root) / folder / time.strftime("%Y-%m-%d_%H-%M-%S")


def run(cfg: DictConfig) -> pd.DataFrame:
    """``cfg.dirs``: run dirs, sweep dirs or metrics.json files; ``cfg.out``: where (default: the single dir
    given, else ``<outputs_root>/comparisons/<time>``); ``cfg.reference``: the row the others are paired against
    (None: the val-best row); ``cfg.twins``: a model name, to pair each row with the same recipe on that trunk instead;
    ``cfg.margin``: the practical margin of the verdicts. Prints the tables; returns the
    summary."""
    out = output_dir(cfg, "comparisons")
    dirs = [Path(d) for d in cfg.dirs]
    written = write_comparison(dirs, out, cfg.get("wandb_project"), cfg.get("reference"), cfg.margin, cfg.strict,
                               cfg.get("labels", True), cfg.get("twins"))  # fmt: skip
    print((out / "comparison.md").read_text())
    print(f"written: {out}/comparison.md, comparison.csv, comparison_paired.csv, comparison.png")
    return written.summary
