"""Write the report files, and log them to wandb when the runs were logged there."""

from __future__ import annotations

from pathlib import Path

import nbformat

from delbind import tracking
from delbind.report.data import load_report
from delbind.report.figures import cost_quality
from delbind.report.render import figure_png, render, to_html, to_notebook
from delbind.report.sections import five_questions

FILES = ("report.html", "report.ipynb", "cost_quality.png", "answers.md")


def write_report(
    paths: list[str | Path],
    out_dir: str | Path,
    wandb_project: str | None = None,
    reference: str | None = None,
    margin: float = 0.02,
    strict: bool = False,
    labels: bool = True,
) -> list[Path]:
    """report.html, report.ipynb, cost_quality.png and answers.md (the five answers alone, as markdown: for a hand-in
    or a results page) in ``out_dir``; returns their paths. ``reference``: the row
    the comparison table pairs the others against (None: the val-best row); ``margin``: the verdicts' practical
    margin (a difference within +-margin is equivalent); ``strict``: an unreadable or unfinished run is an error
    (else left out and listed); ``labels=False``: rows by recipe alone, whatever label a sweep gave them."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = load_report([Path(p).resolve() for p in paths], reference, margin, strict=strict, labels=labels)
    sections = render(report)
    html, notebook, chart, text = (out_dir / name for name in FILES)
    html.write_text(to_html(report, sections), encoding="utf-8")
    nbformat.write(to_notebook(report, sections, out_dir.resolve()), notebook)
    chart.write_bytes(figure_png(cost_quality(report.summary)))
    answered = next(s.blocks for s in sections if s.function == five_questions.__name__)
    text.write_text("\n\n".join(map(str, answered)) + "\n", encoding="utf-8")  # the answers alone, as markdown
    if wandb_project and tracking.logged_to_wandb(report.runs["run_dir"]):
        images = {"cost_quality": chart, "comparison_plot": out_dir / "comparison.png"}
        tracking.log_comparison(report.summary, out_dir, wandb_project, images, files=[html, notebook])
    return [html, notebook, chart, text]
