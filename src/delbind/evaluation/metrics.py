"""AUROC and AU-PRC (scikit-learn), for the Trainer's evaluations, the test sets and external Kd sets."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit
from sklearn.metrics import average_precision_score, roc_auc_score
from transformers import EvalPrediction

METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "auroc": roc_auc_score,
    "auprc": average_precision_score,  # step-wise AU-PRC, no interpolation
}


def binary_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """AUROC and AU-PRC; NaN when only one class is present (the metric is undefined)."""
    labels = np.asarray(labels).astype(int).ravel()
    scores = np.asarray(scores, dtype=float).ravel()
    if len(np.unique(labels)) < 2:
        return {name: float("nan") for name in METRICS}
    return {name: round(float(fn(labels, scores)), 12) for name, fn in METRICS.items()}  # as bootstrap_ci


def compute_metrics(pred: EvalPrediction) -> dict[str, float]:
    """Trainer hook: logits of a whole eval set -> AUROC / AU-PRC of P(binder)."""
    return binary_metrics(pred.label_ids, expit(np.asarray(pred.predictions, dtype=float)))


def external_metrics(name: str, frame: pd.DataFrame, scores: np.ndarray) -> dict[str, float]:
    """``<name>_spearman`` of score vs -log10(Kd) where the set has ``kd``, ``<name>_auroc/_auprc`` on its labels."""
    out: dict[str, float] = {f"n_{name}": len(frame)}
    if "kd" in frame:
        kd = frame["kd"].to_numpy(float)
        ok = np.isfinite(kd) & (kd > 0)  # no -log10 for a Kd of 0 or none (sources drop them; a guard, not a rule)
        out[f"{name}_spearman"] = float(stats.spearmanr(np.asarray(scores)[ok], -np.log10(kd[ok])).statistic)
    out.update({f"{name}_{k}": v for k, v in binary_metrics(frame["label"], scores).items()})
    return out


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA (Kornblith et al. 2019) between two representations of the same rows: 1 when one is the other up
    to rotation and isotropic scale, towards 0 when they share no linear structure. Columns are centred first."""
    x = np.asarray(x, dtype=np.float64) - np.mean(x, axis=0)
    y = np.asarray(y, dtype=np.float64) - np.mean(y, axis=0)
    cross = np.linalg.norm(y.T @ x) ** 2
    norms = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(cross / norms) if norms > 0 else float("nan")
