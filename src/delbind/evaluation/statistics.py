"""Paired verdicts between two arms scored on the same molecules.

The same molecules are scored by both arms, so their errors are correlated; tests that treat the arms as
independent overstate the noise and miss real differences. Every test here is paired. References: DeLong et al.
1988 (correlated AUROCs) in the fast midrank form of Sun & Xu 2014; Nadeau & Bengio 2003 / Bouckaert & Frank 2004
(corrected resampled t-test); Holm 1979; Schuirmann 1987 (TOST); Ash et al. 2025 JCIM (practical significance);
Satterthwaite 1946 and Hsu 1938 (df of a sum of variance components). A verdict about arms (recipes) must also count
training noise: ``repeated_paired_test`` adds the spread of the paired difference over repeats (retrained models) to
the molecule-level variance that DeLong and the bootstrap measure for one pair of fitted models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from delbind.evaluation.bootstrap import BATCHED

# cells (resamples x molecules) per bootstrap block: bounds memory for large eval sets
_BLOCK_CELLS = 20_000_000


@dataclass(frozen=True)
class PairedTest:
    """A paired comparison of arm a against arm b: ``diff = estimate_a - estimate_b`` with its standard error.

    ``df`` is the Student-t degrees of freedom the p-value used (None: normal), so a confidence interval
    can be built on the same reference distribution.
    """

    estimate_a: float
    estimate_b: float
    diff: float
    se: float
    p: float
    method: str
    df: float | None = None


def _two_sided_p(diff: float, se: float, df: float | None = None) -> float:
    """Two-sided p of H0 diff = 0; a zero se means no sampling noise: p = 1 for no difference, else 0."""
    if se == 0:
        return 1.0 if diff == 0 else 0.0
    z = abs(diff) / se
    return float(2 * (stats.norm.sf(z) if df is None else stats.t.sf(z, df)))


def _split(labels: ArrayLike, *scores: ArrayLike) -> tuple[np.ndarray, int, list[np.ndarray]]:
    """Validate 0/1 labels and equal-length finite scores; indices (binders first), number of binders, scores."""
    y = np.asarray(labels).ravel()
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0/1")
    arrays = [np.asarray(s, dtype=float).ravel() for s in scores]
    if any(len(s) != len(y) for s in arrays):
        raise ValueError("labels and scores must have the same length")
    if any(not np.isfinite(s).all() for s in arrays):
        raise ValueError("scores must be finite")
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if len(pos) < 2 or len(neg) < 2:
        raise ValueError(f"need at least 2 binders and 2 non-binders, got {len(pos)} and {len(neg)}")
    return np.concatenate([pos, neg]), len(pos), arrays


def delong(labels: ArrayLike, score_a: ArrayLike, score_b: ArrayLike) -> PairedTest:
    """DeLong's test of two correlated AUROCs on the same molecules (midrank algorithm, Sun & Xu 2014).

    Exact for ties (the 1/2 rule, via midranks) and O(n log n); the variance of the AUROC difference comes
    from the structural components, so the correlation between the arms is used, not ignored.
    """
    order, m, (a, b) = _split(labels, score_a, score_b)
    n = len(order) - m
    z = np.stack([a[order], b[order]])  # binders first
    tz = stats.rankdata(z, axis=1)
    tx = stats.rankdata(z[:, :m], axis=1)
    ty = stats.rankdata(z[:, m:], axis=1)
    auc = (tz[:, :m].sum(1) - m * (m + 1) / 2) / (m * n)
    v10 = (tz[:, :m] - tx) / n  # per binder: share of non-binders ranked below it
    v01 = 1 - (tz[:, m:] - ty) / m  # per non-binder: share of binders ranked above it
    cov = np.cov(v10) / m + np.cov(v01) / n
    diff = float(auc[0] - auc[1])
    se = float(np.sqrt(max(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1], 0.0)))
    return PairedTest(float(auc[0]), float(auc[1]), diff, se, _two_sided_p(diff, se), "delong")


def paired_bootstrap(
    labels: ArrayLike,
    score_a: ArrayLike,
    score_b: ArrayLike,
    metric: str = "auprc",
    n_resamples: int = 2000,
    seed: int = 0,
) -> PairedTest:
    """Stratified paired bootstrap of the difference of ``metric`` ("auroc" or "auprc", step-wise AP).

    Binders and non-binders are resampled separately (prevalence fixed, both classes always present) and both
    arms see the same resampled molecules, so the pairing is kept. AU-PRC has no DeLong analogue, hence the
    bootstrap. se is the sd of the bootstrap differences; p is two-sided from the normal approximation
    diff / se (not a bootstrap-percentile p), so it is only as good as that approximation.
    """
    if metric not in BATCHED:
        raise ValueError(f"metric must be one of {sorted(BATCHED)}, got {metric!r}")
    if n_resamples < 2:
        raise ValueError("n_resamples must be at least 2")
    order, m, (a, b) = _split(labels, score_a, score_b)
    fn = BATCHED[metric]
    pos, neg = order[:m], order[m:]
    est_a, est_b = (float(fn(s[order][None, :], m)[0]) for s in (a, b))
    rng = np.random.default_rng(seed)
    block = max(1, _BLOCK_CELLS // len(order))
    diffs = []
    for start in range(0, n_resamples, block):
        size = min(block, n_resamples - start)
        idx = np.concatenate(
            [pos[rng.integers(0, len(pos), (size, len(pos)))], neg[rng.integers(0, len(neg), (size, len(neg)))]],
            axis=1,
        )
        diffs.append(fn(a[idx], m) - fn(b[idx], m))
    se = float(np.std(np.concatenate(diffs), ddof=1))
    diff = est_a - est_b
    return PairedTest(est_a, est_b, diff, se, _two_sided_p(diff, se), f"paired_bootstrap_{metric}")


def corrected_ttest(
    diffs: ArrayLike,
    n_train: int,
    n_test: int,
    *,
    a: ArrayLike | None = None,
    b: ArrayLike | None = None,
) -> PairedTest:
    """Nadeau & Bengio corrected resampled t-test over k folds x r repeats (Bouckaert & Frank 2004).

    Folds share training data, so per-fold differences are correlated and the plain paired t-test is
    anti-conservative; the variance factor 1/(k r) is replaced by 1/(k r) + n_test/n_train. ``diffs`` holds the
    per-fold a - b of all folds of all repeats; t has k r - 1 df. ``a`` and ``b`` (optional per-fold metrics of
    each arm) only fill ``estimate_a``/``estimate_b`` with their means; without them those are NaN.
    """
    d = np.asarray(diffs, dtype=float).ravel()
    if len(d) < 2:
        raise ValueError(f"corrected_ttest needs at least 2 per-fold differences, got {len(d)}")
    if n_train <= 0 or n_test <= 0:
        raise ValueError("n_train and n_test must be positive")
    estimates = []
    for arm in (a, b):
        values = None if arm is None else np.asarray(arm, dtype=float).ravel()
        if values is not None and len(values) != len(d):
            raise ValueError("a and b must have one value per fold, like diffs")
        estimates.append(float("nan") if values is None else float(values.mean()))
    kr = len(d)
    diff = float(d.mean())
    se = float(np.sqrt((1 / kr + n_test / n_train) * d.var(ddof=1)))
    df = kr - 1
    return PairedTest(estimates[0], estimates[1], diff, se, _two_sided_p(diff, se, df), "corrected_ttest", df)


def repeated_paired_test(
    diffs: ArrayLike,
    variances: ArrayLike,
    *,
    a: ArrayLike | None = None,
    b: ArrayLike | None = None,
    method: str = "repeats",
) -> PairedTest:
    """Paired difference of two recipes over K >= 2 repeats scored on the same molecules, training noise counted.

    ``diffs[k]`` is repeat k's a - b (one pair of fitted models, e.g. DeLong on its pooled out-of-fold predictions)
    and ``variances[k]`` that test's squared se: the molecule-sampling variance given those models. The repeats
    score the same molecules, so that part is shared and does not shrink with K (its mean is used: an upper bound
    of the variance of the mean of correlated estimates), while the training noise (init seed, fold deal) is
    independent between repeats and is estimated by the spread of the diffs:
    se^2 = mean(variances) + var(diffs) / K, referred to Student t with K - 1 df: the smallest df Satterthwaite's
    formula can give (Hsu's conservative choice). Satterthwaite's own df called 7% of simulated A/A pairs different
    at K = 3 and r = 4 (docs/evaluation.md); K - 1 keeps the rate under alpha. ``a`` / ``b``: per-repeat estimates
    of each arm, for the record.
    """
    d = np.asarray(diffs, dtype=float).ravel()
    v = np.asarray(variances, dtype=float).ravel()
    if len(d) < 2:
        raise ValueError(f"repeated_paired_test needs at least 2 repeats, got {len(d)}")
    if len(v) != len(d) or not (np.isfinite(d).all() and np.isfinite(v).all()) or (v < 0).any():
        raise ValueError("diffs and variances must be finite, one per repeat, variances >= 0")
    k = len(d)
    se = float(np.sqrt(v.mean() + d.var(ddof=1) / k))
    estimates = [float("nan") if x is None else float(np.mean(np.asarray(x, dtype=float))) for x in (a, b)]
    diff = float(d.mean())
    return PairedTest(estimates[0], estimates[1], diff, se, _two_sided_p(diff, se, k - 1), method, k - 1)


def satterthwaite_df(diffs: ArrayLike, variances: ArrayLike) -> float:
    """Satterthwaite's df of ``repeated_paired_test``'s se (molecule term taken as known): se^4 (K - 1) / (var(diffs)
    / K)^2, at least K - 1 (inf when the repeats agree exactly). Kept to show why the test uses K - 1 instead."""
    d, v = np.asarray(diffs, dtype=float).ravel(), np.asarray(variances, dtype=float).ravel()
    k, between = len(d), float(np.var(d, ddof=1)) / len(d)
    return float("inf") if between == 0 else float((v.mean() + between) ** 2 * (k - 1) / between**2)


def holm(pvalues: ArrayLike) -> np.ndarray:
    """Holm step-down adjusted p-values (family-wise error control, valid under any dependence).

    Reject where adjusted p < alpha. Adjusted values are monotone in the raw ones and capped at 1; NaN entries
    are passed through and not counted as tests.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    flat, res = p.ravel(), out.reshape(-1)
    ok = np.flatnonzero(~np.isnan(flat))
    k = len(ok)
    if k == 0:
        return out
    order = ok[np.argsort(flat[ok], kind="stable")]
    adjusted = np.maximum.accumulate(np.minimum(1.0, (k - np.arange(k)) * flat[order]))
    res[order] = adjusted
    return out


def tost_p(diff: float, se: float, margin: float, df: float | None = None) -> float:
    """Two one-sided tests (Schuirmann) of equivalence within +-margin: the larger one-sided p.

    A small p says the true difference lies inside the practical margin; normal reference when df is None,
    else Student t with df.
    """
    if margin <= 0:
        raise ValueError("margin must be positive")
    if se == 0:
        return 0.0 if abs(diff) < margin else 1.0
    dist = stats.norm if df is None else stats.t(df)
    p_lower = dist.sf((diff + margin) / se)  # H0: diff <= -margin
    p_upper = dist.cdf((diff - margin) / se)  # H0: diff >= +margin
    return float(max(p_lower, p_upper))


def verdict(diff: float, p_adj: float, p_equiv_adj: float, alpha: float = 0.05) -> str:
    """One of "equivalent", "better", "worse", "can't tell", checked in that order.

    Equivalence comes first: a difference that is statistically real but shown to be smaller than the practical
    margin is of no practical consequence (Ash et al. 2025), so it is reported as "equivalent", not "better".
    Otherwise the sign of diff names a significant difference; otherwise the data cannot tell. NaN p-values
    never pass the alpha threshold, so they give "can't tell".
    """
    if p_equiv_adj < alpha:
        return "equivalent"
    if p_adj < alpha:
        return "better" if diff > 0 else "worse"
    return "can't tell"


def pair_verdict(test: PairedTest, margin: float, alpha: float = 0.05) -> str:
    """The verdict of one paired test on its own (no Holm family): equivalence within +-``margin`` by TOST on the
    test's own se and df, else its p."""
    return verdict(test.diff, test.p, tost_p(test.diff, test.se, margin, test.df), alpha)


def min_detectable_difference(
    se: float, power: float = 0.8, alpha: float = 0.05, df: float | None = None, tests: int = 1
) -> float:
    """Smallest true difference a two-sided test at alpha detects with this power: (q_{1-a/(2 m)} + q_power) se.

    q: Student t quantiles with ``df`` (the test's own; None: normal); m = ``tests``, the Holm family's size, whose
    first step compares the smallest p with alpha / m (the bound for any row of the family). Reported beside a
    "can't tell" to say how large a difference the comparison could have seen.
    """
    if tests < 1:
        raise ValueError("tests must be at least 1")
    dist = stats.norm if df is None else stats.t(df)
    return float((dist.ppf(1 - alpha / (2 * tests)) + dist.ppf(power)) * se)


def confidence_interval(test: PairedTest, confidence: float = 0.95, df: float | None = None) -> tuple[float, float]:
    """Interval diff +- q se, q from the normal, or Student t with ``df`` (default: the test's own df)."""
    df = test.df if df is None else df
    q = stats.norm.ppf((1 + confidence) / 2) if df is None else stats.t.ppf((1 + confidence) / 2, df)
    return (float(test.diff - q * test.se), float(test.diff + q * test.se))
