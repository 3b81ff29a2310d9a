"""The A/A study: seeds of one recipe compared with each other -> aa.md + CSVs (``python scripts/aa.py``)."""

from __future__ import annotations

import pandas as pd
from omegaconf import DictConfig

from delbind.comparison.aa import write_aa
from delbind.tasks.compare import output_dir


def run(cfg: DictConfig) -> pd.DataFrame:
    """``cfg.dirs``: runs of several init seeds per recipe on the same folds; writes aa.md and aa_*.csv to ``cfg.out``
    (default: the single dir given, else ``<outputs_root>/aa/<time>``), prints aa.md; returns the spread table."""
    out = output_dir(cfg, "aa")
    result = write_aa(cfg.dirs, out, cfg.get("reference"), cfg.margin, strict=cfg.strict)
    print((out / "aa.md").read_text())
    print(f"written: {out}/aa.md, aa_spread.csv, aa_pairs.csv, aa_splits.csv, aa_power.csv")
    return result["spread"]
