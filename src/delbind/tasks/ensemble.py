"""Seed ensembles: runs that differ only in ``seed`` -> one run dir of mean scores (``scripts/ensemble.py``)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from delbind.ensemble import write_ensembles
from delbind.tasks.compare import output_dir


def run(cfg: DictConfig) -> list[Path]:
    """``cfg.dirs``: run dirs, sweep dirs or metrics.json files; ``cfg.out``: where the ensemble run dirs go
    (default: the single dir given, else ``<outputs_root>/ensembles/<time>``). Returns the ensemble dirs."""
    written = write_ensembles(
        list(cfg.dirs), output_dir(cfg, "ensembles"), cfg.eval.n_bootstrap, cfg.eval.confidence, cfg.strict
    )
    print("written: " + ", ".join(str(d) for d in written))
    print("compare them (and their members): python scripts/compare.py " + " ".join(str(d) for d in written))
    return written
