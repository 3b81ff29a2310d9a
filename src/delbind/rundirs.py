"""Run dirs: claimed by exactly one run, and read back only when finished and readable.

Claiming: a run writes its owner (pid, host, start) to a temporary file and hard-links it to ``.delbind_run``
inside its dir. link(2) fails when the name exists, atomically on local filesystems and on NFS (the lock recipe
open(2) gives for NFS), and the marker is whole from the moment it exists; where hard links are not supported, an
exclusive create (``O_CREAT | O_EXCL``, atomic on NFS v3 and later) takes its place. Of two runs started together
on one dir, one creates the marker and the other gets RunDirExistsError naming the owner. Under torchrun /
accelerate rank 0 claims for the launch and every rank learns the outcome, so ranks share their dir and all stop
when the claim fails.

Reading: compare, report and ensemble read every run below some dirs. A run that started (it has a marker or a
``.hydra`` dir) but never wrote metrics.json, a metrics.json that does not parse, and a predictions.parquet whose
footer does not read are listed one line each (``Skipped``: path and reason) and left out; ``strict`` makes any
of them an error instead.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from delbind import distributed
from delbind.errors import NoRunsError, RunDirExistsError, UnreadableRunError

log = logging.getLogger(__name__)
RUN_MARKER = ".delbind_run"  # inside a run dir: created once, exclusively, by the run that owns the dir
STARTED = (RUN_MARKER, ".hydra")  # what a run leaves in its dir before it writes anything else


def claim_run_dir(run_dir: Path) -> Path:
    """Make ``run_dir`` this run's own, or raise RunDirExistsError (on every rank of a launch)."""
    distributed.check_same_run_dir(run_dir)  # torchrun / accelerate: every rank, one run dir
    refusal = None
    if distributed.is_main_process():
        try:
            _claim(run_dir)
        except RunDirExistsError as e:
            refusal = str(e)
    refusal = distributed.broadcast(refusal)
    if refusal:
        raise RunDirExistsError(refusal)
    return run_dir


def _claim(run_dir: Path) -> None:
    hint = "give a new hydra.run.dir (resume=<that dir> continues it in a new one)"
    if (run_dir / "metrics.json").exists() or (run_dir / "checkpoints").exists():  # runs from before the marker
        raise RunDirExistsError(f"{run_dir} already holds a run; {hint}")
    run_dir.mkdir(parents=True, exist_ok=True)
    owner = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()})
    tmp = run_dir / f"{RUN_MARKER}.{uuid.uuid4().hex}.tmp"
    tmp.write_text(owner)
    try:
        _create_marker(tmp, run_dir / RUN_MARKER, owner)
    except FileExistsError:
        raise RunDirExistsError(f"{run_dir} already holds a run ({_owner(run_dir)}); {hint}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _create_marker(written: Path, marker: Path, owner: str) -> None:
    """``marker`` with ``owner`` in it, created atomically; FileExistsError when it exists already."""
    try:
        os.link(written, marker)  # atomic, and the marker is whole from the moment it exists
    except FileExistsError:
        raise
    except OSError:  # a filesystem without hard links: an exclusive create, then the owner written into it
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(owner)


def _owner(run_dir: Path) -> str:
    """Who claimed ``run_dir``, from its marker: ``pid 12 on host, 2026-12-05 09:00:00``."""
    try:
        owner = json.loads((run_dir / RUN_MARKER).read_text())
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(owner["started"]))
        return f"claimed by pid {owner['pid']} on {owner['host']}, {when}"
    except (OSError, ValueError, KeyError, TypeError):  # the claimer may not have written it yet
        return "claimed by another run"


@dataclass(frozen=True)
class Skipped:
    """A run dir left out of a reading, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


LOG_HISTORY = "log_history.csv.gz"  # a kept run's Trainer log (results.keep): its checkpoints are not kept


def log_history(run_dir: str | Path) -> list[dict[str, Any]]:
    """The Trainer's log history (a dict per logged step or evaluation): a kept run's ``log_history.csv.gz``, else
    its newest checkpoint's trainer_state.json; [] for a run without one (baselines; runs kept without it)."""
    kept = Path(run_dir) / LOG_HISTORY
    if kept.is_file():
        import pandas as pd

        return [{k: v for k, v in row.items() if pd.notna(v)} for row in pd.read_csv(kept).to_dict("records")]
    states = Path(run_dir).glob("checkpoints/checkpoint-*/trainer_state.json")
    newest = max(states, key=lambda p: int(p.parent.name.rsplit("-", 1)[1]), default=None)
    return json.loads(newest.read_text())["log_history"] if newest else []


def write_log_history(history: list[dict[str, Any]], path: Path) -> None:
    """``history`` as a gzipped CSV: one row per entry, a column per logged figure (empty where not logged)."""
    import pandas as pd

    pd.DataFrame(history).to_csv(path, index=False, compression="gzip")


def natural(text: Path | str) -> list[Any]:
    """Sort key that puts sweep job 2 before job 10 (fold2 before fold10, repeat 2/0 before 10/0)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(text))]


def metrics_files(paths: Iterable[Path | str]) -> list[Path]:
    """Every metrics.json at or below each path (a run dir, a sweep dir, or the file itself), in sweep order."""
    files = []
    for path in map(Path, paths):
        files += [path] if path.name == "metrics.json" else sorted(path.glob("**/metrics.json"), key=natural)
    return files


def _unfinished(paths: Iterable[Path | str]) -> list[Path]:
    """Run dirs at or below ``paths`` that started (marker or .hydra) but hold no metrics.json."""
    found: set[Path] = set()
    for path in map(Path, paths):
        if path.name == "metrics.json" or not path.is_dir():
            continue
        found |= {path for name in STARTED if (path / name).exists()}
        found |= {p.parent for p in path.rglob(".*") if p.name in STARTED}  # one walk for both names
    return sorted((d for d in found if not (d / "metrics.json").exists()), key=natural)


def _problem(metrics_file: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(metrics, None) for a readable finished run, else (None, why it cannot be read)."""
    try:
        metrics = json.loads(metrics_file.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return None, f"metrics.json is unreadable ({type(e).__name__}: {str(e).splitlines()[0][:80]})"
    if not isinstance(metrics, dict):
        return None, "metrics.json holds no metrics object"
    predictions = metrics_file.parent / "predictions.parquet"
    if predictions.exists():
        import pyarrow.parquet as pq

        try:
            pq.read_metadata(predictions)  # the footer, written last: a truncated file has none
        except Exception as e:  # pyarrow raises several types for a damaged file
            return None, f"predictions.parquet is unreadable ({type(e).__name__})"
    return metrics, None


def finished_runs(paths: Iterable[Path | str], strict: bool = False) -> tuple[list[dict[str, Any]], list[Skipped]]:
    """Every readable finished run at or below ``paths`` (its metrics plus ``run_dir``, in sweep order) and the run
    dirs left out, each logged as one warning line. ``strict``: a left-out run is an UnreadableRunError."""
    paths = list(paths)
    runs, skipped = [], []
    for f in metrics_files(paths):
        metrics, reason = _problem(f)
        if reason:
            skipped.append(Skipped(str(f.parent), reason))
        else:
            runs.append({**metrics, "run_dir": str(f.parent)})
    skipped += [Skipped(str(d), "no metrics.json: the run did not finish (stopped, or still running)")
                for d in _unfinished(paths)]  # fmt: skip
    for s in skipped:
        log.warning("left out: %s", s)
    if skipped and strict:
        raise UnreadableRunError(f"{len(skipped)} run dir(s) unreadable or unfinished (strict): {skipped[0]}")
    if not runs:
        why = f" ({len(skipped)} left out: {skipped[0]})" if skipped else ""
        raise NoRunsError(f"no metrics.json under {[str(p) for p in paths]}: no finished run{why}")
    return runs, skipped


def left_out_note(skipped: list[Skipped]) -> str:
    """A markdown note under a table: how many run dirs were left out, each with its reason ('' when none)."""
    if not skipped:
        return ""
    lines = [f"Left out: {len(skipped)} run dir(s), unreadable or unfinished (`--strict` makes this an error):"]
    return "\n".join([*lines, *(f"- `{s.path}`: {s.reason}" for s in skipped)]) + "\n"
