"""A run's ``model/`` (weights + tokenizer, or estimator.joblib + baseline.json) is written whole or not at all,
and proves itself before anything reads it.

Writers put every file in ``.model.partial`` beside it (``staging``); ``publish`` then records each file's size
and sha256 in ``delbind_manifest.json`` (integrity.py) and renames the folder to ``model/``: a ``model/`` exists
only once complete. Readers (predict, a run taking ``model.name_or_path=<dir>``, ensembles) call ``verify``,
which refuses, in one line naming the file and what to do, a model dir whose files do not match its manifest, a
run's ``model/`` without one (its writing never finished, or it predates manifests) and a run whose ``model/`` was
never published. A model dir outside any run (a Hugging Face download, a converted checkpoint) has no manifest to
check and is taken as it is. Hashing costs one read of the files: 0.03 s for rxnfp's 27 MB (2-core CPU, files in
the page cache).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from delbind.errors import UnreadableRunError
from delbind.integrity import MANIFEST, manifest_mismatch, write_manifest

STAGING_SUFFIX = ".partial"
RUN_FILES = ("metrics.json", ".hydra", ".delbind_run")  # a folder holding any of these is a run dir


def _staged(final: Path) -> Path:
    return final.with_name(f".{final.name}{STAGING_SUFFIX}")


def staging(final: Path) -> Path:
    """Where ``final``'s files are written before ``publish``: ``.<name>.partial`` beside it, created if needed."""
    tmp = _staged(final)
    tmp.mkdir(parents=True, exist_ok=True)
    return tmp


def publish(final: Path) -> Path:
    """Seal ``final``'s staging folder (its manifest, written last) and rename it to ``final`` in one step."""
    tmp = _staged(final)
    if not tmp.is_dir():
        raise FileNotFoundError(f"nothing staged for {final} (expected {tmp})")
    write_manifest(tmp)
    if final.exists():  # a folder is replaced as a whole, never merged with an older one
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


def is_run_dir(folder: Path) -> bool:
    return any((folder / name).exists() for name in RUN_FILES)


def _fix(run_dir: Path | None) -> str:
    if run_dir is None:
        return "copy it again from where it came from, or point at another dir"
    return f"retrain it (resume={run_dir} continues from its checkpoints, if any), or point at another dir"


def check_finished(run_dir: Path) -> None:
    """Raise unless the run in ``run_dir`` (when it is one) finished: model/ published, metrics.json written."""
    run_dir = Path(run_dir)
    if not is_run_dir(run_dir):
        return
    model = run_dir / "model"
    if not model.exists() and _staged(model).is_dir():
        raise UnreadableRunError(f"{run_dir}: the run stopped while writing its model/; {_fix(run_dir)}")
    if model.exists() and not (run_dir / "metrics.json").exists():
        raise UnreadableRunError(
            f"{run_dir}: the run did not finish (no metrics.json: it stopped after saving model/, before its "
            f"evaluation); {_fix(run_dir)}"
        )


def verify(model_dir: Path) -> Path:
    """``model_dir`` when it matches its manifest; else UnreadableRunError naming the file and the fix."""
    model_dir = Path(model_dir)
    run_dir = model_dir.parent if model_dir.name == "model" and is_run_dir(model_dir.parent) else None
    if (model_dir / MANIFEST).is_file():
        if reason := manifest_mismatch(model_dir):
            raise UnreadableRunError(f"{model_dir}: {reason}; {_fix(run_dir)}")
    elif run_dir is not None:
        raise UnreadableRunError(
            f"{model_dir} has no {MANIFEST}: the run never finished writing it, or it predates manifests; "
            f"{_fix(run_dir)}"
        )
    return model_dir


def verify_local(path: Path | str) -> None:
    """For a local path a loader is about to read (``model.name_or_path``): a run's model/ that was never published,
    or a model dir that does not match its manifest, is refused; hub names and other paths pass."""
    path = Path(path)
    if path.name == "model" and path.parent.is_dir():
        check_finished(path.parent)
    if path.is_dir():
        verify(path)


def manifest_digest(model_dir: Path) -> str | None:
    """sha256 of ``model_dir``'s manifest (which pins every file's digest), or None without one."""
    path = Path(model_dir) / MANIFEST
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
