"""Negative evidence: a non-binder is a molecule sequenced deeply enough to have shown up had it bound.

The count model. A molecule's reads in each sample are Poisson with a mean proportional to its share of the
library, times the sample's depth, times (target sample only) its fold enrichment ``e``: target reads
``K_t ~ Poisson(T_t f e)``, control reads ``K_c ~ Poisson(T_c f)`` where control = the matrix (no-target)
selections plus the load (the library before selection), and ``T_t``, ``T_c`` are the samples' total reads.
Given ``N = K_t + K_c`` reads in all, ``K_t ~ Binomial(N, p)`` with ``p = e T_t / (e T_t + T_c)`` whatever the
molecule's unknown share ``f`` (the conditional test for two Poisson rates, Przyborowski & Wilenski 1940). An
exact one-sided Clopper-Pearson upper bound of ``p`` is then an upper bound of ``e``:
``e_upper = (T_c / T_t) * p_upper / (1 - p_upper)``.

A pool member (candidate negative) needs ``e_upper < neg_max_fold`` at ``neg_confidence``. Fold 1 is the library
average (the normalization makes a typical molecule 1), so 2 reads "the target kept it at most twice its library
share". The same bound sets the minimum depth: with no target read, ``e_upper < e0`` needs
``N > ln(1 / alpha) / ln(1 + e0 T_t / T_c)`` control reads (``neg_min_control_reads`` in stats.json); a
molecule read once or never in the controls is no evidence, and no separate depth key could say more.

What fold a screen can bound depends on its depth: with no target read and N control reads the bound is
``e_depth(N) = (T_c / T_t) (alpha^(-1/N) - 1)``; the more control reads per target read a screen holds, the less each
says. ``neg_max_fold: auto`` follows the screen (``resolve_max_fold``): the fold a molecule at the
``neg_depth_quantile`` (0.25) of training control depth can bound, never below ``neg_max_fold_floor`` (2) and,
above it, never over ``neg_max_fold_cap`` (0.75) x the training binders' median point fold (a negative stays under a
typical binder). On the 1M synthetic screens (docs/data.md), a fixed 2 left too few hard negatives at KinDEL's depth;
the median depth instead of the lower quartile left val short at 2 of 5 data seeds there.

Without control columns (a file with only target reads and ``target_enrichment``) every molecule is assumed
present at the library's mean abundance, ``K_t ~ Poisson(m e)`` with ``m`` the mean target reads per molecule,
and the exact Poisson upper bound gives ``e_upper``; stats.json says so (``neg_evidence``).

The totals ``T`` and ``m`` are sums over training rows only: no count of a val/test row moves a training label.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from omegaconf import DictConfig
from scipy import stats

from delbind.data.sources.kindel.screen import LOAD_COUNTS, MATRIX_COUNTS, TARGET_COUNTS
from delbind.errors import DataError


def _sums(screen: dict[str, Any], columns: tuple[str, ...]) -> np.ndarray:
    return np.column_stack([screen[c] for c in columns]).sum(axis=1).astype(np.int64)


def _by_distinct(keys: np.ndarray, bound: Any) -> np.ndarray:
    """``bound`` evaluated once per distinct key (counts are small integers), broadcast back to every row."""
    values, index = np.unique(keys, return_inverse=True)
    return bound(values)[index.ravel()]


def fold_upper_bound(target: np.ndarray, control: np.ndarray, ratio: float, confidence: float) -> np.ndarray:
    """Per row, the one-sided upper confidence bound of the fold enrichment from target and control reads.

    ``ratio`` = total control reads / total target reads. Infinite where every read is a target read (no
    control read bounds the rate), including a molecule never read at all.
    """
    n = target + control
    width = np.int64(n.max(initial=0) + 1)

    def bound(keys: np.ndarray) -> np.ndarray:
        k, total = keys // width, keys % width
        p_upper = np.ones(len(keys))
        some = k < total
        p_upper[some] = stats.beta.ppf(confidence, k[some] + 1, total[some] - k[some])
        with np.errstate(divide="ignore"):
            return np.where(p_upper < 1, ratio * p_upper / (1 - p_upper), np.inf)

    return _by_distinct(target * width + n, bound)


def rate_upper_bound(target: np.ndarray, mean_reads: float, confidence: float) -> np.ndarray:
    """Per row, the upper bound of the fold from target reads alone: exact Poisson bound / the mean reads."""
    return _by_distinct(target, lambda k: stats.chi2.ppf(confidence, 2 * k + 2) / 2 / mean_reads)


def min_control_reads(ratio: float, max_fold: float, confidence: float) -> int:
    """Control reads a molecule with no target read needs before its fold's upper bound falls below ``max_fold``."""
    return int(np.floor(np.log(1 / (1 - confidence)) / np.log1p(max_fold / ratio))) + 1


def depth_fold(ratio: float, control_reads: float, confidence: float) -> float:
    """The fold bound of a molecule with no target read and ``control_reads`` control reads: the smallest
    ``neg_max_fold`` such a molecule can meet (inf without a control read)."""
    if control_reads <= 0:
        return float("inf")
    return float(ratio * ((1 - confidence) ** (-1 / control_reads) - 1))


def fold_above(value: float) -> float:
    """The 0.01 step above ``value``: a fold threshold that a bound equal to ``value`` meets (bounds must be strictly
    below the threshold); inf stays inf."""
    return float(np.floor(value * 100) / 100 + 0.01) if np.isfinite(value) else float("inf")


def resolve_max_fold(cfg: DictConfig, reachable: float, binder_fold: float, st: dict[str, Any]) -> float:
    """``data.neg_max_fold``, or for ``auto``: ``reachable`` (the fold a molecule at the ``neg_depth_quantile`` of
    training control depth can bound with no target read, rounded up to 0.01), at least ``neg_max_fold_floor`` and,
    above the floor, at most ``neg_max_fold_cap`` x the training binders' median point fold. The value and why go into
    ``st``."""
    if str(cfg.neg_max_fold) != "auto":
        value = float(cfg.neg_max_fold)
        if not value > 0:
            raise DataError(f"data.neg_max_fold={cfg.neg_max_fold}: use auto or a fold > 0")
        st["neg_max_fold"], st["neg_max_fold_rule"] = value, "given (data.neg_max_fold)"
        return value
    floor, share = float(cfg.neg_max_fold_floor), float(cfg.neg_max_fold_cap)
    cap = share * binder_fold if np.isfinite(binder_fold) else float("inf")
    value = max(floor, min(fold_above(reachable), cap))
    why = f"auto: {st.get('neg_depth_control_reads', 0):g} control reads bound fold {reachable:.2f} with no target read"
    if value == floor:
        why += f"; the floor data.neg_max_fold_floor={floor:g} is stricter"
    elif value == cap:
        why += f"; capped at {share:g} x the training binders' median point fold {binder_fold:.2f}"
    st["neg_max_fold"], st["neg_max_fold_rule"], st["neg_depth_fold"] = float(value), why, float(reachable)
    return float(value)


def fold_bounds(
    screen: dict[str, Any], train: np.ndarray, binders: np.ndarray, cfg: DictConfig, st: dict[str, Any]
) -> tuple[np.ndarray, float]:
    """Per row, the upper bound of its fold enrichment, and the ``neg_max_fold`` it is held to (``resolve_max_fold``).
    Totals, depths and the binders' median point fold (``binder_point_fold_median``) come from ``train`` rows and the
    training ``binders``; the counts go into ``st``."""
    target = _sums(screen, TARGET_COUNTS)
    control_cols = tuple(c for c in (*MATRIX_COUNTS, *LOAD_COUNTS) if c in screen)
    confidence = float(cfg.neg_confidence)
    t_total = int(target[train].sum())
    if control_cols:
        control = _sums(screen, control_cols)
        ratio = int(control[train].sum()) / max(t_total, 1)
        upper = fold_upper_bound(target, control, ratio, confidence)
        point = ratio * target / np.maximum(control, 1)  # a binder with no control read: its target reads over one
        quantile = float(cfg.neg_depth_quantile) if "neg_depth_quantile" in cfg else 0.5
        typical = float(np.quantile(control[train], quantile)) if train.any() else 0.0
        reachable = depth_fold(ratio, typical, confidence)
        st["neg_evidence"] = f"target vs control reads ({', '.join(control_cols)})"
        st["neg_control_to_target_reads"], st["neg_median_control_reads"] = ratio, float(np.median(control[train]))
        st["neg_depth_control_reads"] = typical
    else:
        mean_reads = t_total / max(int(train.sum()), 1)
        upper = rate_upper_bound(target, mean_reads, confidence)
        point = target / max(mean_reads, 1e-12)
        reachable = float(rate_upper_bound(np.zeros(1, dtype=np.int64), mean_reads, confidence)[0])
        st["neg_evidence"] = "target reads only: every molecule assumed at the library's mean abundance"
        st["neg_mean_target_reads"] = mean_reads
    st["binder_point_fold_median"] = float(np.median(point[binders])) if binders.any() else float("nan")
    max_fold = resolve_max_fold(cfg, reachable, st["binder_point_fold_median"], st)
    if control_cols:
        st["neg_min_control_reads"] = min_control_reads(ratio, max_fold, confidence)
    return upper, max_fold


def measured_negative(
    screen: dict[str, Any], train: np.ndarray, binders: np.ndarray, cfg: DictConfig, st: dict[str, Any]
) -> np.ndarray:
    """Per row: is its fold enrichment's upper bound below the resolved ``neg_max_fold`` (``fold_bounds``)?"""
    upper, max_fold = fold_bounds(screen, train, binders, cfg, st)
    return upper < max_fold
