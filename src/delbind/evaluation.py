"""Scores to numbers and pictures: AUROC / AU-PRC, bootstrap intervals, loss curves."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402
from scipy.special import expit  # noqa: E402
from sklearn.metrics import average_precision_score, roc_auc_score  # noqa: E402
from transformers import EvalPrediction  # noqa: E402

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


def _ranked_auroc(scores: np.ndarray, n_pos: int) -> np.ndarray:
    """AUROC of each row of ``scores`` whose first ``n_pos`` columns are binders (Mann-Whitney, ties = 1/2)."""
    ranks = stats.rankdata(scores, axis=-1)
    n_neg = scores.shape[-1] - n_pos
    return (ranks[..., :n_pos].sum(-1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def _stepwise_auprc(scores: np.ndarray, n_pos: int) -> np.ndarray:
    """Average precision of each row, as scikit-learn computes it: one step per distinct threshold."""
    order = np.argsort(-scores, axis=-1, kind="stable")
    sorted_scores = np.take_along_axis(scores, order, -1)
    tp = np.cumsum(order < n_pos, axis=-1)
    # the last position of each run of tied scores is where a threshold's counts are read
    is_last = np.ones_like(sorted_scores, dtype=bool)
    is_last[..., :-1] = sorted_scores[..., 1:] != sorted_scores[..., :-1]
    tp_at_last = np.where(is_last, tp, 0)
    prev = np.maximum.accumulate(np.concatenate([np.zeros_like(tp[..., :1]), tp_at_last[..., :-1]], -1), -1)
    precision = tp / np.arange(1, scores.shape[-1] + 1)
    return (is_last * (tp - prev) * precision).sum(-1) / n_pos


# Vectorized over bootstrap resamples; equal to METRICS (tests check it against scikit-learn).
BATCHED = {"auroc": _ranked_auroc, "auprc": _stepwise_auprc}


def bootstrap_ci(
    labels: np.ndarray, scores: np.ndarray, metric: str, n_resamples: int, confidence: float, seed: int
) -> tuple[float, float]:
    """Percentile bootstrap CI resampling binders and non-binders separately (stratified).

    Stratifying keeps both classes in every resample and the prevalence fixed, which is what the
    easy-vs-hard AU-PRC comparison needs.
    """
    labels = np.asarray(labels).astype(int)
    scores = np.asarray(scores, dtype=float)
    pos, neg = scores[labels == 1], scores[labels == 0]
    if len(pos) < 2 or len(neg) < 2:
        return (float("nan"), float("nan"))
    fn = BATCHED[metric]

    def statistic(p: np.ndarray, n: np.ndarray, axis: int = -1) -> np.ndarray:
        return fn(np.concatenate([p, n], axis=-1), p.shape[-1])

    res = stats.bootstrap(
        (pos, neg),
        statistic,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    # rounded to 12 places, as binary_metrics: float error (1 - 2e-16 for a perfect ranking) is no difference
    return (round(float(res.confidence_interval.low), 12), round(float(res.confidence_interval.high), 12))


def score_set(
    name: str, labels: np.ndarray, scores: np.ndarray, n_resamples: int, confidence: float, seed: int
) -> dict[str, object]:
    """Flat metrics for one eval set: ``<name>_<metric>`` and ``<name>_<metric>_ci95``."""
    out: dict[str, object] = {}
    for metric, value in binary_metrics(labels, scores).items():
        out[f"{name}_{metric}"] = value
        out[f"{name}_{metric}_ci95"] = list(bootstrap_ci(labels, scores, metric, n_resamples, confidence, seed))
    return out


def plot_loss_curve(log_history: list[dict], path: Path, title: str = "") -> None:
    """Training loss per logged step and each eval set's loss per evaluation."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    train = [(h["step"], h["loss"]) for h in log_history if "loss" in h and "step" in h]
    if train:
        ax.plot(*zip(*train), lw=1, alpha=0.8, label="train loss")
    eval_keys = sorted({k for h in log_history for k in h if k.startswith("eval_") and k.endswith("_loss")})
    for key in eval_keys:
        pts = [(h["step"], h[key]) for h in log_history if key in h]
        ax.plot(*zip(*pts), marker="o", label=key.removeprefix("eval_").removesuffix("_loss") + " loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("BCE loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def external_metrics(name: str, frame: pd.DataFrame, scores: np.ndarray) -> dict[str, float]:
    """``<name>_spearman`` of score vs -log10(Kd) where the set has ``kd``, ``<name>_auroc/_auprc`` on its labels."""
    out: dict[str, float] = {f"n_{name}": len(frame)}
    if "kd" in frame:
        out[f"{name}_spearman"] = float(stats.spearmanr(scores, -np.log10(frame["kd"].to_numpy(float))).statistic)
    out.update({f"{name}_{k}": v for k, v in binary_metrics(frame["label"], scores).items()})
    return out
