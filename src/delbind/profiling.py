"""Time and peak memory: one way to read them, for runs, data builds and benchmarks."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import logging
import resource
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _torch_cuda() -> Any:
    """torch.cuda if torch is imported and sees a GPU, else None (a data-only process never imports torch)."""
    torch = sys.modules.get("torch")
    return torch.cuda if torch is not None and torch.cuda.is_available() else None


def reset_peak_memory() -> bool:
    """Open a new peak-memory window for this run; False where only the process-lifetime peak is known.

    Multirun jobs share one process: without the reset every job would report the peak of the
    largest job before it. Linux resets the peak RSS through /proc/self/clear_refs.
    """
    if cuda := _torch_cuda():
        cuda.reset_peak_memory_stats()
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # hand freed heap pages back, or they count as this run's
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mb() -> float:
    """Peak resident set size of this process (since the last reset on Linux), in MB."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
    return ru / 2**20 if sys.platform == "darwin" else ru / 1024


def peak_memory(window_reset: bool) -> dict[str, Any]:
    """``peak_memory_mb``: CUDA max allocated on a GPU, else peak RSS; ``peak_rss_mb`` always; and what they are."""
    rss = peak_rss_mb()
    if cuda := _torch_cuda():
        return {"peak_memory_mb": cuda.max_memory_allocated() / 2**20, "peak_memory_kind": "cuda_max_allocated",
                "peak_rss_mb": rss}  # fmt: skip
    kind = "cpu_peak_rss" if window_reset else "cpu_peak_rss_of_process"  # the latter may include earlier jobs
    return {"peak_memory_mb": rss, "peak_memory_kind": kind, "peak_rss_mb": rss}


@contextlib.contextmanager
def stage(name: str, logger: logging.Logger = log) -> Iterator[None]:
    """Log the wall time of one stage and the peak RSS after it (``stage <name>: ...``; bench scripts collect these)."""
    start = time.perf_counter()
    yield
    logger.info("stage %s: %.2f s, peak RSS %.0f MB", name, time.perf_counter() - start, peak_rss_mb())
