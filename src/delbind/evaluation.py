"""Scores to numbers and pictures: AUROC / AU-PRC, bootstrap intervals, loss curves."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
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
    return {name: float(fn(labels, scores)) for name, fn in METRICS.items()}


def compute_metrics(pred: EvalPrediction) -> dict[str, float]:
    """Trainer hook: logits of a whole eval set -> AUROC / AU-PRC of P(binder)."""
    return binary_metrics(pred.label_ids, expit(np.asarray(pred.predictions, dtype=float)))


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
    fn = METRICS[metric]

    def statistic(p: np.ndarray, n: np.ndarray, axis: int = -1) -> np.ndarray:
        y = np.r_[np.ones(p.shape[-1]), np.zeros(n.shape[-1])]
        return np.array(
            [fn(y, np.r_[pi, ni]) for pi, ni in zip(p.reshape(-1, p.shape[-1]), n.reshape(-1, n.shape[-1]))]
        )

    res = stats.bootstrap(
        (pos, neg),
        statistic,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        batch=200,
        rng=np.random.default_rng(seed),
    )
    return (float(res.confidence_interval.low), float(res.confidence_interval.high))


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
