import math

import numpy as np
import pytest

from delbind.evaluation import METRICS, binary_metrics, bootstrap_ci, plot_loss_curve, score_set
from delbind.evaluation.bootstrap import BATCHED


def test_metrics_match_hand_computed_values():
    # sorted by score: 0.8(+) 0.4(-) 0.35(+) 0.1(-): 3 of 4 pos/neg pairs ordered right
    m = binary_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    assert m["auroc"] == pytest.approx(0.75)
    # AP = 0.5 * (1/1) + 0.5 * (2/3)
    assert m["auprc"] == pytest.approx(0.5 + 1 / 3)


def test_perfect_and_inverted_rankings():
    y = np.array([0, 1, 0, 1])
    assert binary_metrics(y, np.array([0.1, 0.9, 0.2, 0.8]))["auroc"] == 1.0
    assert binary_metrics(y, np.array([0.9, 0.1, 0.8, 0.2]))["auroc"] == 0.0


def test_single_class_gives_nan_not_an_error():
    m = binary_metrics(np.ones(5), np.linspace(0, 1, 5))
    assert all(math.isnan(v) for v in m.values())


def test_bootstrap_ci_brackets_estimate_and_is_seeded():
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(40), np.zeros(60)].astype(int)
    s = y * 0.8 + rng.normal(0, 0.6, size=100)
    est = binary_metrics(y, s)["auroc"]
    lo, hi = bootstrap_ci(y, s, "auroc", 300, 0.95, seed=1)
    assert 0 <= lo < est < hi <= 1
    assert (lo, hi) == bootstrap_ci(y, s, "auroc", 300, 0.95, seed=1)
    lo90, hi90 = bootstrap_ci(y, s, "auroc", 300, 0.90, seed=1)
    assert hi90 - lo90 < hi - lo


def test_score_set_keys():
    y = np.array([0, 1] * 10)
    out = score_set("test_hard", y, np.linspace(0, 1, 20), 50, 0.95, 0)
    assert set(out) == {f"test_hard_{m}{s}" for m in ("auroc", "auprc") for s in ("", "_ci95")}
    assert len(out["test_hard_auroc_ci95"]) == 2


def test_loss_curve_written(tmp_path):
    history = [{"loss": 0.7, "step": 1}, {"loss": 0.6, "step": 2}, {"eval_val_hard_loss": 0.65, "step": 2}]
    plot_loss_curve(history, tmp_path / "c.png", "t")
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("metric", ["auroc", "auprc"])
def test_batched_metrics_equal_scikit_learn_with_ties(metric):
    rng = np.random.default_rng(3)
    n_pos, n = 7, 20
    y = np.r_[np.ones(n_pos), np.zeros(n - n_pos)].astype(int)
    rows = rng.integers(0, 6, size=(200, n)) / 5  # few distinct values: many ties, across classes too
    rows[0] = np.linspace(0, 1, n)  # and one row without ties
    expected = np.array([METRICS[metric](y, r) for r in rows])
    np.testing.assert_allclose(BATCHED[metric](rows, n_pos), expected, rtol=0, atol=1e-12)


def test_linear_cka_is_one_up_to_rotation_and_scale_and_small_for_unrelated_representations():
    from delbind.evaluation.metrics import linear_cka

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 16))
    rotation, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, 3.0 * x @ rotation + 5.0) == pytest.approx(1.0)  # rotated, scaled, shifted: the same
    assert linear_cka(x, rng.normal(size=(300, 16))) < 0.2
    partly = x + 0.5 * rng.normal(size=x.shape)
    assert linear_cka(x, rng.normal(size=(300, 16))) < linear_cka(x, partly) < 1.0
