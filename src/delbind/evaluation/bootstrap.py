"""Stratified bootstrap intervals, vectorized over resamples (equal to scikit-learn's metrics; tests check)."""

from __future__ import annotations

import numpy as np
from scipy import stats

from delbind.evaluation.metrics import binary_metrics


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
