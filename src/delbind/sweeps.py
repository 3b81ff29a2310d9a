"""Multirun helpers: a wandb identity per job, a sweep_summary.csv kept up to date, one GPU per parallel job."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from pathlib import Path
from typing import IO, Any

import pandas as pd
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from delbind.io import atomic_write

log = logging.getLogger(__name__)
SUMMARY = "sweep_summary.csv"


def multirun_job() -> DictConfig | None:
    """Hydra's config of the current job when it is part of a multirun, else None."""
    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    return hydra_cfg if hydra_cfg.mode == RunMode.MULTIRUN else None


def wandb_identity(default_name: str, group: str | None) -> dict[str, Any]:
    """wandb name/group/extra tags: a sweep job is named by its overrides and grouped by its sweep dir."""
    hydra_cfg = multirun_job()
    if hydra_cfg is None:
        return {"name": default_name, "group": group, "tags": []}
    sweep_dir = Path(hydra_cfg.sweep.dir)
    return {
        "name": hydra_cfg.job.override_dirname or default_name,
        "group": group or f"{sweep_dir.parent.name}/{sweep_dir.name}",
        "tags": ["sweep"],
    }


@contextlib.contextmanager
def _locked(path: Path) -> Any:
    """An exclusive lock held while parallel jobs (joblib, SLURM) rewrite the shared summary."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def summary_row(job_dir: Path, job_num: int, overrides: list[str], job_return: JobReturn) -> dict[str, Any]:
    """One row: job number, status, each override as a column, and the scalar metrics of metrics.json."""
    row: dict[str, Any] = {"job": job_num, "status": job_return.status.name, "job_dir": str(job_dir)}
    row["overrides"] = " ".join(overrides)
    row.update(o.split("=", 1) for o in overrides if "=" in o)
    if job_return.status == JobStatus.FAILED:
        err = job_return._return_value  # the exception; .return_value would re-raise it
        row["error"] = f"{type(err).__name__}: {err}"
    metrics_file = job_dir / "metrics.json"
    if metrics_file.is_file():
        metrics = json.loads(metrics_file.read_text())
        row.update({k: v for k, v in metrics.items() if not isinstance(v, list | dict)})
    return row


def append_summary(sweep_dir: Path, row: dict[str, Any]) -> Path:
    """Add or replace the job's row in <sweep dir>/sweep_summary.csv, columns the union over jobs."""
    path = sweep_dir / SUMMARY
    with _locked(sweep_dir / f".{SUMMARY}.lock"):
        rows = pd.read_csv(path) if path.is_file() else pd.DataFrame()
        if "job" in rows:
            rows = rows[rows["job"] != row["job"]]  # a re-run job (resumed study) replaces its row
        rows = pd.concat([rows, pd.DataFrame([row])], ignore_index=True).sort_values("job")
        with atomic_write(path) as tmp:  # readers never see a half-written file
            rows.to_csv(tmp, index=False)
    return path


class SweepSummary(Callback):
    """Hydra callback: after every multirun job, failed or not, record it in sweep_summary.csv."""

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        hydra_cfg = config.hydra
        if hydra_cfg.mode != RunMode.MULTIRUN:
            return
        row = summary_row(
            Path(hydra_cfg.runtime.output_dir), hydra_cfg.job.num, list(hydra_cfg.overrides.task), job_return
        )
        try:
            append_summary(Path(hydra_cfg.sweep.dir), row)
        except Exception as e:  # a summary problem must not fail a finished job
            log.warning("could not update %s: %s", SUMMARY, e)


_gpu_lock: IO[str] | None = None  # held for the life of the worker process


def claim_gpu(gpus: list[str], lock_dir: Path) -> str:
    """Pin this process to the first GPU in ``gpus`` no other live process holds; return its id."""
    global _gpu_lock
    if _gpu_lock is not None:  # a worker keeps its GPU: CUDA cannot switch devices once initialized
        return os.environ["CUDA_VISIBLE_DEVICES"]
    lock_dir.mkdir(parents=True, exist_ok=True)
    for gpu in gpus:
        handle = open(lock_dir / f".gpu{gpu}.lock", "a")  # noqa: SIM115 - must stay open to keep the lock
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        _gpu_lock = handle  # the OS drops the lock when the process exits
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
        return gpu
    raise RuntimeError(f"all GPUs {gpus} are taken: run at most {len(gpus)} jobs at once (hydra.launcher.n_jobs)")


class OneGpuPerJob(Callback):
    """Hydra callback: with ``gpus`` set (e.g. DELBIND_GPUS=0,1,2,3), each parallel job gets its own GPU."""

    def __init__(self, gpus: str | int | list | None = None) -> None:
        if isinstance(gpus, str):
            gpus = gpus.split(",")
        elif isinstance(gpus, int):
            gpus = [gpus]
        self.gpus = [str(g).strip() for g in gpus or [] if str(g).strip()]

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if self.gpus:
            gpu = claim_gpu(self.gpus, Path(config.hydra.sweep.dir))
            log.info("job %s pinned to GPU %s (CUDA_VISIBLE_DEVICES)", config.hydra.job.get("num"), gpu)
