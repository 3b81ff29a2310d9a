import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import average_precision_score, roc_auc_score

from delbind.evaluation.statistics import (
    PairedTest,
    confidence_interval,
    corrected_ttest,
    delong,
    holm,
    min_detectable_difference,
    paired_bootstrap,
    repeated_paired_test,
    satterthwaite_df,
    tost_p,
    verdict,
)


def _fixture(n_pos: int, n_neg: int, seed: int, decimals: int | None = None):
    """Correlated scores of two arms; arm a separates the classes a little better. Rounding makes ties."""
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)]
    shared = rng.normal(size=labels.size)
    a = shared + 1.0 * labels + 0.6 * rng.normal(size=labels.size)
    b = shared + 0.7 * labels + 0.6 * rng.normal(size=labels.size)
    perm = rng.permutation(labels.size)  # binders not first: the code must find them
    labels, a, b = labels[perm], a[perm], b[perm]
    if decimals is not None:
        a, b = np.round(a, decimals), np.round(b, decimals)
    return labels, a, b


def _slow_delong(labels, a, b):
    """DeLong 1988 by definition: structural components from every binder/non-binder pair, ties count 1/2."""
    pos = [i for i in range(len(labels)) if labels[i] == 1]
    neg = [j for j in range(len(labels)) if labels[j] == 0]
    m, n = len(pos), len(neg)

    def psi(x, y):
        return 1.0 if x > y else 0.5 if x == y else 0.0

    v10, v01, auc = [], [], []
    for s in (a, b):
        v10.append([sum(psi(s[i], s[j]) for j in neg) / n for i in pos])
        v01.append([sum(psi(s[i], s[j]) for i in pos) / m for j in neg])
        auc.append(sum(v10[-1]) / m)

    def cov(u, v):
        mu, mv = sum(u) / len(u), sum(v) / len(v)
        return sum((u[t] - mu) * (v[t] - mv) for t in range(len(u))) / (len(u) - 1)

    s10 = [[cov(v10[r], v10[c]) for c in range(2)] for r in range(2)]
    s01 = [[cov(v01[r], v01[c]) for c in range(2)] for r in range(2)]
    s = [[s10[r][c] / m + s01[r][c] / n for c in range(2)] for r in range(2)]
    var = s[0][0] + s[1][1] - 2 * s[0][1]
    diff = auc[0] - auc[1]
    se = math.sqrt(var)
    return auc[0], auc[1], diff, se, 2 * stats.norm.sf(abs(diff) / se)


def test_delong_matches_slow_definition_with_ties():
    labels, a, b = _fixture(30, 40, seed=1, decimals=1)
    assert len(np.unique(a)) < len(a) and len(np.unique(b)) < len(b)  # the fixture does have ties
    res = delong(labels, a, b)
    auc_a, auc_b, diff, se, p = _slow_delong(labels, a, b)
    assert res.estimate_a == pytest.approx(roc_auc_score(labels, a), abs=1e-12)
    assert res.estimate_b == pytest.approx(roc_auc_score(labels, b), abs=1e-12)
    assert res.estimate_a == pytest.approx(auc_a, abs=1e-12)
    assert res.estimate_b == pytest.approx(auc_b, abs=1e-12)
    assert res.diff == pytest.approx(diff, abs=1e-10)
    assert res.se == pytest.approx(se, abs=1e-10)
    assert res.p == pytest.approx(p, abs=1e-10)
    assert 0 < res.p < 1 and res.method == "delong"


def test_delong_identical_scores():
    labels, a, _ = _fixture(30, 40, seed=2)
    res = delong(labels, a, a.copy())
    assert res.diff == 0 and res.se == 0 and res.p == 1.0


def test_delong_rejects_single_class_and_bad_labels():
    with pytest.raises(ValueError, match="binders"):
        delong(np.r_[1, 0, 0, 0], np.arange(4.0), np.arange(4.0))
    with pytest.raises(ValueError, match="0/1"):
        delong(np.r_[1, 2, 0, 0], np.arange(4.0), np.arange(4.0))


def test_paired_bootstrap_identical_arms_has_no_difference():
    labels, a, _ = _fixture(30, 40, seed=3)
    for metric in ("auroc", "auprc"):
        res = paired_bootstrap(labels, a, a.copy(), metric=metric, n_resamples=200)
        assert res.diff == 0 and res.se == 0 and res.p == 1.0


def test_paired_bootstrap_auroc_se_close_to_delong():
    labels, a, b = _fixture(300, 500, seed=4)
    boot = paired_bootstrap(labels, a, b, metric="auroc", n_resamples=2000, seed=0)
    dl = delong(labels, a, b)
    assert boot.diff == pytest.approx(dl.diff, abs=1e-12)
    assert boot.se == pytest.approx(dl.se, rel=0.2)


def test_paired_bootstrap_seeded_and_auprc_point_matches_sklearn():
    labels, a, b = _fixture(40, 160, seed=5, decimals=1)
    r1 = paired_bootstrap(labels, a, b, n_resamples=300, seed=7)
    r2 = paired_bootstrap(labels, a, b, n_resamples=300, seed=7)
    r3 = paired_bootstrap(labels, a, b, n_resamples=300, seed=8)
    assert r1 == r2
    assert r1.se != r3.se
    assert r1.estimate_a == pytest.approx(average_precision_score(labels, a), abs=1e-12)
    assert r1.estimate_b == pytest.approx(average_precision_score(labels, b), abs=1e-12)
    expected = average_precision_score(labels, a) - average_precision_score(labels, b)
    assert r1.diff == pytest.approx(expected, abs=1e-12)
    assert r1.se > 0 and r1.p == pytest.approx(2 * stats.norm.sf(abs(r1.diff) / r1.se))
    with pytest.raises(ValueError, match="metric"):
        paired_bootstrap(labels, a, b, metric="f1")


def test_corrected_ttest_hand_arithmetic():
    d = np.array([0.02, 0.05, -0.01, 0.03, 0.04])
    res = corrected_ttest(d, n_train=800, n_test=200)
    mean = 0.026
    var = sum((x - mean) ** 2 for x in d) / 4
    se = math.sqrt((1 / 5 + 200 / 800) * var)
    t = mean / se
    assert res.diff == pytest.approx(mean, abs=1e-15)
    assert res.se == pytest.approx(se, abs=1e-15)
    assert res.p == pytest.approx(2 * stats.t.sf(t, 4), abs=1e-12)
    assert res.df == 4 and math.isnan(res.estimate_a) and math.isnan(res.estimate_b)
    plain_p = stats.ttest_1samp(d, 0).pvalue  # what ttest_rel gives on the pairs
    assert res.p > plain_p


def test_corrected_ttest_edge_cases():
    with pytest.raises(ValueError, match="at least 2"):
        corrected_ttest([0.1], 80, 20)
    assert corrected_ttest([0.0, 0.0, 0.0], 80, 20).p == 1.0
    assert corrected_ttest([0.01, 0.01, 0.01], 80, 20).p == 0.0
    res = corrected_ttest([0.1, 0.2], 80, 20, a=[0.8, 0.9], b=[0.7, 0.7])
    assert res.estimate_a == pytest.approx(0.85) and res.estimate_b == pytest.approx(0.7)


def test_holm_hand_example_monotone_and_nan():
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02], atol=1e-15)
    raw = np.random.default_rng(0).uniform(0, 0.3, 12)
    adj = holm(raw)
    order = np.argsort(raw)
    assert np.all(np.diff(adj[order]) >= 0) and np.all(adj >= raw) and np.all(adj <= 1)
    # sorted 0.3 x 3 = 0.9, 0.4 x 2 = 0.8 -> running max 0.9, 0.5 x 1 -> 0.9
    np.testing.assert_allclose(holm([0.5, 0.4, 0.3]), [0.9, 0.9, 0.9])
    np.testing.assert_allclose(holm([0.3, 0.6, 0.7]), [0.9, 1.0, 1.0])  # 0.6 x 2 = 1.2 capped at 1
    with_nan = holm([0.01, np.nan, 0.04, 0.03, 0.005])
    assert math.isnan(with_nan[1])
    np.testing.assert_allclose(with_nan[[0, 2, 3, 4]], [0.03, 0.06, 0.06, 0.02], atol=1e-15)  # NaN not counted
    assert np.isnan(holm([np.nan, np.nan])).all()


def test_tost_p():
    assert tost_p(0.0, 1e-6, 0.02) < 1e-12
    assert tost_p(0.03, 0.01, 0.02) > 0.5
    assert tost_p(0.01, 0.004, 0.02) == pytest.approx(tost_p(-0.01, 0.004, 0.02), abs=1e-15)
    assert tost_p(0.01, 0.004, 0.02) == pytest.approx(stats.norm.cdf((0.01 - 0.02) / 0.004), abs=1e-15)
    assert tost_p(0.01, 0.004, 0.02, df=4) == pytest.approx(stats.t.cdf(-2.5, 4), abs=1e-15)
    assert tost_p(0.01, 0.004, 0.02, df=4) > tost_p(0.01, 0.004, 0.02)  # heavier tails, less evidence


def test_verdict_four_outcomes():
    # a statistically real (z = 5) but tiny difference inside the margin: practically equivalent
    assert _p_of(0.001, 0.0002) < 0.05
    assert verdict(0.001, _p_of(0.001, 0.0002), tost_p(0.001, 0.0002, 0.02)) == "equivalent"
    assert verdict(0.05, _p_of(0.05, 0.01), tost_p(0.05, 0.01, 0.02)) == "better"
    assert verdict(-0.05, _p_of(-0.05, 0.01), tost_p(-0.05, 0.01, 0.02)) == "worse"
    assert verdict(0.01, _p_of(0.01, 0.02), tost_p(0.01, 0.02, 0.02)) == "can't tell"
    assert verdict(0.05, float("nan"), float("nan")) == "can't tell"


def _p_of(diff, se):
    return 2 * stats.norm.sf(abs(diff) / se)


def test_min_detectable_difference_and_confidence_interval():
    assert min_detectable_difference(0.01) == pytest.approx((1.959964 + 0.841621) * 0.01, abs=1e-5)
    assert min_detectable_difference(0.01, power=0.5) == pytest.approx(1.959964 * 0.01, abs=1e-6)
    test = PairedTest(0.8, 0.7, 0.1, 0.02, 0.0, "x")
    lo, hi = confidence_interval(test)
    assert (lo, hi) == pytest.approx((0.1 - 1.959964 * 0.02, 0.1 + 1.959964 * 0.02), abs=1e-6)
    lo_t, hi_t = confidence_interval(test, df=4)
    assert (lo_t, hi_t) == pytest.approx((0.1 - stats.t.ppf(0.975, 4) * 0.02, 0.1 + stats.t.ppf(0.975, 4) * 0.02))
    corrected = corrected_ttest([0.02, 0.05, -0.01, 0.03, 0.04], 800, 200)
    assert confidence_interval(corrected) == pytest.approx(confidence_interval(corrected, df=4))  # own df used


# --- repeats: training noise counted ----------------------------------------------------------------------------------


def test_repeated_paired_test_adds_the_between_repeat_spread_to_the_molecule_variance():
    diffs, variances = np.array([0.03, 0.01, 0.05]), np.array([1e-4, 2e-4, 1.5e-4])
    test = repeated_paired_test(diffs, variances, a=[0.8, 0.79, 0.81], b=[0.77, 0.78, 0.76])
    between = diffs.var(ddof=1) / 3
    assert test.diff == pytest.approx(0.03) and test.estimate_a == pytest.approx(0.8)
    assert test.se == pytest.approx(math.sqrt(1.5e-4 + between))
    assert test.df == 2 and test.p == pytest.approx(2 * stats.t.sf(0.03 / test.se, 2))
    assert satterthwaite_df(diffs, variances) == pytest.approx(test.se**4 * 2 / between**2)
    assert satterthwaite_df(diffs, variances) > test.df
    # repeats that agree exactly: no training noise measured, the molecule variance alone
    same = repeated_paired_test([0.02, 0.02], [1e-4, 1e-4])
    assert same.se == pytest.approx(0.01) and same.p == pytest.approx(2 * stats.t.sf(2, 1))
    assert satterthwaite_df([0.02, 0.02], [1e-4, 1e-4]) == math.inf
    with pytest.raises(ValueError, match="at least 2 repeats"):
        repeated_paired_test([0.01], [1e-4])
    with pytest.raises(ValueError, match="one per repeat"):
        repeated_paired_test([0.01, 0.02], [1e-4])


def test_min_detectable_difference_grows_with_holm_and_few_degrees_of_freedom():
    base = min_detectable_difference(0.01)
    holm5 = min_detectable_difference(0.01, tests=5)
    assert holm5 == pytest.approx((stats.norm.ppf(1 - 0.05 / 10) + stats.norm.ppf(0.8)) * 0.01)
    t4 = min_detectable_difference(0.01, df=4, tests=5)
    assert t4 == pytest.approx((stats.t.ppf(1 - 0.005, 4) + stats.t.ppf(0.8, 4)) * 0.01)
    assert base < holm5 < t4


@pytest.mark.parametrize("repeats", [3, 5])
def test_an_aa_study_on_simulated_fits_keeps_false_verdicts_at_or_under_alpha(repeats):
    """Two groups of fits of one recipe: the repeats test calls them different at most 5% of the time; one repeat's
    DeLong, which knows no training noise, far more often (r about 4 here, as measured for lp_ft)."""
    from bench_aa_test import false_rates  # scripts/: the simulation, also run as a benchmark

    found = false_rates(repeats, fit_sd=0.25, n=300)
    assert found["K - 1 df"] <= 0.05  # the test delbind uses
    assert found["one repeat"] > 0.2  # the design the repeats fix: same recipe, "different"
    assert 3 < found["r"] < 6
