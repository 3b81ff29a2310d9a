"""Seed ensembles: runs that share a split (``data_seed``) and differ only in ``seed`` -> one run dir of mean scores.

A member is a finished run dir (metrics.json + predictions.parquet). Members are grouped by what makes them the
same recipe on the same molecules (arm, model, pooling, data, target, split, data_seed, and the rest of the
run's composed config, ``.hydra/config.yaml``, but for the seed and where its outputs go); each group of two or
more distinct seeds becomes one ensemble run dir whose P(binder) is the mean of its members' P(binder), scored as
train.py scores a run (val metrics for choosing, test metrics with bootstrap intervals, external sets). Its
metrics.json is read by compare.py and report.py like any run's: ``seed`` is the data seed (the unit its interval
is taken over), ``train_runtime_s`` the members' sum (an embedding cache they share counted once),
``peak_memory_mb`` their max.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from delbind.arms.base import TEST_SETS, VAL_SETS
from delbind.artifacts import manifest_digest
from delbind.errors import DataError, NoRunsError, RunDirExistsError
from delbind.evaluation import binary_metrics, external_metrics, score_set
from delbind.io import atomic_write, write_json
from delbind.rundirs import claim_run_dir, finished_runs

log = logging.getLogger(__name__)

# What members of one ensemble must share; `data_seed` is absent from runs made before it existed (= seed then).
RECIPE = ("arm", "model", "pooling", "data", "target", "split", "data_seed", "fold")
# Config keys that say which run this is or where it writes, not what it trains: the rest must match.
NOT_RECIPE = ("seed", "data_seed", "run_name", "threads", "resume", "paths", "logger")
FOLD_KEYS = ("cv", "folds", "fold", "min_per_class", "label", "commit")
ROWS = ["eval_set", "smiles", "label", "kind"]  # predictions.parquet's identity columns, in row order
SUMMED = ("train_runtime_s", "trainable_params", "embedding_s", "featurize_s", "fit_s", "tta_s")


def find_members(paths: Iterable[Path | str], strict: bool = False) -> list[dict[str, Any]]:
    """Every finished run at or below ``paths`` with its predictions: metrics.json + ``run_dir``; ensembles that an
    earlier call wrote there are not members. Unreadable or unfinished runs are left out, one line each
    (``strict``: an error)."""
    members = []
    runs, _ = finished_runs(paths, strict)
    for metrics in runs:
        run_dir = Path(metrics.pop("run_dir"))
        if "ensemble_size" in metrics or "blend_of" in metrics:  # made from runs, not a run of its own
            continue
        if not (run_dir / "predictions.parquet").is_file():  # a pre-training run, or a run from before them
            log.info("not in an ensemble: %s (metrics.json but no predictions.parquet)", run_dir)
            continue
        metrics.setdefault("data_seed", metrics["seed"])  # runs before data_seed: the split followed `seed`
        metrics.setdefault("arm", metrics.get("mode"))
        metrics["config_key"] = config_key(run_dir)
        members.append({**metrics, "run_dir": str(run_dir.resolve())})  # predict.py loads them from anywhere
    if not members:
        raise NoRunsError(f"no finished run with predictions under {[str(p) for p in paths]}")
    return members


def config_key(run_dir: Path) -> str | None:
    """A digest of the run's composed config (``.hydra/config.yaml``) without the keys in NOT_RECIPE: two runs of
    one sweep over a learning rate differ here, two seeds of one recipe do not. None for a run dir without it."""
    path = run_dir / ".hydra" / "config.yaml"
    if not path.is_file():
        return None
    cfg = OmegaConf.to_container(OmegaConf.load(path), resolve=False)  # unresolved: ${seed} never leaks in
    return _digest({k: v for k, v in cfg.items() if k not in NOT_RECIPE})


def _digest(value: Any) -> str:
    """Eight hex digits of a JSON-able value."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:8]


def _recipe(member: dict[str, Any]) -> tuple:
    """What members of one ensemble share: the RECIPE fields and the rest of the config (``config_key``)."""
    return (*(member.get(k) for k in RECIPE), member.get("config_key"))


def group_members(members: list[dict[str, Any]]) -> tuple[list[list[dict[str, Any]]], list[str]]:
    """Groups of runs of one recipe on one split with two or more distinct seeds, and the run dirs left out
    (alone in their group, or a repeated seed: an ensemble of one model twice is not an ensemble)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for member in members:
        groups.setdefault(_recipe(member), []).append(member)
    kept, left_out = [], []
    for group in groups.values():
        unique: dict[int, dict[str, Any]] = {}
        for member in sorted(group, key=lambda m: m["run_dir"]):
            if member["seed"] in unique:
                left_out.append(f"{member['run_dir']} (seed {member['seed']} again)")
            else:
                unique[member["seed"]] = member
        if len(unique) >= 2:
            kept.append([unique[s] for s in sorted(unique)])
        else:
            left_out += [
                f"{m['run_dir']} (no other seed with its recipe and config on data_seed {m['data_seed']})"
                for m in unique.values()
            ]
    return kept, left_out


def aligned_predictions(run_dirs: list[str], need: str) -> list[pd.DataFrame]:
    """The runs' predictions.parquet, which must hold the same molecules, labels and eval sets in the same order
    (the same split), else a DataError ending in ``need``."""
    frames = [pd.read_parquet(Path(d) / "predictions.parquet") for d in run_dirs]
    first = frames[0]
    for d, frame in zip(run_dirs[1:], frames[1:]):
        if len(frame) != len(first) or not frame[ROWS].reset_index(drop=True).equals(first[ROWS]):
            raise DataError(f"{d} scored other molecules than {run_dirs[0]}: {need}")
    return frames


def mean_predictions(run_dirs: list[str]) -> pd.DataFrame:
    """The members' predictions.parquet with ``score`` = the mean of their scores (``aligned_predictions``)."""
    frames = aligned_predictions(run_dirs, "members of an ensemble need the same split (data_seed) and data config")
    first = frames[0]
    scores = np.stack([f["score"].to_numpy(float) for f in frames])
    return first[ROWS].assign(score=scores.mean(axis=0), score_sd=scores.std(axis=0))


def ensemble_metrics(
    group: list[dict[str, Any]], predictions: pd.DataFrame, n_bootstrap: int, confidence: float
) -> dict[str, Any]:
    """metrics.json of one ensemble: the recipe, the members, val / test / external scores of the mean, costs."""
    first = group[0]
    metrics: dict[str, Any] = {k: first.get(k) for k in (*RECIPE, "mode", "precision", "n_train")}
    metrics |= {
        "seed": first["data_seed"],  # comparison's replicate: ensembles on different splits
        # which fold of which cross-validation it scored, the size floor and eval counts: those of its members
        **{
            k: v
            for k, v in first.items()
            if k in FOLD_KEYS or (k.startswith("n_") and k.endswith(("binders", "negatives")))
        },
        "ensemble_size": len(group),
        "ensemble_seeds": [m["seed"] for m in group],
        "ensemble_members": [m["run_dir"] for m in group],
        # each member's model/ as it was when the ensemble was made: predict.py refuses a member changed since
        "ensemble_member_models": {m["run_dir"]: manifest_digest(Path(m["run_dir"]) / "model") for m in group},
        "ensemble_config_key": first.get("config_key"),
    }
    metrics |= score_predictions(predictions, Path(first["run_dir"]), n_bootstrap, confidence, int(first["data_seed"]))
    for key in SUMMED:
        values = [m.get(key) for m in group]
        metrics[key] = None if any(v is None for v in values) else float(sum(values))
    repeated = _repeated_embedding_s(group)
    for key in ("train_runtime_s", "embedding_s"):  # one embedding cache serves every member: pay it once
        if metrics[key] is not None:
            metrics[key] -= repeated
    metrics["peak_memory_mb"] = max(m.get("peak_memory_mb") or 0.0 for m in group)  # members ran one by one
    metrics["forgetting"] = None  # a property of one trunk; see the members' metrics.json
    return metrics


def score_predictions(
    predictions: pd.DataFrame, run_dir: Path, n_bootstrap: int, confidence: float, seed: int
) -> dict[str, Any]:
    """Val, test (with bootstrap CIs) and external-set metrics of a run made from other runs' predictions (an
    ensemble, a blend), as train.py scores a run; ``run_dir``: a member whose dataset/ holds the external Kd."""
    metrics: dict[str, Any] = {}
    sets = {name: part for name, part in predictions.groupby("eval_set", sort=False)}
    for name in VAL_SETS:
        metrics[f"n_{name}"] = len(sets[name])
        metrics |= {f"{name}_{k}": v for k, v in binary_metrics(sets[name]["label"], sets[name]["score"]).items()}
    for name in TEST_SETS:
        part = sets[name]
        metrics[f"n_{name}"] = len(part)
        metrics |= score_set(name, part["label"], part["score"], n_bootstrap, confidence, seed)
    for name in [n for n in sets if n not in (*VAL_SETS, *TEST_SETS)]:
        frame = _with_kd(run_dir, name, sets[name])
        metrics |= external_metrics(name, frame, frame["score"].to_numpy())
    return metrics


def _repeated_embedding_s(group: list[dict[str, Any]]) -> float:
    """Seconds of embedding that the members' summed costs count more than once: members of a cached frozen arm
    on one split read one embedding cache, and each counts the time it took to compute (as a lone run should)."""
    by_cache: dict[str, list[float]] = {}
    for member in group:
        if member.get("embedding_cache") and member.get("embedding_s") is not None:
            by_cache.setdefault(member["embedding_cache"], []).append(member["embedding_s"])
    return float(sum(sum(times) - times[0] for times in by_cache.values()))


def _with_kd(run_dir: Path, name: str, part: pd.DataFrame) -> pd.DataFrame:
    """An external set's rows with the member's kept Kd (``dataset/external/<name>.parquet``) when it has one."""
    path = run_dir / "dataset" / "external" / f"{name}.parquet"
    if path.is_file():
        ext = pd.read_parquet(path)
        if "kd" in ext and list(ext["smiles"]) == list(part["smiles"]):
            return part.assign(kd=ext["kd"].to_numpy())
    return part


def ensemble_name(group: list[dict[str, Any]]) -> str:
    """The ensemble's run dir name: recipe and data seed, e.g. ``ensemble-frozen-rxnfp_bert-mean-chembl_kinase-
    CHEMBL262-d0``."""
    first = group[0]
    parts = [first.get(k) for k in ("arm", "model", "pooling", "data", "target")]
    fold = [] if first.get("fold") is None else [f"f{first['fold']}"]
    name = "-".join(["ensemble", *(str(p) for p in parts if p is not None), f"d{first['data_seed']}", *fold])
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def write_ensembles(
    paths: Iterable[Path | str],
    out_dir: Path | str,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    strict: bool = False,
) -> list[Path]:
    """One ensemble run dir per group of members found below ``paths``, under ``out_dir``: predictions.parquet
    (mean score, and ``score_sd`` across members), metrics.json, the first member's dataset/. Returns the dirs.
    ``strict``: an unreadable or unfinished run below ``paths`` is an error, not a left-out line."""
    groups, left_out = group_members(find_members(paths, strict))
    for line in left_out:
        log.info("not in an ensemble: %s", line)
    if not groups:
        raise NoRunsError(
            f"no two runs of one recipe share a data_seed with different seeds ({len(left_out)} runs found): run "
            "e.g. `scripts/train.py -m data_seed=0 seed=0,1,2,3,4`"
        )
    names = [ensemble_name(group) for group in groups]
    written = []
    for name, group in zip(names, groups):
        if names.count(name) > 1:  # one name, two recipes (a sweep over a hyperparameter): keep them apart
            name = f"{name}-{_digest(_recipe(group[0]))}"
        run_dir = Path(out_dir) / name
        try:
            claim_run_dir(run_dir)
        except RunDirExistsError:
            raise RunDirExistsError(f"{run_dir} already holds an ensemble; give another --out") from None
        write_ensemble(group, run_dir, n_bootstrap, confidence)
        written.append(run_dir)
    return written


def write_ensemble(
    group: list[dict[str, Any]], run_dir: Path, n_bootstrap: int = 1000, confidence: float = 0.95
) -> dict[str, Any]:
    """One ensemble run dir from its members (``find_members`` dicts): predictions.parquet (mean score, and
    ``score_sd`` across members), the first member's dataset/, metrics.json last. Returns the metrics."""
    predictions = mean_predictions([m["run_dir"] for m in group])
    metrics = ensemble_metrics(group, predictions, n_bootstrap, confidence)
    if (Path(group[0]["run_dir"]) / "dataset").is_dir():
        shutil.copytree(Path(group[0]["run_dir"]) / "dataset", run_dir / "dataset", dirs_exist_ok=True)
    with atomic_write(run_dir / "predictions.parquet") as tmp:
        predictions.to_parquet(tmp, index=False)
    write_json(run_dir / "metrics.json", metrics)  # last, as a run: a dir with metrics.json is finished
    log.info("%s: %d members, val hard AU-PRC %.3f", run_dir, len(group), metrics["val_hard_auprc"])
    return metrics
