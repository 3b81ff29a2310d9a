"""Committed results: a sweep's tables copied into ``results/<name>/`` with how they were made, and the README's
result blocks rendered from those files (never typed by hand).

``results/<name>/meta.json`` holds the command, commit, machine and date; ``results/<name>/<table>.md`` the tables
the sweep wrote. In README.md a block between ``<!-- results:<name>/<table> -->`` and ``<!-- /results -->`` is
the file's text under a provenance line; ``render`` rewrites every block, ``stale`` lists those out of date.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path

from delbind.errors import DataError
from delbind.io import write_json, write_text
from delbind.provenance import commit, machine

TABLES = ("comparison.md", "comparison.csv", "comparison_paired.csv", "panel.md", "panel.csv", "panel_tally.csv")
BLOCK = re.compile(r"(<!-- results:(?P<name>[\w./-]+) -->\n)(?P<body>.*?)(<!-- /results -->)", re.S)


def run_summary(run_dir: Path) -> str:
    """What the run printed at its end (its test table), with its cost: a sample output for the README."""
    from delbind.tasks.train import summary_table

    m = json.loads((run_dir / "metrics.json").read_text())
    cost = (
        f"{m['arm']} on fold {m.get('fold')} of {m.get('folds')}: {m['n_train']} training molecules, trained "
        f"{m['train_runtime_s']:.0f} s on {m.get('threads')} threads, peak memory {m['peak_memory_mb']:,.0f} MB, "
        f"{m['trainable_params']:,} trainable parameters"
    )
    return f"```\n{summary_table(m)}\n```\n\n{cost}.\n"


def collect(
    sweep_dir: Path | str, results_dir: Path | str, command: str, root: Path | str = ".", runs: tuple[str, ...] = ()
) -> Path:
    """Copy the sweep's tables into ``results_dir`` with ``meta.json`` (command, commit, machine, date); each job
    in ``runs`` (a sub-dir of the sweep) also gives ``run_<job>.md``, its printed test table and cost."""
    sweep_dir, out = Path(sweep_dir), Path(results_dir)
    found = [sweep_dir / t for t in TABLES if (sweep_dir / t).is_file()]
    if not found:
        raise DataError(f"{sweep_dir} holds none of {', '.join(TABLES)}: give a finished sweep dir")
    out.mkdir(parents=True, exist_ok=True)
    for path in found:
        shutil.copyfile(path, out / path.name)
    for job in runs:
        write_text(out / f"run_{job}.md", run_summary(sweep_dir / job))
    run_commits = sorted({json.loads(f.read_text()).get("commit") or "?" for f in sweep_dir.glob("**/metrics.json")})
    # run_commits: the code that trained the runs ("?": made before runs recorded it); commit: the code that
    # rendered the tables
    write_json(out / "meta.json", {**provenance(command, root), "run_commits": run_commits, "runs": str(sweep_dir)})
    return out


def provenance(command: str, root: Path | str = ".") -> dict[str, str]:
    """How a result was made: the command, the commit, the machine and the date."""
    return {"command": command, "commit": commit(root), "machine": machine(), "date": dt.date.today().isoformat()}


def save(results_dir: Path | str, table: str, text: str, command: str, root: Path | str = ".") -> Path:
    """A result a script printed (a benchmark's figures) as ``results_dir/<table>.md`` with its ``meta.json``."""
    out = Path(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / f"{table}.md", text)
    write_json(out / "meta.json", provenance(command, root))
    return out / f"{table}.md"


def block(results_root: Path, name: str) -> str:
    """The README text of ``<name>`` = ``<dir>/<table>``: a provenance line, then the table file's markdown."""
    path = results_root / f"{name}.md"
    meta_path = path.parent / "meta.json"
    if not path.is_file() or not meta_path.is_file():
        raise DataError(f"README asks for results:{name}, but {path} or its meta.json is missing")
    meta = json.loads(meta_path.read_text())
    head = (
        f"*Generated from [`results/{name}.md`](results/{name}.md) by `python scripts/results.py render`; made by "
        f"`{meta['command']}` at commit {meta['commit']} on {meta['machine']}, {meta['date']}.*\n\n"
    )
    return head + path.read_text().rstrip("\n") + "\n"


def render(readme: Path, results_root: Path) -> str:
    """README's text with every results block rewritten from its file."""
    text = readme.read_text()
    return BLOCK.sub(lambda m: m.group(1) + block(results_root, m.group("name")) + m.group(4), text)


def stale(readme: Path, results_root: Path) -> list[str]:
    """The names of README blocks that differ from their files (empty: up to date)."""
    text = readme.read_text()
    return [m.group("name") for m in BLOCK.finditer(text) if m.group("body") != block(results_root, m.group("name"))]


def write_readme(readme: Path, results_root: Path) -> None:
    write_text(readme, render(readme, results_root))
