"""Experiment loggers: wandb (offline unless asked or keyed), tensorboard, or none. One run per job."""

from __future__ import annotations

import os
from collections.abc import Iterable
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


def log_results(cfg: DictConfig, run_dir: Path, metrics: dict[str, Any], predictions: pd.DataFrame) -> None:
    """Send the final test metrics, loss curve and ROC / PR curves to the active logger."""
    scalars = {k: v for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    if cfg.logger.name == "wandb":
        import wandb

        if wandb.run is None:
            return
        wandb.run.summary.update(metrics)
        payload: dict[str, Any] = {}
        if (run_dir / "loss_curve.png").is_file():  # baselines have no training curve
            payload["loss_curve"] = wandb.Image(str(run_dir / "loss_curve.png"))
        for eval_set, part in predictions.groupby("eval_set"):
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


def logged_to_wandb(run_dirs: Iterable[str | Path]) -> bool:
    """Whether any of the runs was logged to wandb (its run dir holds a wandb/ folder)."""
    return any((Path(d) / "wandb").is_dir() for d in run_dirs)


def log_comparison(
    summary: pd.DataFrame,
    out_dir: Path,
    project: str,
    images: dict[str, Path],
    files: Iterable[Path] = (),
) -> None:
    """One wandb run for a sweep's results: the summary as a Table, the images that exist, ``files`` as a
    ``report`` artifact."""
    import wandb

    name = f"comparison-{out_dir.name}"
    with wandb.init(project=project, job_type="comparison", name=name, dir=str(out_dir), mode=wandb_mode(None)) as run:
        payload: dict[str, Any] = {"comparison": wandb.Table(dataframe=summary)}
        payload |= {key: wandb.Image(str(path)) for key, path in images.items() if Path(path).is_file()}
        run.log(payload)
        files = list(files)
        if files:
            artifact = wandb.Artifact(f"report-{out_dir.name}", type="report")
            for path in files:
                artifact.add_file(str(path))
            run.log_artifact(artifact)
