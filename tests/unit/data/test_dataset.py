import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from delbind.data import build_dataset, check_dataset, eval_frames, with_external
from delbind.data.chem import canonical_smiles, max_tanimoto, scaffold
from delbind.data.sources.chembl_kinase import geometric_mean
from delbind.data.splits import Folds, assign_splits
from delbind.errors import ConfigError, DataError
from delbind.models.tokenizers import tokenize
from tests.helpers import ROOT, tiny_tokenizer

DEFAULT = OmegaConf.load(ROOT / "conf/data/chembl_kinase.yaml")


@pytest.fixture(scope="module")
def built():
    return build_dataset(DEFAULT, seed=0)


def test_labels_follow_thresholds(built):
    df, _ = built
    target = df[df["kind"] != "easy"]
    assert (target.loc[target["label"] == 1, "value_nm"] <= DEFAULT.binder_max_nm).all()
    assert (target.loc[target["kind"] == "hard", "value_nm"] >= DEFAULT.hard_min_nm).all()
    assert set(df.loc[df["label"] == 1, "kind"]) == {"binder"}
    assert set(df.loc[df["label"] == 0, "kind"]) == {"easy", "hard"}


def test_counts_add_up(built):
    df, stats = built
    # every target row is a binder, a hard negative, a dropped invalid/duplicate, or between thresholds
    n_target = (df["kind"] != "easy").sum()
    dropped = stats["target_invalid_smiles_dropped"] + stats["target_duplicates_merged"]
    assert n_target + dropped + stats["target_between_thresholds_dropped"] == stats["target_rows"]
    for split in ("train", "val", "test"):
        for kind in ("binder", "easy", "hard"):
            assert stats[f"n_{split}_{kind}"] == ((df["split"] == split) & (df["kind"] == kind)).sum()


def test_easy_hard_balance_in_every_split(built):
    df, _ = built
    for split in ("train", "val", "test"):
        part = df[df["split"] == split]
        assert (part["kind"] == "easy").sum() == (part["kind"] == "hard").sum() > 0
        assert (part["kind"] == "binder").sum() > 0


def test_no_scaffold_or_molecule_in_two_splits(built):
    df, _ = built
    scaffolds = df["smiles"].map(scaffold)
    assert (df.groupby(scaffolds)["split"].nunique() == 1).all()
    assert df["smiles"].is_unique


def test_easy_negatives_are_unlike_binders_and_not_target_molecules(built):
    df, _ = built
    easy = df[df["kind"] == "easy"]
    sims = max_tanimoto(easy["smiles"].tolist(), df.loc[df["label"] == 1, "smiles"].tolist())
    assert sims.max() < DEFAULT.easy_max_similarity
    assert easy["value_nm"].isna().all()  # never measured against the target


def test_deterministic_for_a_seed_and_different_across_seeds(built):
    df, _ = built
    again, _ = build_dataset(DEFAULT, seed=0)
    pd.testing.assert_frame_equal(df, again)
    other, _ = build_dataset(DEFAULT, seed=1)
    assert not df["split"].equals(other["split"])


def test_random_split_is_also_leak_free():
    cfg = OmegaConf.merge(DEFAULT, {"split": "random"})
    df, _ = build_dataset(cfg, seed=0)
    assert df["smiles"].is_unique
    check_dataset(df)


def test_folds_keep_groups_whole_and_score_every_molecule_once_as_test():
    rng = np.random.default_rng(0)
    groups = pd.Series(rng.integers(0, 300, size=2000))
    splits = [assign_splits(groups, Folds(5, f, 0.1), seed=0) for f in range(5)]
    for split in splits:
        assert (split.groupby(groups).nunique() == 1).all()
        frac = split.value_counts(normalize=True)
        assert frac["test"] == pytest.approx(0.2, abs=0.03)
        assert frac["val"] == pytest.approx(0.1, abs=0.03)
    as_test = sum((s == "test").astype(int) for s in splits)
    assert (as_test == 1).all()  # the folds tile the set: one repeat scores every molecule exactly once
    assert not splits[0].equals(assign_splits(groups, Folds(5, 0, 0.1), seed=1))  # data_seed deals anew


def test_folds_do_not_depend_on_row_order():
    rng = np.random.default_rng(3)
    groups = pd.Series(rng.integers(0, 200, size=1000)).map("g{}".format)
    labels = pd.Series((rng.random(1000) < 0.3).astype(int))
    split = assign_splits(groups, Folds(5, 2, 0.1), seed=7, labels=labels)
    order = rng.permutation(len(groups))
    shuffled = assign_splits(groups.iloc[order], Folds(5, 2, 0.1), seed=7, labels=labels.iloc[order])
    assert shuffled.reindex(split.index).equals(split)


def test_fold_config_is_checked():
    for folds, fold, val in ((1, 0, 0.1), (5, 5, 0.1), (5, 0, 0.0), (5, 0, 0.8)):
        with pytest.raises(ConfigError, match="data."):
            Folds.from_cfg(OmegaConf.create({"folds": folds, "fold": fold, "val_fraction": val}))
    with pytest.raises(DataError, match="groups cannot fill"):
        assign_splits(pd.Series(["a", "b", "a"]), Folds(5, 0, 0.1), seed=0)


def test_labelled_folds_keep_the_binder_fraction_in_every_split():
    rng = np.random.default_rng(1)
    groups = pd.Series(rng.integers(0, 400, size=3000))
    labels = pd.Series((rng.random(400) < 0.3).astype(int)[groups])  # groups are mostly one label
    split = assign_splits(groups, Folds(5, 1, 0.1), seed=0, labels=labels)
    assert (split.groupby(groups).nunique() == 1).all()
    by_split = labels.groupby(split).mean()
    assert by_split.sub(labels.mean()).abs().max() < 0.05
    assert split.value_counts(normalize=True)["test"] == pytest.approx(0.2, abs=0.03)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scaffold_split_keeps_prevalence_comparable_across_seeds(seed):
    df, _ = build_dataset(DEFAULT, seed=seed)
    scored = df[df["kind"] != "easy"]  # binders + hard negatives: the split's own molecules
    prevalence = scored.groupby("split")["label"].mean()
    assert prevalence.sub(scored["label"].mean()).abs().max() < 0.1


def test_canonical_smiles_and_invalid_input():
    assert canonical_smiles(["OCC", "C(C)O", "not a smiles", "", None]) == ["CCO", "CCO", None, None, None]


def test_geometric_mean_keeps_threshold_values_exact():
    assert geometric_mean(pd.Series([100.0])) == 100.0
    assert geometric_mean(pd.Series([100.0, 100.0, 100.0])) == 100.0
    assert geometric_mean(pd.Series([10.0, 1000.0])) == pytest.approx(100.0)


def test_check_dataset_names_the_missing_class():
    df = pd.DataFrame(
        {
            "smiles": list("CNOSPF"),
            "group": list("abcdef"),
            "split": ["train", "train", "train", "val", "val", "test"],
            "kind": ["binder", "easy", "hard", "binder", "easy", "hard"],
        }
    )
    with pytest.raises(DataError, match="split val has no hard"):
        check_dataset(df)


def test_unknown_target_is_a_clear_error():
    with pytest.raises(DataError, match="CHEMBL999 is not in MoleculeACE"):
        build_dataset(OmegaConf.merge(DEFAULT, {"target": "CHEMBL999"}), seed=0)


def test_eval_frames_pair_binders_with_one_kind(built):
    df, _ = built
    frames = eval_frames(df)
    assert set(frames) == {"val_easy", "val_hard", "test_easy", "test_hard"}
    for name, frame in frames.items():
        split, kind = name.split("_")
        assert set(frame["split"]) == {split}
        assert set(frame["kind"]) == {"binder", kind}


def test_tokenize_once_keeps_row_order_and_float_labels(built):
    df, _ = built
    ds = tokenize(df.head(20), tiny_tokenizer(), max_length=16)
    assert ds["labels"] == df.head(20)["label"].astype(float).tolist()
    assert max(len(x) for x in ds["input_ids"]) <= 16


def test_external_molecules_are_never_trained_on(built):
    df, _ = built
    train_smiles = df.loc[df["split"] == "train", "smiles"].head(3).tolist()
    test_smiles = df.loc[df["split"] == "test", "smiles"].head(1).tolist()
    external = {
        "heldout_x": pd.DataFrame({"smiles": train_smiles + test_smiles, "label": [1, 0, 1, 0], "kind": "heldout"})
    }
    stats = {}
    out, frames = with_external(df, external, stats)
    assert stats["external_in_train_dropped"] == 3
    trained = out[out["split"] == "train"]
    assert not trained["smiles"].isin(train_smiles).any()
    assert test_smiles[0] in set(out.loc[out["split"] == "test", "smiles"])  # only the training split loses them
    assert (out.loc[frames["heldout_x"].index, "split"] == "external").all()
    for name in ("val_easy", "val_hard", "test_easy", "test_hard"):
        pd.testing.assert_frame_equal(out.loc[frames[name].index], frames[name])
