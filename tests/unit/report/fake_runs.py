"""Fake cross-validation run dirs for the report tests: metrics.json and predictions.parquet per fold."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

COSTS = {"train_samples_per_s": 5.0, "peak_memory_mb": 100.0, "trainable_params": 1000.0, "total_params": 5000.0}


def _noise(key: str, n: int) -> np.ndarray:
    return np.random.default_rng(zlib.crc32(key.encode())).normal(size=n)


def write_arm(
    root: Path,
    arm: str,
    hard: float,
    easy: float | None = None,
    val: float = 0.5,
    folds: int = 3,
    ran: tuple[int, ...] | None = None,
    data_seed: int = 0,
    seed: int = 0,
    time: float = 10.0,
    n: int = 30,
    noise: str | None = None,
    **extra: object,
) -> list[Path]:
    """One k-fold repeat (``data_seed``/``seed``) of ``arm``, folds ``ran`` (default: all) of ``folds``. Fold f's
    test molecules are its own (the folds tile the set); score = strength x label + noise shared by every arm +
    the arm's own noise (``noise``: whose; the same key gives the same scores). ``hard``/``easy``: the strengths."""
    easy = hard if easy is None else easy
    dirs = []
    for fold in range(folds) if ran is None else ran:
        run = root / f"{arm}-{data_seed}-{seed}-{fold}"
        run.mkdir(parents=True)
        metrics: dict[str, object] = {"arm": arm, "mode": arm, "model": "m", "seed": seed, "data_seed": data_seed,
                                      "cv": "kfold", "folds": folds, "fold": fold, "n_train": 200,
                                      "n_test_easy": 2 * n, "n_test_hard": 2 * n, "val_hard_auprc": val,
                                      "train_runtime_s": time, **COSTS, **extra}  # fmt: skip
        parts = []
        for kind, strength in (("easy", easy), ("hard", hard)):
            label = np.repeat([1, 0], n)
            shared = _noise(f"{kind}/{data_seed}/{fold}", 2 * n)
            own = _noise(f"{noise or arm}/{kind}/{data_seed}/{seed}/{fold}", 2 * n)
            score = 1 / (1 + np.exp(-(strength * label + shared + 0.7 * own)))
            smiles = [f"{kind}-{data_seed}-{fold}-{i}" for i in range(2 * n)]
            parts.append(pd.DataFrame({"smiles": smiles, "label": label, "kind": kind, "score": score}))
            auroc, auprc = roc_auc_score(label, score), average_precision_score(label, score)
            for metric, v in (("auroc", auroc), ("auprc", auprc)):
                metrics |= {f"test_{kind}_{metric}": v, f"test_{kind}_{metric}_ci95": [v - 0.05, min(v + 0.05, 1.0)]}
        preds = pd.concat(parts, ignore_index=True)
        preds.assign(eval_set="test_" + preds["kind"]).to_parquet(run / "predictions.parquet", index=False)
        (run / "metrics.json").write_text(json.dumps(metrics))
        dirs.append(run)
    return dirs


def write_old_run(root: Path, arm: str, seed: int, value: float = 0.7, val: float = 0.5) -> Path:
    """A run from before cross-validation: no cv, fold or data_seed (its seed re-split the data)."""
    run = root / f"old-{arm}-{seed}"
    run.mkdir(parents=True)
    metrics = {"arm": arm, "mode": arm, "model": "m", "seed": seed, "n_train": 200, "val_hard_auprc": val,
               "train_runtime_s": 10.0, **COSTS}  # fmt: skip
    for m in ("test_easy_auroc", "test_easy_auprc", "test_hard_auroc", "test_hard_auprc"):
        metrics |= {m: value, f"{m}_ci95": [value - 0.05, value + 0.05]}
    (run / "metrics.json").write_text(json.dumps(metrics))
    return run
