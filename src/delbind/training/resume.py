"""Which checkpoint ``resume`` means: none, the newest earlier run's, or a given run / checkpoint dir."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers.trainer_utils import get_last_checkpoint

from delbind import distributed
from delbind.errors import ResumeError, RunDirExistsError


def claim_run_dir(run_dir: Path) -> Path:
    """Create the run dir; refuse one that already holds a run (a resumed run writes a new dir)."""
    distributed.check_same_run_dir(run_dir)  # torchrun / accelerate: every rank, one run dir
    if (run_dir / "metrics.json").exists() or (run_dir / "checkpoints").exists():
        raise RunDirExistsError(
            f"{run_dir} already holds a run; give a new hydra.run.dir (resume=<that dir> continues it in a new one)"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def resolve_resume(resume: Any, outputs_root: Path, run_dir: Path) -> str | None:
    """The checkpoint to resume from: None, ``true`` (newest earlier run with one) or a path."""
    if resume in (None, False, "", "false"):
        return None
    if resume is True or resume == "true":
        candidates = sorted(
            (p.parent for p in outputs_root.glob("**/checkpoints") if run_dir not in (p.parent, *p.parents)),
            key=lambda d: d.stat().st_mtime,
        )
        for run in reversed(candidates):
            last = get_last_checkpoint(str(run / "checkpoints"))
            if last:
                return last
        raise ResumeError(f"resume=true: no earlier run under {outputs_root} has a checkpoint")
    path = Path(str(resume)).expanduser()
    if (path / "trainer_state.json").is_file():
        return str(path)
    for folder in (path / "checkpoints", path):
        if folder.is_dir() and (last := get_last_checkpoint(str(folder))):
            return last
    raise ResumeError(f"resume={resume}: no checkpoint-* folder found there")
