"""Rendering the sections: a self-contained HTML page (figures inline as PNG) and a notebook that rebuilds them."""

from __future__ import annotations

import base64
import html
import io
import os
from dataclasses import dataclass
from pathlib import Path

import markdown
import matplotlib.pyplot as plt
import nbformat
from matplotlib.figure import Figure
from nbformat import v4

from delbind.report.data import Report
from delbind.report.sections import SECTIONS, Block

TITLE = "delbind course report"
CSS = """
body { font-family: system-ui, sans-serif; max-width: 1250px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { border-bottom: 2px solid #e8744c; padding-bottom: .3em; } h2 { margin-top: 2em; color: #333; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; background: #fff; } th { background: #f3f3f3; }
.wide { overflow-x: auto; margin: 1em 0; } .wide tr > :first-child { position: sticky; left: 0; z-index: 1; }
img { max-width: 100%; } code { background: #f3f3f3; padding: 0 3px; }
nav a { margin-right: 1em; }
"""


@dataclass
class Rendered:
    """One section: its title, the sections function that builds it, and its blocks as markdown or PNG bytes."""

    title: str
    function: str
    blocks: list[str | bytes]


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes; the figure is closed (a report draws many)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _as_output(block: Block) -> str | bytes:
    return block if isinstance(block, str) else figure_png(block)


def render(report: Report) -> list[Rendered]:
    """Every section of the report, built once."""
    return [Rendered(t, fn.__name__, [_as_output(b) for b in fn(report)]) for t, fn in SECTIONS]


def _html_block(block: str | bytes) -> str:
    if isinstance(block, bytes):
        return f'<img alt="figure" src="data:image/png;base64,{base64.b64encode(block).decode()}">'
    # a wide table scrolls in its own box with the row names kept in view (CSS .wide)
    text = markdown.markdown(block, extensions=["tables"])
    return text.replace("<table>", '<div class="wide"><table>').replace("</table>", "</table></div>")


def to_html(report: Report, sections: list[Rendered]) -> str:
    """One self-contained page: no file or network is needed to view it."""
    anchors = [f"s{i}" for i in range(len(sections))]
    nav = " ".join(f'<a href="#{a}">{html.escape(s.title)}</a>' for a, s in zip(anchors, sections))
    body = "".join(
        f'<h2 id="{a}">{html.escape(s.title)}</h2>' + "".join(_html_block(b) for b in s.blocks)
        for a, s in zip(anchors, sections)
    )
    runs = ", ".join(html.escape(d) for d in report.shown_dirs)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{TITLE}</title><style>{CSS}</style>'
        f"</head><body><h1>{TITLE}</h1><p>Runs: {runs}. The notebook report.ipynb beside this page rebuilds every "
        f"section from the run files.</p><nav>{nav}</nav>{body}</body></html>"
    )


def _output(block: str | bytes) -> nbformat.NotebookNode:
    """A block as the output the notebook's code cell produces for it."""
    if isinstance(block, bytes):
        return v4.new_output("display_data", data={"image/png": base64.b64encode(block).decode()})
    return v4.new_output("display_data", data={"text/markdown": block, "text/plain": block})


def to_notebook(report: Report, sections: list[Rendered], where: Path | None = None) -> nbformat.NotebookNode:
    """A notebook that loads the runs and shows each section; saved with this build's outputs in place. ``where``:
    the notebook's folder; the run dirs are written relative to it (Jupyter runs a notebook in its own folder), so
    the notebook rebuilds on another machine that has the same files in the same places relative to it."""
    runs = [os.path.relpath(d, where) if where else d for d in report.dirs]
    setup = (
        "from delbind.report import load_report, sections, show\n\n"
        f"RUNS = {runs!r}  # relative to this notebook's folder: every metrics.json below these dirs\n"
        f"report = load_report(RUNS, reference={report.reference!r}, margin={report.margin!r}"
        + ("" if report.labels else ", labels=False")
        + ")"
    )
    cells = [
        v4.new_markdown_cell(
            f"# {TITLE}\n\nRuns all cells offline from the run files (delbind installed), opened from the folder "
            "it was written to: `RUNS` below are the run dirs relative to it."
        ),
        v4.new_code_cell(setup),
    ]
    for s in sections:
        cells.append(v4.new_markdown_cell(f"## {s.title}"))
        cells.append(v4.new_code_cell(f"show(sections.{s.function}(report))", outputs=[_output(b) for b in s.blocks]))
    nb = v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def show(blocks: list[Block]) -> None:
    """Notebook display of a section's blocks: markdown as markdown, figures as PNG."""
    from IPython.display import Image, Markdown, display

    for block in blocks:
        display(Markdown(block) if isinstance(block, str) else Image(data=figure_png(block)))
