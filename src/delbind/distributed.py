"""Rank awareness under `torchrun` / `accelerate launch`: every rank trains, rank 0 alone writes and logs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def world_size() -> int:
    """Number of processes of this launch (WORLD_SIZE, set by torchrun and accelerate); 1 otherwise."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """True on global rank 0 and in any single-process run."""
    return rank() == 0


def rank() -> int:
    """Global rank of this process (RANK); 0 in a single-process run."""
    return int(os.environ.get("RANK", "0"))


def barrier() -> None:
    """Wait for every rank of this launch (no-op in a single process). Through torch.distributed itself: on CPU
    nodes with one process each, accelerate's PartialState joins the process group but takes the launch for a single
    process, and its wait_for_everyone() returns at once (rank 0 then merged before rank 1 had written)."""
    if world_size() > 1:
        import torch.distributed as dist
        from accelerate import PartialState

        PartialState()  # joins the process group if it is not joined yet
        if dist.is_initialized():
            dist.barrier()
        else:
            PartialState().wait_for_everyone()


def broadcast(value: Any) -> Any:
    """Rank 0's ``value`` on every rank (a picklable object; itself in a single process)."""
    if world_size() < 2:
        return value
    import torch.distributed as dist
    from accelerate import PartialState

    PartialState()  # joins the process group if it is not joined yet
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def device() -> torch.device:
    """This rank's device: its own GPU under a multi-GPU launch, else the GPU, else the CPU."""
    import torch

    if world_size() > 1:
        from accelerate import PartialState

        return PartialState().device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def check_same_run_dir(run_dir: Path) -> None:
    """Fail fast when ranks resolved different run dirs: each rank resolves ``${now:}`` on its own."""
    if world_size() < 2:
        return
    import torch.distributed as dist
    from accelerate import PartialState

    PartialState()  # joins the process group the Trainer will use (gloo on CPU, nccl on GPU)
    dirs: list[str | None] = [None] * world_size()
    dist.all_gather_object(dirs, str(run_dir.resolve()))
    if len(set(dirs)) > 1:
        raise ValueError(
            f"ranks got different run dirs {sorted(set(dirs))}: pass one fixed hydra.run.dir=<dir> to every rank"
        )
