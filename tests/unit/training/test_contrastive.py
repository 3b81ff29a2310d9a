"""The contrastive term: the loss equals its formula, the sampler's batches hold the pairs it promises, and the
trainer trains on exactly those batches."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf
from transformers import DataCollatorWithPadding, TrainingArguments

from delbind.data.chem import ecfp4_matrix
from delbind.errors import ConfigError
from delbind.models.tokenizers import tokenize
from delbind.training.contrastive import (
    Contrastive,
    ContrastiveTrainer,
    PairedSampler,
    nearest_hard_negatives,
    supcon_loss,
)
from tests.helpers import SMILES, tiny


def _by_hand(z: np.ndarray, labels: list[int], t: float) -> float:
    """The module docstring's formula, one anchor and one positive at a time."""
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    terms = []
    for i, li in enumerate(labels):
        positives = [p for p, lp in enumerate(labels) if lp == 1 and p != i]
        if li != 1 or not positives:
            continue
        denominator = sum(math.exp(z[i] @ z[a] / t) for a in range(len(z)) if a != i)
        terms.append(-np.mean([math.log(math.exp(z[i] @ z[p] / t) / denominator) for p in positives]))
    return float(np.mean(terms))


def test_supcon_loss_equals_the_formula_on_a_hand_built_batch():
    z = np.array([[1.0, 0.2, 0.0], [0.8, 0.5, 0.1], [0.9, 0.3, -0.2], [-0.3, 1.0, 0.4], [0.1, -0.6, 1.0]])
    labels = [1, 1, 0, 1, 0]
    got = supcon_loss(torch.tensor(z, dtype=torch.float64), torch.tensor(labels, dtype=torch.float32), 0.5)
    assert got.item() == pytest.approx(_by_hand(z, labels, 0.5), rel=1e-6)
    # pulling a hard negative (row 2, close to the binders) further away lowers the loss; non-binders are not anchors
    moved = z.copy()
    moved[2] = [-1.0, -0.3, 0.2]
    lower = supcon_loss(torch.tensor(moved), torch.tensor(labels, dtype=torch.float32), 0.5)
    assert lower.item() < got.item()
    assert supcon_loss(torch.tensor(z), torch.tensor([1, 0, 0, 0, 0.0]), 0.5).item() == 0.0  # no positive pair


def test_a_batch_without_two_binders_gives_zero_and_still_backpropagates():
    z = torch.randn(4, 8, requires_grad=True)
    loss = supcon_loss(z, torch.tensor([1.0, 0.0, 0.0, 0.0]), 0.1)
    loss.backward()
    assert loss.item() == 0.0 and z.grad is not None and torch.all(z.grad == 0)


def test_nearest_hard_negatives_ranks_by_ecfp4_tanimoto():
    smiles = ["Oc1ccccc1", "CCCCCCCC", "Nc1ccccc1", "Oc1ccccc1C", "CCO", "CCCCCCCCN", "NCCO"]
    kinds = np.array(["binder", "hard", "hard", "hard", "easy", "binder", "hard"])
    partners, median = nearest_hard_negatives(smiles, kinds, k=2)
    bits = ecfp4_matrix(smiles).astype(bool)
    tanimoto = (bits[:, None] & bits[None]).sum(-1) / (bits[:, None] | bits[None]).sum(-1)  # computed apart
    hard = np.flatnonzero(kinds == "hard")
    assert sorted(partners) == [0, 5]
    for b in (0, 5):
        assert list(partners[b]) == list(hard[np.argsort(-tanimoto[b, hard], kind="stable")][:2])
        assert not {4} & set(partners[b])  # an easy negative is never a partner
    assert median == pytest.approx(np.median([tanimoto[b, hard].max() for b in (0, 5)]))


def _screen_like(n: int = 671, binders: int = 195, hard: int = 230, seed: int = 0) -> dict[int, np.ndarray]:
    """A GSK3B fold's training set shape (671 rows: 195 binders, 230 hard, the rest easy), 5 candidates each."""
    rng = np.random.default_rng(seed)
    kinds = rng.permutation(["binder"] * binders + ["hard"] * hard + ["easy"] * (n - binders - hard))
    hard_rows = np.flatnonzero(kinds == "hard")
    return {int(b): rng.choice(hard_rows, 5, replace=False) for b in np.flatnonzero(kinds == "binder")}


def test_the_sampler_deals_every_row_once_and_puts_each_binder_beside_a_candidate():
    partners = _screen_like()
    sampler = PairedSampler(partners, n_rows=671, batch_size=32, seed=3)
    batches = sampler.batches()
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(671)) and list(sampler) == flat  # an epoch: every row exactly once
    assert all(len(b) == 32 for b in batches[:-1]) and len(batches[-1]) == 671 - 32 * (len(batches) - 1)
    paired = [any(int(c) in set(b) for c in partners[i]) for b in batches for i in b if i in partners]
    assert np.mean(paired) > 0.9  # 230 hard negatives for 195 binders: nearly every binder gets one
    # a partner is drawn for one binder only: a batch's partners are distinct rows
    sampler.set_epoch(1)
    assert sampler.batches() != batches  # a new deal each epoch...
    sampler.set_epoch(0)
    assert sampler.batches() == batches  # ...and the same one for the same epoch (a resumed run)


def test_the_trainer_trains_on_the_sampler_batches(tmp_path):
    tok, model = tiny()
    df = pd.DataFrame({"smiles": SMILES * 6, "label": [1, 0, 0, 1] * 6})
    partners = {i: np.array([i + 1, i + 2]) for i in range(0, 24, 4)}
    term = Contrastive(weight=1.0, temperature=0.1, mining="tanimoto", partners=partners)
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4, use_cpu=True, report_to=[],
                             label_names=["labels"], seed=7, disable_tqdm=True)  # fmt: skip
    trainer = ContrastiveTrainer(model=model, args=args, train_dataset=tokenize(df, tok, 64),
                                 data_collator=DataCollatorWithPadding(tok), contrastive=term)  # fmt: skip
    expected = PairedSampler(partners, 24, 4, seed=7).batches()
    got = [batch["labels"].tolist() for batch in trainer.get_train_dataloader()]
    assert got == [df["label"].iloc[b].astype(float).tolist() for b in expected]


def _cfg(**contrastive):
    term = {"weight": 0.1, "temperature": 0.1, "mining": "tanimoto", "candidates": 5} | contrastive
    return OmegaConf.create(
        {"loss": {"contrastive": term}, "augment": {"train_n": 0}, "trainer": {"train_sampling_strategy": "random"}}
    )


def test_bad_settings_are_refused_in_one_line():
    train = pd.DataFrame({"smiles": ["Oc1ccccc1", "Nc1ccccc1"], "kind": ["binder", "hard"]})
    term, facts = Contrastive.from_cfg(_cfg(), train)
    assert list(term.partners[0]) == [1] and facts["contrastive_mining"] == "tanimoto"
    with pytest.raises(ConfigError, match="mining='cosine'"):
        Contrastive.from_cfg(_cfg(mining="cosine"), train)
    with pytest.raises(ConfigError, match="temperature > 0"):
        Contrastive.from_cfg(_cfg(temperature=0.0), train)
    augmented = _cfg()
    augmented.augment.train_n = 2
    with pytest.raises(ConfigError, match="needs augment.train_n=0"):
        Contrastive.from_cfg(augmented, train)
    augmented.loss.contrastive.mining = "none"  # random batches: augmentation is fine
    assert Contrastive.from_cfg(augmented, train)[0].partners is None
    with pytest.raises(ConfigError, match="batch size >= 2"):
        PairedSampler({}, 4, 1, 0)
