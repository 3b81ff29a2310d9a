"""Where a figure came from: the code's commit and the machine, recorded in metrics.json and results/."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from pathlib import Path


@functools.cache
def commit(root: Path | str | None = None) -> str:
    """The short git commit of the code (``+dirty`` with uncommitted changes outside ``results/``, the committed
    figures, which a study writes one table after another); ``unknown`` outside a checkout."""
    root = Path(root) if root else Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!results"],
                               cwd=root, capture_output=True, text=True)  # fmt: skip
    except OSError:
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def machine() -> str:
    """CPU model and core count (and the GPU, when torch sees one)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} cores"
    try:
        import torch

        if torch.cuda.is_available():
            text += f", {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return text
