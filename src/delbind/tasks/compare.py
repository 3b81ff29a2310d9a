"""Compare runs: every metrics.json below the given dirs -> comparison.{md,csv,png} (``python scripts/compare.py``)."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from delbind.comparison import to_markdown, write_comparison


def run(cfg: DictConfig) -> pd.DataFrame:
    """``cfg.dirs``: run dirs, sweep dirs or metrics.json files; ``cfg.out``: where (default: the single dir
    given, else ``<outputs_root>/comparisons/<time>``). Prints the table; returns the summary."""
    dirs = [Path(d) for d in cfg.dirs]
    out = cfg.get("out")
    if out is None:
        one_dir = len(dirs) == 1 and dirs[0].is_dir()
        out = dirs[0] if one_dir else Path(cfg.paths.outputs_root) / "comparisons" / time.strftime("%Y-%m-%d_%H-%M-%S")
    summary = write_comparison(dirs, Path(out), cfg.get("wandb_project"))
    print(to_markdown(summary))
    print(f"written: {out}/comparison.md, comparison.csv, comparison.png")
    return summary
