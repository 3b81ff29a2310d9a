"""data=table: a user's CSV / parquet of SMILES and 0/1 labels, and every bad-input case."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from synthetic_screens import synthetic_screen

from delbind.data import build_dataset
from delbind.data.chem import max_tanimoto
from delbind.errors import DataError
from tests.helpers import ROOT

BASE = OmegaConf.load(ROOT / "conf/data/table.yaml")


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    """180 valid molecules: binders, hard negatives near them, easy ones unlike them, a split column."""
    smiles = synthetic_screen(216, (6, 6, 6), seed=0)["smiles"].sample(120, random_state=0).tolist()
    smiles += [f"{'C' * i}{end}" for end in ("O", "N", "Cl") for i in range(1, 21)]  # unlike every binder
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "SMILES": smiles,
            "active": np.repeat([1, 0, 0], 60),
            "neg_kind": np.repeat(["", "hard", "easy"], 60),
            "fold": rng.choice(["train", "valid", "test"], 180, p=[0.6, 0.2, 0.2]),
        }
    )


def cfg_for(path: Path, **kw):
    return OmegaConf.merge(BASE, {"path": str(path), "smiles_column": "SMILES", "label_column": "active", **kw})


def write(df: pd.DataFrame, path: Path) -> Path:
    df.to_parquet(path) if path.suffix == ".parquet" else df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_kind_and_split_columns_are_used(table, tmp_path, suffix):
    path = write(table, tmp_path / f"t{suffix}")
    df, st = build_dataset(cfg_for(path, kind_column="neg_kind", split_column="fold"), seed=0)
    assert st["kind_from"] == "column" and st["invalid_smiles_dropped"] == 0
    for split in ("train", "val", "test"):
        part = df[df["split"] == split]
        assert (part["kind"] == "easy").sum() == (part["kind"] == "hard").sum() > 0  # balanced per split
    assert set(df.loc[df["label"] == 1, "kind"]) == {"binder"}


def test_without_kind_column_hard_negatives_are_the_near_ones(table, tmp_path):
    path = write(table.drop(columns="neg_kind"), tmp_path / "t.csv")
    df, st = build_dataset(cfg_for(path, split="random", easy_per_hard=None, hard_min_similarity=0.5), seed=0)
    sim = max_tanimoto(df.loc[df["label"] == 0, "smiles"].tolist(), df.loc[df["label"] == 1, "smiles"].tolist())
    kinds = df.loc[df["label"] == 0, "kind"].to_numpy()
    assert ((sim >= 0.5) == (kinds == "hard")).all() and {"easy", "hard"} == set(kinds)
    assert "Tanimoto" in st["kind_from"]


def test_invalid_smiles_and_duplicates_are_dropped_and_counted(table, tmp_path):
    bad = table.copy()
    bad.loc[0, "SMILES"] = "not a smiles"
    extra = pd.concat([bad, bad.iloc[[5]], bad.iloc[[70]].assign(active=1)])  # a repeat and a contradiction
    df, st = build_dataset(
        cfg_for(write(extra, tmp_path / "t.csv"), kind_column="neg_kind", split_column="fold"), seed=0
    )
    assert st["invalid_smiles_dropped"] == 1
    assert st["duplicates_merged"] == 1 and st["conflicting_duplicates_dropped"] == 2
    assert df["smiles"].is_unique


@pytest.mark.parametrize(
    ("edit", "kw", "match"),
    [
        (lambda t: t.drop(columns="active"), {}, r"no column \['active'\]"),
        (lambda t: t.assign(active=t["active"].astype(float).where(t.index != 3)), {}, "missing or non-numeric"),
        (lambda t: t.assign(active=t["active"].replace({1: 2})), {}, "must be 0/1"),
        (lambda t: t.assign(SMILES="xx"), {}, "are not valid SMILES"),
        (lambda t: t.assign(active=0), {}, "only non-binders"),
        (lambda t: t.assign(neg_kind="medium"), {"kind_column": "neg_kind"}, "must be easy or hard"),
        (lambda t: t.assign(fold="holdout"), {"split_column": "fold"}, "must be train/val/test"),
    ],
)
def test_bad_input_is_a_clear_error(table, tmp_path, edit, kw, match):
    with pytest.raises(DataError, match=match):
        build_dataset(cfg_for(write(edit(table), tmp_path / "t.csv"), **kw), seed=0)


def test_unreadable_or_missing_files_are_clear_errors(tmp_path):
    (tmp_path / "t.parquet").write_text("not parquet")
    with pytest.raises(DataError, match="cannot read"):
        build_dataset(cfg_for(tmp_path / "t.parquet"), seed=0)
    with pytest.raises(DataError, match="is not a file"):
        build_dataset(cfg_for(tmp_path / "missing.csv"), seed=0)
    with pytest.raises(DataError, match="needs data.path"):
        build_dataset(BASE, seed=0)


def test_changing_test_labels_changes_nothing_that_trains(table, tmp_path):
    """Kinds by similarity read a split's own binders and train's: changing test labels leaves every training row."""
    # a test binder of its own chemotype and a training non-binder beside it: only the test binder makes it "hard"
    pair = pd.DataFrame({"SMILES": ["O=P(O)(O)c1ccc(-c2ccc3ccccc3n2)cc1", "O=P(O)(O)c1ccc(-c2ccc3ccccc3n2)cc1F"],
                         "active": [1, 0], "neg_kind": ["", "hard"], "fold": ["test", "train"]})  # fmt: skip
    table = pd.concat([table, pair], ignore_index=True)
    flipped = table.copy()
    test_binders = flipped.index[(flipped["fold"] == "test") & (flipped["active"] == 1)]
    flipped.loc[[*test_binders[::2], len(table) - 2], "active"] = 0  # test binders measured again as non-binders
    settings = {"split_column": "fold", "easy_per_hard": None, "hard_min_similarity": 0.5}
    (df, _), (other, _) = (
        build_dataset(cfg_for(write(t, tmp_path / f"{name}.csv"), **settings), seed=0)
        for name, t in (("table", table), ("flipped", flipped))
    )
    train, train_other = (d[d["split"] == "train"].reset_index(drop=True) for d in (df, other))
    pd.testing.assert_frame_equal(train, train_other)
    assert {"easy", "hard"} <= set(train["kind"]) and not df[df["split"] == "test"].equals(
        other[other["split"] == "test"]
    )


def test_a_molecule_in_two_given_splits_keeps_its_training_row(table, tmp_path):
    leak = table.iloc[[0]].assign(fold="test", active=0)  # a training-or-other binder copied into test as a non-binder
    first = table.loc[0, "fold"]
    df, st = build_dataset(cfg_for(write(pd.concat([table, leak]), tmp_path / "t.csv"), split_column="fold"), seed=0)
    row = df[df["smiles"] == df.loc[df["label"] == 1, "smiles"].iloc[0]]
    assert st["cross_split_duplicates_dropped"] == (first != "test")
    assert df["smiles"].is_unique and (row["label"] == 1).all()


def test_similarity_reads_own_split_and_training_binders_only():
    from delbind.data.splits import similarity_to_seen_binders

    a, b, c = "c1ccccc1CCO", "c1ccncc1CCN", "CCCCCCCCCC"
    binders = pd.DataFrame({"smiles": [a, b], "split": ["val", "test"]})
    rows = pd.DataFrame({"smiles": [a, a, b, b, c], "split": ["train", "val", "val", "test", "test"]})
    sim = similarity_to_seen_binders(rows, binders)
    assert sim[0] == 0.0  # a training row never reads a val/test binder
    assert sim[1] == 1.0 and sim[3] == 1.0  # its own split's binder
    assert sim[2] < 1.0 and sim[4] < 0.2  # val does not read test's binder
