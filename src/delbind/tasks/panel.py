"""A panel of targets: runs below the given dirs -> panel.{md,csv} (``python scripts/panel.py``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from delbind.comparison.panel import write_panel
from delbind.tasks.compare import output_dir


def run(cfg: DictConfig) -> pd.DataFrame:
    """``cfg.dirs``: sweep dirs; ``cfg.out``: where (default: the single dir given, else ``<outputs_root>/panels/
    <time>``). Prints panel.md; returns the per target x arm table."""
    out = output_dir(cfg, "panels")
    out.mkdir(parents=True, exist_ok=True)
    table = write_panel([Path(d) for d in cfg.dirs], out, cfg.development, cfg.reference, cfg.margin, cfg.strict,
                        cfg.get("twins"))  # fmt: skip
    print((out / "panel.md").read_text())
    print(f"written: {out}/panel.md, panel.csv, panel_tally.csv")
    return table
