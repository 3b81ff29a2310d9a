"""What the report reads: the runs and their summary (comparison.py), and per run its config, history and scores."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import OmegaConf

from delbind.comparison import load_runs, summarize


@dataclass
class Report:
    """Every run below the given dirs (one row per metrics.json) and the per-arm summary of comparison.py."""

    dirs: list[str]
    runs: pd.DataFrame
    summary: pd.DataFrame
    reference: str | None = None  # the row the comparison pairs the others against; None: the val-best row

    def first_runs(self) -> pd.DataFrame:
        """One run per arm (its lowest seed): the one whose curves are drawn; arms in the table's order."""
        first = self.runs.sort_values("seed", kind="stable").groupby("arm", sort=False).head(1).set_index("arm")
        return first.loc[self.summary["arm"]]


def load_report(paths: list[str | Path], reference: str | None = None) -> Report:
    """The runs found at or below ``paths`` and their summary."""
    runs = load_runs(paths)
    order = list(dict.fromkeys(runs["arm"]))  # sweep order, as the comparison table
    summary = summarize(runs).set_index("arm").loc[order].reset_index()
    return Report([str(p) for p in paths], runs, summary, reference)


def log_history(run_dir: str | Path) -> list[dict[str, Any]]:
    """The Trainer's log history from the run's newest checkpoint; [] for arms without one (baselines)."""
    states = Path(run_dir).glob("checkpoints/checkpoint-*/trainer_state.json")
    newest = max(states, key=lambda p: int(p.parent.name.rsplit("-", 1)[1]), default=None)
    return json.loads(newest.read_text())["log_history"] if newest else []


def predictions(run_dir: str | Path) -> pd.DataFrame:
    """predictions.parquet: smiles, label, kind, eval_set, score."""
    return pd.read_parquet(Path(run_dir) / "predictions.parquet")


def run_config(run_dir: str | Path) -> dict[str, Any]:
    """The run's resolved config (.hydra/config.yaml), {} when absent."""
    path = Path(run_dir) / ".hydra" / "config.yaml"
    return OmegaConf.to_container(OmegaConf.load(path), resolve=False) if path.is_file() else {}


def what_trains(cfg: dict[str, Any]) -> str:
    """The arm's recipe in a few words, from its config."""
    baseline = cfg.get("baseline")
    if baseline:
        est = baseline.get("estimator", {})
        name = str(est.get("_target_", "?")).rsplit(".", 1)[-1]
        extra = f", {est['n_estimators']} trees" if "n_estimators" in est else ""
        return f"{baseline.get('features')} features + {name}{extra}"
    mode = cfg.get("mode", {})
    if mode.get("lora"):
        return f"LoRA r={mode['lora'].get('r')} on {', '.join(mode['lora'].get('target_modules', []))} + head"
    if mode.get("linear_probe"):
        return "head on frozen embeddings, then every weight"
    layers = mode.get("trainable_layers")
    if layers == 0 and not mode.get("train_embeddings"):
        return "head only (trunk frozen)"
    trunk = "all layers" if layers is None else f"top {layers} layers"
    return f"{trunk}{' + embeddings' if mode.get('train_embeddings') else ''} + head"


def setup_rows(report: Report) -> pd.DataFrame:
    """Each arm's setup: model, data, recipe, learning rate, batch, epochs run, trainable / total parameters."""
    rows = []
    for arm, run in report.first_runs().iterrows():
        cfg = run_config(run["run_dir"])
        trainer = cfg.get("trainer", {}) if not cfg.get("baseline") else {}
        data = cfg.get("data", {})
        params = " / ".join(_number(run.get(k)) for k in ("trainable_params", "total_params"))
        rows.append(
            {
                "arm": arm,
                "seeds": int(report.runs.loc[report.runs["arm"] == arm, "seed"].nunique()),
                "data": f"{run.get('data', data.get('name'))} ({data.get('split', '?')} split)",
                "what trains": what_trains(cfg),
                "learning rate": trainer.get("learning_rate", "n/a"),
                "batch": trainer.get("per_device_train_batch_size", "n/a"),
                "epochs run": _number(run.get("epochs")),
                "trainable / total params": params,
            }
        )
    return pd.DataFrame(rows)


def _number(value: Any) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{value:,.0f}" if float(value) >= 10 else f"{value:g}"


def heldout_kd(run_dir: str | Path) -> pd.DataFrame:
    """Held-out (KinDEL) scores with their Kd (nM): predictions' heldout_* rows joined by position with
    ``dataset/external/<set>.parquet``; empty when the run has none or did not keep the Kd."""
    preds = predictions(run_dir)
    parts = []
    for name, part in preds[preds["eval_set"].str.startswith("heldout_")].groupby("eval_set", sort=False):
        path = Path(run_dir) / "dataset" / "external" / f"{name}.parquet"
        if not path.is_file():
            continue
        ext = pd.read_parquet(path)
        if "kd" not in ext or len(ext) != len(part) or list(ext["smiles"]) != list(part["smiles"]):
            continue  # not the file these scores came from
        parts.append(part.assign(kd=ext["kd"].to_numpy()))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[*preds.columns, "kd"])
