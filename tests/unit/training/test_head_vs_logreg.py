"""The trained head on frozen embeddings matches scikit-learn's logistic regression on the same features."""

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from transformers import TrainingArguments, default_data_collator, set_seed

from delbind.models.embeddings import CachedHead, embedding_dataset
from delbind.training import BinderTrainer
from tests.helpers import compose_cfg, tiny

HIDDEN = 32  # the tiny trunk's hidden size


def _embeddings(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Embedding-like features whose scales span four orders of magnitude (as a LayerNorm's gains can), with a
    linear signal spread over them: what per-feature standardization is for."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(900, HIDDEN))
    y = (rng.random(900) < 1 / (1 + np.exp(-(z @ rng.normal(size=HIDDEN) / 2)))).astype(float)
    return (z * np.logspace(-2, 2, HIDDEN)[rng.permutation(HIDDEN)] + 3.0).astype(np.float32), y


def _head_auroc(x: np.ndarray, y: np.ndarray, train: slice, test: slice, standardize: bool, tmp_path) -> float:
    """Test AUROC of the head trained as ``arm=frozen`` trains it by default (its composed recipe)."""
    cfg = compose_cfg(tmp_path / "cfg", ["model=tiny", "arm=frozen"])
    set_seed(0)
    _, model = tiny(dropout=cfg.model.head_dropout)  # the trunk's dropout plays no part: the head reads vectors
    if standardize:
        model.set_standardization(torch.tensor(x[train]).mean(0), torch.tensor(x[train]).std(0))
    t = cfg.trainer
    args = TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=t.per_device_train_batch_size,
        num_train_epochs=t.num_train_epochs, learning_rate=t.learning_rate, weight_decay=t.weight_decay,
        warmup_steps=t.warmup_steps, report_to=[], use_cpu=True, save_strategy="no", label_names=["labels"],
        disable_tqdm=True, seed=0,
    )  # fmt: skip
    head = CachedHead(model)
    BinderTrainer(model=head, args=args, train_dataset=embedding_dataset(x[train], y[train]),
                  data_collator=default_data_collator).train()  # fmt: skip
    with torch.no_grad():
        scores = head.eval()(torch.tensor(x[test])).logits.numpy()
    return roc_auc_score(y[test], scores)


def test_standardized_head_matches_logistic_regression_within_noise(tmp_path):
    x, y = _embeddings(0)
    train, test = slice(0, 600), slice(600, 900)
    logreg = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=5000)).fit(x[train], y[train])
    reference = roc_auc_score(y[test], logreg.predict_proba(x[test])[:, 1])
    standardized = _head_auroc(x, y, train, test, True, tmp_path / "std")
    raw = _head_auroc(x, y, train, test, False, tmp_path / "raw")
    assert abs(standardized - reference) < 0.02, (standardized, reference)
    assert raw < reference - 0.05, (raw, reference)  # the unscaled head loses what the features hold
