"""The `evaluate` metric modules shipped in the package: loaded by path with no network, equal to scikit-learn."""

import os
import socket

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from delbind.evaluation.metric_modules import AUPRC, AUROC

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_EVALUATE_OFFLINE"] = "1"
import evaluate  # noqa: E402  (after the offline switches, which evaluate reads on import)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any connection attempt fails the test: loading by path must not touch the hub."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _data(seed: int, n: int = 300, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    scores = labels * 0.5 + rng.normal(0, 0.7, n)
    return labels, np.round(scores, 1) if ties else scores  # rounded: many tied scores, where AP's steps matter


@pytest.mark.parametrize(
    ("path", "key", "sklearn"), [(AUROC, "auroc", roc_auc_score), (AUPRC, "auprc", average_precision_score)]
)
@pytest.mark.parametrize("ties", [False, True])
def test_module_equals_scikit_learn_exactly(path, key, sklearn, ties):
    metric = evaluate.load(str(path), keep_in_memory=True)
    for seed in range(3):
        labels, scores = _data(seed, ties=ties)
        assert metric.compute(references=labels, predictions=scores)[key] == sklearn(labels, scores)
        weights = np.random.default_rng(seed).random(len(labels))
        weighted = metric.compute(references=labels, predictions=scores, sample_weight=weights)[key]
        assert weighted == sklearn(labels, scores, sample_weight=weights)


def test_batches_and_combine_give_the_one_shot_values():
    """How a user's Trainer loop would call them: batch by batch, or both at once with evaluate.combine."""
    labels, scores = _data(7, ties=True)
    both = evaluate.combine([str(AUROC), str(AUPRC)])
    for lo in range(0, len(labels), 64):
        both.add_batch(references=labels[lo : lo + 64], predictions=scores[lo : lo + 64])
    assert both.compute() == {"auroc": roc_auc_score(labels, scores), "auprc": average_precision_score(labels, scores)}


def test_float32_scores_keep_their_order():
    """Scores are stored as float64, so no two distinct float32 scores are tied by the module."""
    labels, scores = _data(3)
    scores32 = scores.astype(np.float32)
    metric = evaluate.load(str(AUPRC), keep_in_memory=True)
    assert metric.compute(references=labels, predictions=scores32)["auprc"] == average_precision_score(labels, scores32)
