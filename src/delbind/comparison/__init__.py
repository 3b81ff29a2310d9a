"""Frozen vs fine-tuned vs baselines: metrics.json + predictions of many runs -> comparison.{md,csv,png}.

runs (read and label runs) -> pooled (out-of-fold figures per row) -> verdicts (paired tests against a reference)
-> tables (what a reader sees). This module writes them; delbind.callbacks refreshes them during a sweep.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from delbind.comparison.pooled import pooled_predictions, summarize
from delbind.comparison.runs import COST, LABELS, QUALITY, SELECTION, VERDICT, load_runs, per_unit, read_runs
from delbind.comparison.tables import paired_markdown, plot, to_markdown
from delbind.comparison.verdicts import paired_verdicts, reference_row, resolvable_difference, resolve_arm
from delbind.io import atomic_write, write_text
from delbind.rundirs import Skipped, left_out_note, metrics_files
from delbind.tracking import log_comparison, logged_to_wandb

__all__ = [
    "COST", "LABELS", "QUALITY", "SELECTION", "VERDICT", "Comparison", "compare", "load_runs",
    "metrics_files", "paired_verdicts", "per_unit", "reference_row", "resolve_arm", "summarize", "write_comparison",
]  # fmt: skip


@dataclass
class Comparison:
    """The runs, their per-row summary, the paired verdicts against the reference, and the settings behind them."""

    runs: pd.DataFrame
    summary: pd.DataFrame
    pairs: pd.DataFrame
    pooled: dict[tuple[str, str], pd.DataFrame]  # (row, repeat) -> pooled out-of-fold test predictions
    chosen: bool  # the reference is the val-best row (not given)
    margin: float
    alpha: float
    skipped: list[Skipped] = field(default_factory=list)  # run dirs left out: unreadable or unfinished
    twins: str | None = None  # rows were paired with their twins on this model, not against one reference

    @property
    def resolvable(self) -> float:
        return resolvable_difference(self.pairs, alpha=self.alpha)

    def markdown(self) -> str:
        paired = paired_markdown(self.pairs, self.chosen, self.margin, self.alpha, self.resolvable, self.twins)
        note = left_out_note(self.skipped)
        return to_markdown(self.summary) + ("\n" + paired if paired else "") + ("\n" + note if note else "")


def compare(
    paths: Iterable[Path | str] | pd.DataFrame,
    reference: str | None = None,
    margin: float = 0.02,
    alpha: float = 0.05,
    n_bootstrap: int = 1000,
    strict: bool = False,
    labels: bool = True,
    twins: str | None = None,
) -> Comparison:
    """Read the runs below ``paths`` (or take loaded ``runs``), summarize them and pair them against ``reference``
    (``twins``, a model name: each row with the same recipe on that trunk instead). Unreadable or unfinished run dirs
    are left out and listed (``strict``: an error); ``labels=False``: rows by recipe alone (``read_runs``)."""
    if isinstance(paths, pd.DataFrame):
        runs, skipped = paths, []
    else:
        runs, skipped = read_runs(paths, strict=strict, labels=labels)
    pooled = pooled_predictions(runs)
    summary = summarize(runs, n_bootstrap=n_bootstrap, pooled=pooled)
    pairs = paired_verdicts(runs, summary, pooled, reference, margin, alpha, n_bootstrap=2 * n_bootstrap, twins=twins)
    return Comparison(runs, summary, pairs, pooled, reference is None and twins is None, margin, alpha, skipped, twins)


def write_comparison(
    paths: Iterable[Path | str],
    out_dir: Path | str,
    wandb_project: str | None = "delbind",
    reference: str | None = None,
    margin: float = 0.02,
    strict: bool = False,
    labels: bool = True,
    twins: str | None = None,
) -> Comparison:
    """Write comparison.md / .csv / .png and comparison_paired.csv to ``out_dir``; log the table to wandb if the
    runs used it (and ``wandb_project`` is given)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = compare(paths, reference, margin, strict=strict, labels=labels, twins=twins)
    write_text(out_dir / "comparison.md", result.markdown())
    for name, frame in (("comparison.csv", result.summary), ("comparison_paired.csv", result.pairs)):
        with atomic_write(out_dir / name) as tmp:
            frame.to_csv(tmp, index=False)
    plot(result.summary, out_dir / "comparison.png")
    if wandb_project and logged_to_wandb(result.runs["run_dir"]):
        log_comparison(result.summary, out_dir, wandb_project, {"comparison_plot": out_dir / "comparison.png"})
    return result
