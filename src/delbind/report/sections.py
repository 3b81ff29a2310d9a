"""The report's sections, in order. Each turns a Report into blocks (markdown text or a Figure) that both the
HTML page and the notebook render, so the two always say the same thing."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from matplotlib.figure import Figure

from delbind.report import answers, figures
from delbind.report.data import Report, setup_rows, where

Block = str | Figure


def _table(frame: pd.DataFrame) -> str:
    """A markdown table (pipes in cells escaped)."""
    cells = frame.astype(str).apply(lambda col: col.str.replace("|", "\\|"))
    header = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns)
    return header + "".join("\n| " + " | ".join(row) + " |" for row in cells.itertuples(index=False))


def _figure_or(fig: Figure | None, note: str) -> list[Block]:
    return [fig] if fig is not None else [note]


def setup(report: Report) -> list[Block]:
    dirs = ", ".join(f"`{d}`" for d in report.shown_dirs)
    left = report.comparison.skipped
    note = f" {len(left)} run dir(s) left out, unreadable or unfinished (listed under the comparison)." if left else ""
    return [f"{len(report.runs)} runs read from {dirs}.{note}", _table(setup_rows(report))]


def drawn_from(report: Report) -> str:
    """Which run of each arm the curves come from: one matched fold for all, or (none shared) each arm's first."""
    match = report.matched_unit()
    if match is not None:
        run = report.runs[(report.runs["repeat"] == match[0]) & (report.runs["unit"] == match[1])].iloc[0]
        return f"Every arm's run of one matched fold ({where(run)}): the same test molecules in every panel."
    return (
        "No fold was run by every arm, so each arm's first run is drawn: its panels are on different test molecules "
        "and are not comparable panel to panel."
    )


def loss_curves(report: Report) -> list[Block]:
    fig = figures.loss_curves(report)
    first, logged = report.first_runs(), report.logged_runs()
    without = [(arm, pd.notna(run.get("fit_s"))) for arm, run in first.iterrows() if arm not in logged.index]
    notes = []
    if moved := [arm for arm in logged.index if logged.at[arm, "run_dir"] != first.at[arm, "run_dir"]]:
        notes.append(f"{', '.join(moved)}: that fold's run kept no log, so its panel is the arm's first run that "
                     "did (fold and repeat in its title).")  # fmt: skip
    if baselines := [arm for arm, baseline in without if baseline]:
        notes.append(f"No curve for {', '.join(baselines)}: a baseline is fitted at once, not trained in steps.")
    if kept := [arm for arm, baseline in without if not baseline]:
        notes.append(f"No training log for {', '.join(kept)}: their runs were kept under results/ before "
                     "`scripts/results.py keep` copied the log (log_history.csv.gz).")  # fmt: skip
    return [" ".join([drawn_from(report), *notes]), fig] if fig is not None else [" ".join(notes)]


def roc_pr(report: Report) -> list[Block]:
    note = f"{drawn_from(report)} Dotted: a random ranking (the diagonal; the prevalence for PR)."
    return [note, *_figure_or(figures.roc_pr_curves(report), "No run has a predictions.parquet.")]


def comparison(report: Report) -> list[Block]:
    return [report.comparison.markdown()]


def cost_quality(report: Report) -> list[Block]:
    return [figures.cost_quality(report.summary)]


def forgetting(report: Report) -> list[Block]:
    note = "No run measured forgetting (`forgetting` in metrics.json needs a trunk with an MLM head)."
    return _figure_or(figures.forgetting(report), note)


def heldout_kd(report: Report) -> list[Block]:
    held = report.runs.filter(like="heldout_").filter(like="_spearman")
    if held.empty:
        return ["No held-out Kd sets in these runs (KinDEL runs score them: `data=kindel`)."]
    note = (
        "Held-out sets were scored (Spearman of score vs -log10 Kd in metrics.json), but no run kept the Kd values "
        "(`dataset/external/`, written by runs since the report existed): "
        + ", ".join(f"{c} {v:.3f}" for c, v in held.mean().items())
    )
    return _figure_or(figures.heldout_kd_scatter(report), note)


def five_questions(report: Report) -> list[Block]:
    return [f"**{i}. {q}**\n\n{a}" for i, (q, a) in enumerate(answers.answers(report), 1)]


SECTIONS: list[tuple[str, Callable[[Report], list[Block]]]] = [
    ("Training setup", setup),
    ("Loss curves", loss_curves),
    ("ROC and precision-recall curves", roc_pr),
    ("Comparison table", comparison),
    ("Cost vs quality", cost_quality),
    ("Forgetting", forgetting),
    ("Held-out Kd (KinDEL)", heldout_kd),
    ("Five questions, answered from the numbers", five_questions),
]
