"""SMILES augmentation: views of training molecules per epoch, fixed draws, test-time means, config checks."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from delbind.data.chem import canonical_smiles
from delbind.errors import ConfigError
from delbind.models.augment import (
    TEST_STREAM,
    TRAIN_STREAM,
    Augment,
    DrawEachEpoch,
    InputSpace,
    RandomViews,
    tta_mean,
    tta_views,
    views,
)
from delbind.models.tokenizers import encode
from tests.helpers import SMILES, tiny_tokenizer

MOLECULES = pd.DataFrame({"smiles": SMILES, "label": [1, 0, 0, 1]}, index=[10, 11, 15, 17])  # index: rows in df


def _views(n: int = 3, seed: int = 0) -> RandomViews:
    tokenizer = tiny_tokenizer()
    return RandomViews(MOLECULES, n, seed, lambda s: dict(encode(tokenizer, s, 64)))


def test_random_views_are_each_molecule_n_times_with_its_label_and_tokens():
    rv, tokenizer = _views(n=3), tiny_tokenizer()
    assert len(rv) == 12
    for i in range(len(rv)):
        molecule = MOLECULES.iloc[i // 3]
        assert canonical_smiles([rv.smiles_at(i)]) == canonical_smiles([molecule["smiles"]])
        item = rv[i]
        assert item["labels"] == molecule["label"]
        assert item["input_ids"] == encode(tokenizer, rv.smiles_at(i), 64)["input_ids"]


def test_random_views_are_drawn_afresh_each_epoch_and_repeat_within_one():
    rv = _views(n=3)
    epoch_0 = [rv.smiles_at(i) for i in range(len(rv))]
    assert [rv.smiles_at(i) for i in range(len(rv))] == epoch_0  # access order and repeats change nothing
    rv.set_epoch(1)
    epoch_1 = [rv.smiles_at(i) for i in range(len(rv))]
    assert sum(a != b for a, b in zip(epoch_0, epoch_1)) >= len(rv) // 2
    assert [_views(n=3, seed=1).smiles_at(i) for i in range(len(rv))] != epoch_0  # another run seed, other draws


def test_the_fixed_draws_are_the_views_of_epoch_0_and_test_draws_are_another_stream():
    rv = _views(n=2)
    fixed = views(MOLECULES, 2, seed=0, stream=TRAIN_STREAM)
    assert fixed["smiles"].tolist() == [rv.smiles_at(i) for i in range(len(rv))]
    assert fixed["row"].tolist() == [10, 10, 11, 11, 15, 15, 17, 17]
    assert fixed["label"].tolist() == [1, 1, 0, 0, 0, 0, 1, 1]
    assert views(MOLECULES, 2, seed=0, stream=TEST_STREAM)["smiles"].tolist() != fixed["smiles"].tolist()


@pytest.mark.parametrize(("epoch", "expected"), [(None, 0), (0.0, 0), (2.0, 2), (2.6, 2)])  # 2.6: resumed mid-epoch
def test_the_callback_gives_the_views_the_epoch_that_starts(epoch, expected):
    rv = _views()
    rv.set_epoch(7)
    DrawEachEpoch(rv).on_epoch_begin(None, SimpleNamespace(epoch=epoch), None)
    assert rv.epoch == expected


@pytest.mark.parametrize(("key", "value"), [("train_n", -1), ("test_n", -2), ("test_n", 1.5), ("train_n", True)])
def test_a_count_that_is_not_a_natural_number_is_a_config_error_naming_its_key(key, value):
    cfg = OmegaConf.create({"seed": 0, "augment": {"train_n": 0, "test_n": 0} | {key: value}})
    with pytest.raises(ConfigError, match=f"augment.{key}="):
        Augment.from_cfg(cfg)


def test_tta_scores_are_the_mean_over_the_canonical_and_the_random_smiles():
    """A stand-in model scores a SMILES by its token count, so each mean can be computed by hand."""
    tokenizer = tiny_tokenizer()

    def score(smiles: str) -> float:
        return float(len(encode(tokenizer, smiles, 64)["input_ids"]))

    def predict(ds, labels):
        calls.append(len(ds))
        return np.asarray([float(len(ids)) for ids in ds["input_ids"]])

    calls = []
    frames = {"val_easy": MOLECULES.loc[[10, 11]], "val_hard": MOLECULES.loc[[10, 15, 17]]}  # row 10 in both
    canonical = {name: np.asarray([score(s) for s in frame["smiles"]]) for name, frame in frames.items()}
    scores, facts = Augment(train_n=0, test_n=4, seed=0).tta(canonical, frames, InputSpace(tokenizer, 64), predict)
    assert calls == [4 * 4] and facts["tta_smiles"] == 16  # each molecule drawn once, though row 10 is in two sets
    for name, frame in frames.items():
        for row, got in zip(frame.index, scores[name]):
            drawn = tta_views([MOLECULES.at[row, "smiles"]], 4, seed=0)
            assert got == pytest.approx(np.mean([score(MOLECULES.at[row, "smiles"]), *map(score, drawn)]))
    assert not np.array_equal(scores["val_hard"], canonical["val_hard"])  # the views moved the scores
    assert Augment(0, 0, 0).tta(canonical, frames, InputSpace(tokenizer, 64), predict)[0] is canonical  # test_n=0


def test_tta_views_are_keyed_by_the_molecule_not_its_position():
    """A molecule gets the same test-time views wherever it stands (in a run's eval sets, in a scored library)."""
    a, b = SMILES[0], SMILES[1]
    drawn = tta_views([a, b, a], 3, seed=0)
    assert len(drawn) == 9 and drawn[0:3] == drawn[6:9] == tta_views([a], 3, seed=0)
    assert canonical_smiles(drawn) == canonical_smiles([a] * 3 + [b] * 3 + [a] * 3)  # valid, the same molecules
    assert len(set(drawn[0:3]) | {a}) > 1  # randomized, not the canonical one repeated
    assert tta_views([a, b], 3, seed=1) != drawn[:6]  # the run's seed picks the draws
    assert tta_views([a], 3, seed=0) != views(MOLECULES.loc[[10]], 3, seed=0, stream=TRAIN_STREAM)["smiles"].tolist()


def test_tta_mean_averages_the_canonical_score_with_each_view():
    got = tta_mean(np.array([0.2, 0.9]), np.array([[0.4, 0.6, 0.0], [0.5, 0.5, 0.7]]))
    np.testing.assert_allclose(got, [(0.2 + 1.0) / 4, (0.9 + 1.7) / 4])
