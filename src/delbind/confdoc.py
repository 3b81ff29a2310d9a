"""The configuration reference: every key of every ``conf/`` file with its default and its comment, as markdown.

``docs/configuration.md`` holds it between ``<!-- conf:reference -->`` and ``<!-- /conf -->``; ``python
scripts/results.py render`` rewrites it (``results.write_pages``) and a test fails when it is out of date, so the
page cannot drift from ``conf/``. A key's comment is the text after ``#`` on its line plus the comment lines aligned
under it; a comment block above keys goes with the next key, the one above a file's first key describes the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

BLOCK = re.compile(r"(<!-- conf:reference -->\n)(?P<body>.*?)(<!-- /conf -->)", re.S)
KEY = re.compile(r"^(?P<indent> *)(?P<key>[\w.+-]+):(?P<value>[^#]*?)\s*(?:#\s?(?P<comment>.*))?$")
SKIP = ("defaults", "hydra")  # composition lists and Hydra's own settings: documented by Hydra


@dataclass
class Key:
    path: str
    default: str
    comment: str


def keys_of(text: str) -> tuple[str, list[Key]]:
    """The file's lead comment (above its first key) and its leaf keys (nested keys joined with dots), each with its
    default and comment."""
    out: list[Key] = []
    lead: str | None = None
    parents: list[tuple[int, str]] = []
    note: list[str] = []
    last: Key | None = None  # the key whose inline comment a deeper-indented comment line continues
    last_column = -1
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            last = None
            continue
        if stripped.startswith("# @package"):
            continue
        if stripped.startswith("#"):
            words = stripped.lstrip("#").strip()
            if last is not None and len(line) - len(line.lstrip()) >= last_column - 2:
                last.comment = f"{last.comment} {words}"
            else:
                note.append(words)
                last = None
            continue
        m = KEY.match(line)
        if not m:  # a list item or a continued value: part of the key above
            continue
        if lead is None:  # the comment above the first key describes the file
            lead, note = " ".join(note), []
        indent, inline = len(m.group("indent")), m.group("comment")
        while parents and parents[-1][0] >= indent:
            parents.pop()
        name = ".".join([*(p for _, p in parents), m.group("key")])
        value = m.group("value").strip()
        comment = " — ".join(c for c in (" ".join(note), inline or "") if c)
        note, key = [], None
        if not value:  # a mapping: a row of its own when it says something, its keys below it
            parents.append((indent, m.group("key")))
            key = Key(name, "(below)", comment) if comment else None
        else:
            key = Key(name, value, comment)
        if name.split(".")[0] in SKIP:
            key = None
        if key is not None:
            out.append(key)
        last = key if inline is not None else None
        last_column = line.find("#", m.end("value")) if inline is not None else -1
    return lead or " ".join(note), out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;")


def table(keys: list[Key]) -> str:
    rows = [f"| `{k.path}` | `{_cell(k.default)}` | {_cell(k.comment)} |" for k in keys]
    return "\n".join(["| key | default | what it does |", "| --- | --- | --- |", *rows]) + "\n"


# A key set in several files is described where it is defined; a file that only sets it (an experiment, debug=smoke)
# borrows that text. Keys no file describes get their library's own words (TrainingArguments' help) or these.
ROLES = {
    "name": "the option's name: what run names, metrics.json and comparisons call it",
    "family": "the arm family: the module that runs it (src/delbind/arms)",
    "_target_": "the class Hydra instantiates",
    "features": "what the baseline is fitted on: ecfp4 bits, the trunk's embeddings, or both",
}


def _package(path: Path, text: str, conf_dir: Path) -> str:
    """Where a file's keys sit in the composed config: ``""`` (an entry config or a _global_ option) or its group
    with a trailing dot."""
    if path.parent == conf_dir or "# @package _global_" in text:
        return ""
    return f"{path.parent.relative_to(conf_dir).as_posix().replace('/', '.')}."


def _described(conf_dir: Path) -> dict[str, str]:
    """Every key's description from the file that gives one (entry configs first), by its composed path."""
    found: dict[str, str] = {}
    for path in [*sorted(conf_dir.glob("*.yaml")), *sorted(conf_dir.glob("*/**/*.yaml"))]:
        text = path.read_text()
        package = _package(path, text, conf_dir)
        for key in keys_of(text)[1]:
            if key.comment:
                found.setdefault(package + key.path, key.comment)
    return found


def _trainer_help() -> dict[str, str]:
    """TrainingArguments' own help per field, its first sentence (``trainer.<field>`` keys are those fields)."""
    import dataclasses

    from transformers import TrainingArguments

    out = {}
    for f in dataclasses.fields(TrainingArguments):
        words = " ".join(str(f.metadata.get("help") or "").split())
        if words:
            out[f"trainer.{f.name}"] = words.split(". ")[0].rstrip(".") + " (TrainingArguments)"
    return out


def _fallback(name: str, described: dict[str, str]) -> str:
    if name in described:
        return described[name]
    leaf = name.rsplit(".", 1)[-1]
    if leaf in ROLES:
        return ROLES[leaf]
    if ".estimator." in f".{name}":
        return f"the estimator's own `{leaf}` (the parameter of that name in its library: scikit-learn, xgboost)"
    if name.startswith("hydra.launcher."):
        return f"the launcher's own `{leaf}` (hydra-submitit-launcher / hydra-joblib-launcher)"
    if name.startswith("hydra."):
        return f"Hydra's own `{name.removeprefix('hydra.')}` (hydra.cc)"
    if name.startswith("model.config."):
        return f"the trunk's transformers config field `{leaf}` (a random-init trunk is built from it)"
    return ""


def reference(conf_dir: Path) -> str:
    """Markdown: the entry configs (``conf/*.yaml``), then each group's options (``conf/<group>/<option>.yaml``)."""
    described = _described(conf_dir)
    for key, text in _trainer_help().items():  # a conf comment, where there is one, wins
        described.setdefault(key, text)
    parts = ["### Entry configs\n"]
    for path in sorted(conf_dir.glob("*.yaml")):
        parts.append(_section(f"`conf/{path.name}`", path, conf_dir, described))
    for group in sorted(p for p in conf_dir.iterdir() if p.is_dir()):
        parts.append(f"\n### Group `{group.name}`\n")
        for path in sorted(group.glob("**/*.yaml")):
            option = f"{path.parent.relative_to(conf_dir).as_posix()}={path.stem}"  # hydra/launcher=slurm
            parts.append(_section(f"`{option}`", path, conf_dir, described))
    return "".join(parts)


def _section(title: str, path: Path, conf_dir: Path, described: dict[str, str]) -> str:
    text = path.read_text()
    lead, keys = keys_of(text)
    package = _package(path, text, conf_dir)
    for key in keys:
        key.comment = key.comment or _fallback(package + key.path, described)
    body = (f"{_cell(lead)}\n\n" if lead else "") + (table(keys) if keys else "No keys of its own.\n")
    return f"\n#### {title}\n\n{body}"
