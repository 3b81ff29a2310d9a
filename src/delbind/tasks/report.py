"""The course report: every run below the given dirs -> report.html and report.ipynb (``python scripts/report.py``)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from delbind.report import write_report
from delbind.tasks.compare import output_dir


def run(cfg: DictConfig) -> list[Path]:
    """``cfg.dirs``: run dirs, sweep dirs or metrics.json files; ``cfg.out``: where (default: the single dir
    given, else ``<outputs_root>/reports/<time>``). Returns the files written."""
    out = output_dir(cfg, "reports")
    files = write_report(list(cfg.dirs), out, cfg.get("wandb_project"), cfg.get("reference"), cfg.margin,
                         cfg.strict, cfg.get("labels", True))  # fmt: skip
    print("written: " + ", ".join(str(f) for f in files))
    return files
