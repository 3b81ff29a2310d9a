"""Size + sha256 records of cached files and folders, and the check made before trusting one on read."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from delbind.io import write_json

MANIFEST = "delbind_manifest.json"  # inside a folder (a checkpoint, a converted model): every file's size + digest


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_record(path: Path) -> dict[str, Any]:
    """What to record beside a cached file: its size and sha256."""
    return {"size": path.stat().st_size, "sha256": sha256_of(path)}


def file_mismatch(path: Path, record: dict[str, Any]) -> str | None:
    """Why ``path`` is not the file ``record`` describes (missing, size, digest), or None when it is."""
    if not path.is_file():
        return f"{path.name} is missing"
    if "size" not in record or "sha256" not in record:
        return f"{path.name} has no size/digest record"
    size = path.stat().st_size
    if size != record["size"]:  # the cheap check first: a truncated file fails here
        return f"{path.name} is {size} bytes, {record['size']} were recorded"
    if sha256_of(path) != record["sha256"]:
        return f"{path.name} does not match its recorded sha256"
    return None


def hash_weights(h: Any, module: Any) -> None:
    """Feed every tensor of ``module``'s state dict (names and raw bytes, in name order) into the hash ``h``."""
    import torch  # here, not at the top: the asset and file checks run without torch

    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())


def write_manifest(folder: Path) -> None:
    """Record every file below ``folder``; written last, so a folder with a manifest is a finished one."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)
    write_json(folder / MANIFEST, {str(p.relative_to(folder)): file_record(p) for p in files})


def manifest_mismatch(folder: Path) -> str | None:
    """Why ``folder`` does not match its manifest (none, unreadable, a file changed), or None when it does."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        return f"no {MANIFEST} (its writing never finished, or it predates manifests)"
    except (OSError, ValueError) as e:
        return f"{MANIFEST} is unreadable ({type(e).__name__})"
    for rel, record in manifest.items():
        if reason := file_mismatch(folder / rel, record):
            return reason
    return None
