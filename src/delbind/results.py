"""Committed results: a sweep's tables copied into ``results/<name>/`` with how they were made, and the README's
result blocks rendered from those files (never typed by hand).

``results/<name>/meta.json`` holds the command, commit, machine and date; ``results/<name>/<table>.md`` the tables
the sweep wrote. In README.md a block between ``<!-- results:<name>/<table> -->`` and ``<!-- /results -->`` is
the file's text under a provenance line; the same blocks render in docs/ pages. ``render`` rewrites every block,
``stale`` lists those out of date. ``keep`` copies a sweep's fold runs under ``results/<name>/runs/`` so a table
can be redrawn from committed files.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path

from delbind import confdoc
from delbind.errors import DataError
from delbind.io import write_json, write_text
from delbind.provenance import commit, machine
from delbind.rundirs import LOG_HISTORY, finished_runs, log_history, metrics_files, natural, write_log_history

TABLES = (
    "comparison.md",
    "comparison.csv",
    "comparison_paired.csv",
    "panel.md",
    "panel.csv",
    "panel_tally.csv",
    "answers.md",
    "aa.md",
    "aa_spread.csv",
    "aa_pairs.csv",
    "aa_splits.csv",
    "aa_power.csv",
)  # answers.md: the course report's five answers (scripts/report.py --out <the same dir>); aa*: scripts/aa.py
KEPT = ("metrics.json", "predictions.parquet")  # what a comparison or panel is redrawn from
# What may tell fold runs apart (the keys of a comparison's rows and repeats), as sub-dirs of keep's dest
LEVELS = ("target", "arm", "model", "pooling", "selection_metric", "label", "data_seed", "seed")
SEEDS = ("data_seed", "seed")  # numbers: their dir is named with the key (seed1), the others by value alone
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


def pretrain_summary(run_dir: Path | str) -> str:
    """A pre-training run (scripts/pretrain.py) as a table: its corpus and what was dropped, its cost, and the
    held-out masked-LM loss before and after."""
    run_dir = Path(run_dir)
    m = json.loads((run_dir / "metrics.json").read_text())
    c = json.loads((run_dir / "corpus.json").read_text())
    rows = [
        ("corpus", c["corpus"]),
        ("molecules drawn", f"{c['corpus_rows']:,}"),
        ("dropped: invalid / duplicate / forgetting held-out", f"{c.get('corpus_invalid_smiles_dropped', 0):,} / "
         f"{c.get('corpus_duplicates_dropped', 0):,} / {c.get('corpus_forgetting_heldout_dropped', 0):,}"),
        ("dropped: a val / test group of the data, any fold", f"{c.get('corpus_eval_groups_dropped', 0):,}"),
        ("molecules pre-trained on", f"{m['n_molecules']:,}"),
        ("epochs, steps", f"{m['epochs']:g}, {m['global_step']:,}"),
        ("train time (s), molecules/s", f"{m['train_runtime_s']:,.0f}, {m['train_samples_per_s']:,.1f}"),
        ("peak memory (MB)", f"{m['peak_memory_mb']:,.0f}"),
        ("held-out MLM loss before -> after", f"{m['mlm_loss_before']:.3f} -> {m['mlm_loss_after']:.3f}"),
    ]  # fmt: skip
    return "| | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows) + "\n"


def collect(
    sweep_dir: Path | str,
    results_dir: Path | str,
    command: str,
    root: Path | str = ".",
    runs: tuple[str, ...] = (),
    run_dirs: tuple[Path | str, ...] = (),
) -> Path:
    """Copy the sweep's tables into ``results_dir`` with ``meta.json`` (command, commit, machine, date); each job
    in ``runs`` (a sub-dir of the sweep) also gives ``run_<job>.md``, its printed test table and cost. ``run_dirs``:
    the runs the tables were drawn from, when neither the sweep nor ``results_dir/runs`` holds them (a comparison
    of runs kept under other results)."""
    sweep_dir, out = Path(sweep_dir), Path(results_dir)
    found = [sweep_dir / t for t in TABLES if (sweep_dir / t).is_file()]
    if not found:
        raise DataError(f"{sweep_dir} holds none of {', '.join(TABLES)}: give a finished sweep dir")
    out.mkdir(parents=True, exist_ok=True)
    for path in found:
        shutil.copyfile(path, out / path.name)
    for job in runs:
        write_text(out / f"run_{job}.md", run_summary(sweep_dir / job))
    # The runs behind the tables: those named, the sweep's own, and the fold runs committed beside the tables
    # (results/*/runs/, for a comparison drawn from them rather than from one sweep)
    run_files = {Path(d): metrics_files([d]) for d in (*run_dirs, sweep_dir, out / "runs")}
    if empty := [str(d) for d in run_dirs if not run_files[Path(d)]]:
        raise DataError(f"no metrics.json under {empty[0]}: name the dirs of the runs the tables were drawn from")
    sources = [d for d, files in run_files.items() if files] or [sweep_dir]
    run_commits = sorted({json.loads(f.read_text()).get("commit") or "?" for d in sources for f in run_files[d]})
    # run_commits: the code that trained the runs ("?": made before runs recorded it); commit: the code that
    # rendered the tables
    runs = ", ".join(str(d) for d in sources)
    write_json(out / "meta.json", {**provenance(command, root), "run_commits": run_commits, "runs": runs})
    return out


def keep(sweep_dirs: list[Path | str], dest: Path | str) -> list[Path]:
    """Copy every fold run of ``sweep_dirs`` (its metrics.json and predictions.parquet, its Trainer log history as
    log_history.csv.gz and its .hydra/config.yaml where it has them) to ``dest/.../fold<k>``, a
    directory per value of each of ``LEVELS`` in which runs alike in the levels before it differ (target/arm/fold<k>
    for a panel, fold<k> for one recipe), so its tables can be redrawn from committed files. Nothing is copied
    unless every run is a finished fold run with predictions, no two runs land in one place, and no kept run would
    be overwritten."""
    runs, _ = finished_runs(sweep_dirs, strict=True)
    for r in runs:
        r["arm"] = r.get("arm") or r.get("mode")
        if r.get("fold") is None or not (Path(r["run_dir"]) / "predictions.parquet").is_file():
            raise DataError(
                f"{r['run_dir']} is not a fold run with predictions.parquet: keep copies cross-validated runs"
            )
    varying: list[str] = []  # a key is a level where runs alike in the levels before it differ in it
    for key in LEVELS:
        values: dict[tuple[str, ...], set[str]] = {}
        for r in runs:
            values.setdefault(tuple(str(r.get(k)) for k in varying), set()).add(str(r.get(key)))
        if any(len(v) > 1 for v in values.values()):
            varying.append(key)
    places: dict[Path, str] = {}
    for r in runs:
        levels = (f"{k}{r.get(k)}" if k in SEEDS else str(r.get(k)) for k in varying)
        place = Path(dest, *levels, f"fold{r['fold']}")
        if place in places:
            raise DataError(f"{r['run_dir']} and {places[place]} would both be {place} (they differ in none of "
                            f"{', '.join(LEVELS)}): keep one recipe's runs per call")  # fmt: skip
        places[place] = r["run_dir"]
    taken = [p for p in places if p.exists()]
    if taken:
        raise DataError(f"{taken[0]} exists ({len(taken)} of {len(places)} places taken): keep never overwrites a "
                        "kept run; remove it or name another dest")  # fmt: skip
    for place, run_dir in places.items():
        place.mkdir(parents=True)
        for name in KEPT:
            shutil.copyfile(Path(run_dir) / name, place / name)
        if history := log_history(run_dir):  # the report's loss curves (baselines have none)
            write_log_history(history, place / LOG_HISTORY)
        config = Path(run_dir) / ".hydra" / "config.yaml"
        if config.is_file():  # the report's setup table: what trained, at which rate and batch
            (place / ".hydra").mkdir()
            shutil.copyfile(config, place / ".hydra" / "config.yaml")
    return sorted(places, key=natural)


def provenance(command: str, root: Path | str = ".") -> dict[str, str]:
    """How a result was made: the command, the commit, the machine and the date."""
    return {"command": command, "commit": commit(root), "machine": machine(), "date": dt.date.today().isoformat()}


def save(results_dir: Path | str, table: str, text: str, command: str, root: Path | str = ".", **meta: object) -> Path:
    """A result a script printed (a benchmark's figures) as ``results_dir/<table>.md`` with its ``meta.json``
    (``meta``: more of how it was made)."""
    out = Path(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / f"{table}.md", text)
    write_json(out / "meta.json", {**provenance(command, root), **meta})
    return out / f"{table}.md"


def save_run(run_dir: Path | str, results_dir: Path | str, command: str, root: Path | str = ".") -> Path:
    """One run's printed test table and cost as ``results_dir/run.md`` (a sample output for the docs), its
    metrics.json beside it so the figures can be checked, and meta.json naming the commit the run trained on."""
    source = Path(run_dir) / "metrics.json"
    if not source.is_file():
        raise DataError(f"no metrics.json in {run_dir}: give a finished run dir")
    code = json.loads(source.read_text()).get("commit") or "?"
    path = save(results_dir, "run", run_summary(Path(run_dir)), command, root, run_commits=[code], runs=str(run_dir))
    shutil.copyfile(source, path.parent / "metrics.json")
    return path


def block(results_root: Path, name: str, link: bool = True) -> str:
    """The text of ``<name>`` = ``<dir>/<table>``: its provenance, then the table file's markdown. ``link``: README's
    form (the file a relative link, the provenance one line); else a docs page's (a plain path, which mkdocs checks,
    in a collapsed block)."""
    path = results_root / f"{name}.md"
    meta_path = path.parent / "meta.json"
    if not path.is_file() or not meta_path.is_file():
        raise DataError(f"a page asks for results:{name}, but {path} or its meta.json is missing")
    meta = json.loads(meta_path.read_text())
    where = f"[`results/{name}.md`](results/{name}.md)" if link else f"`results/{name}.md`"
    made = (
        f"Generated from {where} by `python scripts/results.py render`; made by `{meta['command']}` at commit "
        f"{meta['commit']} on {meta['machine']}, {meta['date']}."
    )
    # README: one line; a docs page keeps it collapsed (<details>, mkdocs' md_in_html), so the page opens on the figures
    summary = f"<summary>How this was made: commit {meta['commit']}, {meta['date']}</summary>"
    head = f"*{made}*\n\n" if link else f'<details markdown="1">{summary}\n\n{made}\n\n</details>\n\n'

    return head + path.read_text().rstrip("\n") + "\n"


def pages(root: Path) -> list[Path]:
    """The files whose results blocks are rendered: README.md and every docs page."""
    return [root / "README.md", *sorted((root / "docs").glob("**/*.md"))]


def _page_blocks(page: Path, results_root: Path) -> dict[int, str]:
    """Every results block of ``page`` as the page shows it (by the block's offset): linked from README (at the
    repository root), a plain path in docs pages; and one legend per page (``legend_once``)."""
    link, seen = page.name == "README.md", set()
    return {m.start(): legend_once(block(results_root, m.group("name"), link), seen)
            for m in BLOCK.finditer(page.read_text())}  # fmt: skip


LEGEND = "Cells:"  # the line under a table that says what its cells hold


def legend_once(text: str, seen: set[str]) -> str:
    """``text`` with each legend line (``Cells: ...``) cut to the sentences not already in ``seen`` (which it
    extends): a page states a legend once, and a later table keeps only what is its own (its row count, its
    power); a legend said entirely above becomes a pointer to it."""
    out = []
    for line in text.split("\n"):
        if not line.startswith(LEGEND):
            out.append(line)
            continue
        sentences = [x for x in re.split(r"(?<=[.)]\.|\w\.) (?=\S)", line.removeprefix(LEGEND).strip()) if x]
        new = [x for x in sentences if x not in seen]
        seen.update(sentences)
        if len(new) == len(sentences):
            out.append(line)
        else:
            out.append(f"{LEGEND} {' '.join(new)} (the rest as the first legend on this page)" if new
                       else f"{LEGEND} as the first legend on this page.")  # fmt: skip
    return "\n".join(out)


def render(page: Path, results_root: Path) -> str:
    """``page``'s text with every results block rewritten from its file."""
    blocks = _page_blocks(page, results_root)
    return BLOCK.sub(lambda m: m.group(1) + blocks[m.start()] + m.group(4), page.read_text())


def stale(page: Path, results_root: Path) -> list[str]:
    """The names of ``page``'s blocks that differ from their files (empty: up to date)."""
    blocks = _page_blocks(page, results_root)
    return [m.group("name") for m in BLOCK.finditer(page.read_text()) if m.group("body") != blocks[m.start()]]


def write_pages(root: Path, results_root: Path) -> list[Path]:
    """Render every page's results blocks (``pages``) and the configuration reference (``confdoc``); returns the
    pages that changed."""
    changed = []
    for page in pages(root):
        text = render(page, results_root)
        if confdoc.BLOCK.search(text):
            text = confdoc.BLOCK.sub(lambda m: m.group(1) + confdoc.reference(root / "conf") + m.group(3), text)
        if text != page.read_text():
            write_text(page, text)
            changed.append(page)
    return changed
