"""Which checkpoint ``resume`` means, verified: the newest complete one of a run, or of the newest earlier run.

A checkpoint is complete when its manifest (written after the Trainer's save finished) matches every file and its
weights and trainer state load. A checkpoint cut short by a kill, or damaged since, is skipped with a log line.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from delbind.errors import ResumeError
from delbind.integrity import MANIFEST, manifest_mismatch

log = logging.getLogger(__name__)
CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")  # the Trainer's folder names (PREFIX_CHECKPOINT_DIR)


def checkpoint_problem(ckpt: Path) -> str | None:
    """Why ``ckpt`` cannot be resumed from, or None: its manifest matches, its trainer state and weights load."""
    from safetensors.torch import load_file
    from transformers import TrainerState

    # A checkpoint written before manifests existed is checked by loading alone.
    if (ckpt / MANIFEST).exists() and (reason := manifest_mismatch(ckpt)):
        return reason
    if not (ckpt / "trainer_state.json").is_file():  # the Trainer writes it last
        return "no trainer_state.json: its save never finished"
    try:
        TrainerState.load_from_json(str(ckpt / "trainer_state.json"))
        weights = sorted(ckpt.glob("*.safetensors"))
        if not weights:
            return "no *.safetensors weights"
        for file in weights:
            load_file(file)
    except Exception as e:  # any failure to load is a reason not to resume from it
        return f"does not load: {type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"
    return None


def checkpoints(folder: Path) -> list[Path]:
    """The ``checkpoint-<step>`` folders in ``folder``, newest (highest step) first."""
    found = [p for p in folder.iterdir() if p.is_dir() and CHECKPOINT.match(p.name)] if folder.is_dir() else []
    return sorted(found, key=lambda p: int(CHECKPOINT.match(p.name).group(1)), reverse=True)


def newest_complete(candidates: list[Path], skipped: list[str]) -> Path | None:
    """The first complete checkpoint of ``candidates``; each one passed over is added to ``skipped`` with why."""
    for ckpt in candidates:
        reason = checkpoint_problem(ckpt)
        if reason is None:
            return ckpt
        log.warning("checkpoint %s is not usable (%s)", ckpt, reason)
        skipped.append(f"{ckpt.name}: {reason}")
    return None


def best_complete(
    candidates: list[Path], history: list[dict[str, Any]], metric: str, greater_is_better: bool, skipped: list[str]
) -> tuple[Path, float | None] | None:
    """The complete checkpoint of ``candidates`` whose evaluation (``metric`` in the log ``history`` at its step)
    was best, with that value; checkpoints without an evaluation come last, newest first. None when none is
    complete; each one passed over is added to ``skipped`` with why."""
    key = metric if metric.startswith("eval_") else f"eval_{metric}"
    at_step = {e["step"]: e[key] for e in history if key in e and "step" in e}

    def step(ckpt: Path) -> int:
        return int(CHECKPOINT.match(ckpt.name).group(1))

    def rank(ckpt: Path) -> tuple[bool, float, int]:
        value = at_step.get(step(ckpt))
        return value is not None, (0.0 if value is None else value if greater_is_better else -value), step(ckpt)

    found = newest_complete(sorted(candidates, key=rank, reverse=True), skipped)
    return None if found is None else (found, at_step.get(step(found)))


def _chosen(ckpt: Path, skipped: list[str]) -> str:
    if skipped:
        log.warning("resuming from %s, the newest complete checkpoint (skipped %s)", ckpt, "; ".join(skipped))
    else:
        log.info("resuming from %s", ckpt)
    return str(ckpt)


def resolve_resume(resume: Any, outputs_root: Path, run_dir: Path, exclude: tuple[Path, ...] = ()) -> str | None:
    """The checkpoint to resume from: None, ``true`` (newest earlier run with a complete one, outside ``exclude``:
    another task's runs) or a path."""
    if resume in (None, False, "", "false"):
        return None
    skipped: list[str] = []
    if resume is True or resume == "true":
        runs = sorted(
            (p.parent for p in outputs_root.glob("**/checkpoints") if not {run_dir, *exclude} & {p.parent, *p.parents}),
            key=lambda d: d.stat().st_mtime,
        )
        for run in reversed(runs):
            if ckpt := newest_complete(checkpoints(run / "checkpoints"), skipped):
                return _chosen(ckpt, skipped)
        raise ResumeError(f"resume=true: no earlier run under {outputs_root} has a complete checkpoint{_why(skipped)}")
    path = Path(str(resume)).expanduser()
    if CHECKPOINT.match(path.name) and path.is_dir():  # a checkpoint named: it, else the newest complete before it
        step = int(CHECKPOINT.match(path.name).group(1))
        candidates = [c for c in checkpoints(path.parent) if int(CHECKPOINT.match(c.name).group(1)) <= step]
    else:
        candidates = checkpoints(path / "checkpoints") or checkpoints(path)
    if not candidates:
        raise ResumeError(f"resume={resume}: no checkpoint-* folder found there")
    if ckpt := newest_complete(candidates, skipped):
        return _chosen(ckpt, skipped)
    raise ResumeError(f"resume={resume}: no complete checkpoint there{_why(skipped)}")


def _why(skipped: list[str]) -> str:
    return f" ({'; '.join(skipped)})" if skipped else ""
