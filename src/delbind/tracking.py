"""Experiment loggers: wandb (offline unless asked or keyed), tensorboard, or none. One run per job."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import re
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from delbind import distributed, sweeps

log = logging.getLogger(__name__)
# Reaching the wandb server is checked before an online init: without network, wandb.init itself waited 111 s
# and then raised CommError. A refused or unroutable server is known within this many seconds.
PROBE_TIMEOUT_S = 3.0
ONLINE_INIT_TIMEOUT_S = 30.0  # wandb's default is 90 s, for a server that answers the probe but not the init
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL")  # environment variable names
REDACTED = "<redacted>"


def wandb_mode(configured: str | None) -> str:
    """The configured mode, else WANDB_MODE, else 'online' only with an API key; decided before the first init."""
    if configured or os.environ.get("WANDB_MODE"):
        return str(configured or os.environ["WANDB_MODE"])
    return "online" if os.environ.get("WANDB_API_KEY") else "offline"


def secrets() -> list[str]:
    """Values of environment variables named like secrets (WANDB_API_KEY, HF_TOKEN, *_SECRET...)."""
    return [v for k, v in os.environ.items() if SECRET_NAME.search(k) and len(v) >= 8]


def redact(value: Any, hidden: list[str] | None = None) -> Any:
    """``value`` (a string, or a config as dicts / lists) with every string holding a secret from the environment
    replaced by <redacted>: what a run records must never carry a credential."""
    hidden = secrets() if hidden is None else hidden
    if isinstance(value, dict):
        return {k: redact(v, hidden) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, hidden) for v in value]
    if isinstance(value, str) and any(s in value for s in hidden):
        return REDACTED
    return value


def _unreachable(base_url: str) -> str | None:
    """Why the wandb server cannot be reached (one short request), or None: any HTTP answer means it can.

    The request runs in a daemon thread with a hard deadline: requests' timeout does not bound a DNS lookup.
    """
    import requests

    outcome: list[str | None] = []

    def probe() -> None:
        try:
            requests.head(base_url, timeout=PROBE_TIMEOUT_S, allow_redirects=False)
            outcome.append(None)
        except requests.RequestException as e:
            outcome.append(f"{base_url} is unreachable ({type(e).__name__})")

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(PROBE_TIMEOUT_S + 1)
    return outcome[0] if outcome else f"{base_url} did not answer within {PROBE_TIMEOUT_S + 1:.0f} s"


def init_wandb(mode: str, run_dir: Path, **kwargs: Any) -> Any:
    """wandb.init in ``mode``; an online init that cannot reach its server (or fails) logs offline instead, with
    one warning line saying how to upload later. Never a long wait, never a traceback."""
    import wandb

    if mode == "online":
        reason = _unreachable(os.environ.get("WANDB_BASE_URL") or wandb.setup().settings.base_url)
        if reason is None:
            try:
                settings = wandb.Settings(init_timeout=ONLINE_INIT_TIMEOUT_S)
                return wandb.init(mode="online", dir=str(run_dir), settings=settings, **kwargs)
            except Exception as e:  # CommError, AuthenticationError, UsageError...: none of them may end the run
                reason = f"online init failed ({type(e).__name__}: {redact(str(e).splitlines()[0][:160])})"
        log.warning(
            "wandb: %s; logging offline to %s instead; upload it later with `wandb sync %s`",
            reason,
            run_dir / "wandb",
            run_dir / "wandb" / "offline-run-*",
        )
        mode = "offline"
    return wandb.init(mode=mode, dir=str(run_dir), **kwargs)


def start(cfg: DictConfig, run_dir: Path) -> list[str]:
    """Start the configured logger; return the Trainer's ``report_to`` list."""
    name = cfg.logger.name
    if name == "none" or not distributed.is_main_process():  # one run per launch: rank 0 logs
        return []
    if name == "tensorboard":
        os.environ["TENSORBOARD_LOGGING_DIR"] = str(run_dir / "tensorboard")
        return ["tensorboard"]
    if name == "wandb":
        wcfg = cfg.logger.wandb
        job = sweeps.wandb_identity(cfg.run_name, wcfg.get("group"))  # a sweep job: named by overrides
        os.environ["WANDB_DIR"] = str(run_dir)  # the wandb/ folder lives in the run dir
        init_wandb(
            wandb_mode(wcfg.get("mode")),
            run_dir,
            project=wcfg.project,
            entity=wcfg.get("entity"),
            group=job["group"],
            name=job["name"],
            tags=[str(t) for t in wcfg.get("tags") or []] + job["tags"],
            config=redact(OmegaConf.to_container(cfg, resolve=True)),  # a ${oc.env:...} may resolve to a secret
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
    with init_wandb(wandb_mode(None), out_dir, project=project, job_type="comparison", name=name) as run:
        payload: dict[str, Any] = {"comparison": wandb.Table(dataframe=summary)}
        payload |= {key: wandb.Image(str(path)) for key, path in images.items() if Path(path).is_file()}
        run.log(payload)
        files = list(files)
        if files:
            artifact = wandb.Artifact(f"report-{out_dir.name}", type="report")
            for path in files:
                artifact.add_file(str(path))
            run.log_artifact(artifact)
