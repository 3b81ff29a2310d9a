"""Experiment loggers: wandb (offline unless asked or keyed), tensorboard, or none. One run per job."""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from delbind import distributed, sweeps


def wandb_mode(configured: str | None) -> str:
    """The configured mode, else WANDB_MODE, else 'online' only with an API key; decided before the first init."""
    if configured or os.environ.get("WANDB_MODE"):
        return str(configured or os.environ["WANDB_MODE"])
    return "online" if os.environ.get("WANDB_API_KEY") else "offline"


def start(cfg: DictConfig, run_dir: Path) -> list[str]:
    """Start the configured logger; return the Trainer's ``report_to`` list."""
    name = cfg.logger.name
    if name == "none" or not distributed.is_main_process():  # one run per launch: rank 0 logs
        return []
    if name == "tensorboard":
        os.environ["TENSORBOARD_LOGGING_DIR"] = str(run_dir / "tensorboard")
        return ["tensorboard"]
    if name == "wandb":
        import wandb

        wcfg = cfg.logger.wandb
        job = sweeps.wandb_identity(cfg.run_name, wcfg.get("group"))  # a sweep job: named by overrides
        os.environ["WANDB_DIR"] = str(run_dir)  # the wandb/ folder lives in the run dir
        wandb.init(
            project=wcfg.project,
            entity=wcfg.get("entity"),
            group=job["group"],
            name=job["name"],
            tags=[str(t) for t in wcfg.get("tags") or []] + job["tags"],
            config=OmegaConf.to_container(cfg, resolve=True),
            dir=str(run_dir),
            mode=wandb_mode(wcfg.get("mode")),
            reinit="finish_previous",  # a multirun job never logs into the previous job's run
        )
        return ["wandb"]
    raise ValueError(f"logger={name!r}: choose wandb, tensorboard or none")


def log_results(
    cfg: DictConfig, run_dir: Path, metrics: dict[str, Any], predictions: pd.DataFrame | None = None
) -> None:
    """Send the final metrics, loss curve and (with predictions) test ROC / PR curves to the active logger."""
    scalars = {k: v for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    if cfg.logger.name == "wandb":
        import wandb

        if wandb.run is None:
            return
        wandb.run.summary.update(metrics)
        payload: dict[str, Any] = {}
        if (run_dir / "loss_curve.png").is_file():  # baselines have no training curve
            payload["loss_curve"] = wandb.Image(str(run_dir / "loss_curve.png"))
        for eval_set, part in predictions.groupby("eval_set") if predictions is not None else []:
            if not eval_set.startswith("test"):
                continue
            probs = np.stack([1 - part["score"].to_numpy(), part["score"].to_numpy()], axis=1)
            y = part["label"].to_numpy()
            payload[f"{eval_set}_roc"] = wandb.plot.roc_curve(y, probs, labels=["other", "binder"], classes_to_plot=[1])
            payload[f"{eval_set}_pr"] = wandb.plot.pr_curve(y, probs, labels=["other", "binder"], classes_to_plot=[1])
        wandb.log(payload)
    elif cfg.logger.name == "tensorboard":
        from torch.utils.tensorboard import SummaryWriter

        with SummaryWriter(os.environ["TENSORBOARD_LOGGING_DIR"]) as writer:
            for key, value in scalars.items():
                writer.add_scalar(f"final/{key}", value)


def finish(cfg: DictConfig, failed: bool) -> None:
    """Close the run even when the job failed, so the next multirun job starts clean."""
    if cfg.logger.name == "wandb":
        import wandb

        if wandb.run is not None:
            wandb.finish(exit_code=1 if failed else 0)


@contextlib.contextmanager
def job(cfg: DictConfig, run_dir: Path) -> Iterator[list[str]]:
    """Start the logger and yield the Trainer's ``report_to``; on the way out, failed or not, finish the logger's
    run and free the job's model, so the next multirun job starts clean."""
    report_to = start(cfg, run_dir)
    failed = True
    try:
        yield report_to
        failed = False
    finally:
        finish(cfg, failed)
        gc.collect()
        torch = sys.modules.get("torch")  # never imported here just to free memory
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()
