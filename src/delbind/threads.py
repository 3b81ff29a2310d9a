"""CPU threads per process: the jobs running side by side on one machine share its cores, not multiply them.

Two processes that each start one torch / OpenMP thread per core spin against each other: a fine-tuning
step on this 2-core machine went from ~1 s to 5-6 s with two busy jobs. ``threads=auto`` gives each process
``cores // jobs`` (cores: torch's default for a process alone), where jobs = the processes of this launch on
this machine (torchrun / accelerate's LOCAL_WORLD_SIZE, or a Hydra parallel launcher's ``n_jobs``); an
``OMP_NUM_THREADS`` already set (by you, or by joblib in its workers) is kept.
Processes started separately cannot see each other: give each ``threads=``.
"""

from __future__ import annotations

import functools
import os


@functools.cache
def cores() -> int:
    """Threads one process would use alone: torch's own default (the physical cores it may run on), read once,
    before delbind sets anything."""
    import torch

    return torch.get_num_threads()


def jobs_on_this_machine() -> int:
    """Processes of this launch sharing the machine: LOCAL_WORLD_SIZE, or the Hydra launcher's n_jobs."""
    jobs = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
            n_jobs = int(HydraConfig.get().launcher.get("n_jobs") or 1)
            jobs = max(jobs, cores() if n_jobs < 0 else n_jobs)  # joblib: -1 = one job per core
    except ImportError:
        pass
    return max(jobs, 1)


def resolve_threads(requested: int | str | None) -> int:
    """``auto`` (or None): OMP_NUM_THREADS when set, else ``cores() // jobs_on_this_machine()``; or a number."""
    if requested in (None, "auto"):
        if os.environ.get("OMP_NUM_THREADS", "").isdigit():
            return max(int(os.environ["OMP_NUM_THREADS"]), 1)
        return max(cores() // jobs_on_this_machine(), 1)
    n = int(requested)
    if n < 1:
        raise ValueError(f"threads={requested!r}: use auto or a number >= 1")
    return n


def set_threads(requested: int | str | None) -> int:
    """Set torch's intra-op threads for this process (see the module doc); returns the number set."""
    import torch

    n = resolve_threads(requested)
    torch.set_num_threads(n)
    return n
