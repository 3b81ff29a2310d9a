"""Pre-training corpora and the held-out SMILES forgetting is measured on."""

import dataclasses
import gzip
import zipfile

import pandas as pd
import pytest
from omegaconf import OmegaConf

from delbind.assets import MOSES
from delbind.data import build_dataset
from delbind.data import corpus as corpus_module
from delbind.data.chem import canonical_smiles, scaffold
from delbind.data.corpus import (
    CORPUS_FILE,
    MOSES_TRAIN,
    carry_corpus,
    check_trunk_corpus,
    heldout_smiles,
    read_corpus,
    write_corpus,
)
from delbind.errors import DataError
from delbind.integrity import sha256_of
from tests.helpers import compose_cfg


def _corpus(path, column="smiles"):
    return OmegaConf.create({"path": str(path), "smiles_column": column, "splits": ["train"]})


def test_a_smiles_file_is_canonical_unique_and_counted(tmp_path):
    path = tmp_path / "corpus.smi"
    path.write_text("OCC ethanol\nCCO\n\nnot_a_smiles\nc1ccccc1\n")
    smiles, stats = read_corpus(_corpus(path), None, 0)
    assert smiles == ["CCO", "c1ccccc1"]
    assert (stats["corpus_rows"], stats["corpus_invalid_smiles_dropped"], stats["corpus_duplicates_dropped"]) == (
        4,
        1,
        1,
    )
    table = tmp_path / "corpus.csv"
    table.write_text("id,SMILES\n1,OCC\n2,c1ccccc1Br\n")
    assert read_corpus(_corpus(table, "SMILES"), None, 0)[0] == ["CCO", "Brc1ccccc1"]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("missing.smi", None, "is not a file"),
        ("empty.smi", "\n\n", "holds no valid SMILES"),
        ("table.csv", "id,smi\n1,CCO\n", "has no column 'smiles'"),
    ],
)
def test_bad_corpus_is_a_data_error(tmp_path, name, text, message):
    if text is not None:
        (tmp_path / name).write_text(text)
    with pytest.raises(DataError, match=message):
        read_corpus(_corpus(tmp_path / name), None, 0)


def _data_scaffolds(data_cfg, seed):
    """Every group of the data set: the union of every fold's val / test groups."""
    groups = set()
    for fold in range(int(data_cfg.folds)):
        df, _ = build_dataset(OmegaConf.merge(data_cfg, {"fold": fold}), seed)
        groups |= set(df.loc[df["split"] != "train", "group"])
    return groups


def test_a_source_corpus_serves_the_one_fold_it_was_built_for(tmp_path):
    overrides = ["model=tiny", "debug=smoke", "logger=none", "corpus.exclude_eval_folds=[0]"]
    cfg = compose_cfg(tmp_path / "run", overrides, config_name="pretrain")
    smiles, stats = read_corpus(cfg.corpus, cfg.data, 0)
    df, _ = build_dataset(cfg.data, 0)
    assert set(smiles) == set(df.loc[df["split"] == "train", "smiles"])  # fold 0's train: no val / test scaffold
    assert stats["n_molecules"] == len(smiles) == len(set(smiles)) and stats["corpus_exclude_eval_folds"] == [0]
    every_fold = OmegaConf.merge(cfg.corpus, {"exclude_eval_folds": "all"})  # the test folds tile the target set:
    left, _ = read_corpus(every_fold, cfg.data, 0)  # only never-evaluated molecules (unsampled easy negatives) stay
    assert not {scaffold(s) for s in left} & _data_scaffolds(cfg.data, 0) and len(left) < len(smiles) / 2


def test_a_moleculeace_corpus_shares_no_scaffold_with_the_data_nor_a_heldout_molecule(tmp_path):
    overrides = ["model=tiny", "logger=none", "corpus.moleculeace=kinases", "data.folds=3"]
    cfg = compose_cfg(tmp_path / "run", overrides, config_name="pretrain")
    smiles, stats = read_corpus(cfg.corpus, cfg.data, 0)
    assert cfg.data.target not in stats["corpus_sets"] and len(stats["corpus_sets"]) == 6  # the other kinases
    assert canonical_smiles(smiles[:50]) == smiles[:50] and len(set(smiles)) == len(smiles)
    assert not {scaffold(s) for s in smiles} & _data_scaffolds(cfg.data, 0)  # no eval scaffold of any fold
    assert stats["corpus_eval_groups_dropped"] > 0  # kinase sets share chemotypes: the guard has work to do
    assert not set(smiles) & set(heldout_smiles())  # forgetting stays measured on unseen molecules
    with pytest.raises(DataError, match="corpus.moleculeace=kinase is not one of"):
        read_corpus(OmegaConf.merge(cfg.corpus, {"moleculeace": "kinase"}), cfg.data, 0)


def test_a_run_refuses_a_trunk_pre_trained_on_its_val_or_test(tmp_path):
    df = pd.DataFrame({"smiles": ["CCO", "CCN", "CCC"], "split": ["train", "val", "test"]})
    write_corpus(["CCO", "c1ccccc1"], tmp_path / "clean")
    check_trunk_corpus(str(tmp_path / "clean"), df)  # a train molecule in the corpus is fine
    check_trunk_corpus(None, df)  # a builtin or config model: nothing to check
    write_corpus(["CCO", "CCC"], tmp_path / "leaky")
    with pytest.raises(DataError, match="1 val / test molecules of this run are, or share"):
        check_trunk_corpus(str(tmp_path / "leaky"), df)


def test_a_run_refuses_a_trunk_whose_corpus_shares_a_scaffold_with_its_test(tmp_path):
    test = "c1ccc(CCN)cc1"
    df = pd.DataFrame({"smiles": ["CCO", test], "split": ["train", "test"], "group": ["", scaffold(test)]})
    write_corpus(["c1ccc(CCO)cc1"], tmp_path / "cousin")  # another molecule on the test molecule's scaffold
    check_trunk_corpus(str(tmp_path / "cousin"), df, "random")  # a random split keeps molecules apart, not scaffolds
    with pytest.raises(DataError, match="share a scaffold group"):
        check_trunk_corpus(str(tmp_path / "cousin"), df, "scaffold")


def test_a_trained_model_carries_its_trunks_corpus_and_its_own_training_molecules(tmp_path):
    write_corpus(["CCO", "c1ccccc1"], tmp_path / "trunk")
    assert carry_corpus(str(tmp_path / "trunk"), ["CCN", "CCO"], tmp_path / "tuned") == 3
    assert (tmp_path / "tuned" / CORPUS_FILE).read_text().split() == ["CCO", "c1ccccc1", "CCN"]
    df = pd.DataFrame({"smiles": ["CCO", "CCN"], "split": ["train", "test"]})  # another split: CCN is test now
    with pytest.raises(DataError, match="1 val / test molecules"):
        check_trunk_corpus(str(tmp_path / "tuned"), df)
    assert carry_corpus("rxn/hub-id", [], tmp_path / "frozen") == 0  # a frozen hub trunk saw nothing of ours
    assert not (tmp_path / "frozen").exists()


def test_heldout_smiles_are_a_fixed_canonical_sample_outside_the_run():
    first = heldout_smiles(20, seed=0)
    assert first == heldout_smiles(20, seed=0) != heldout_smiles(20, seed=1)
    assert canonical_smiles(first) == first and len(set(first)) == 20
    without = heldout_smiles(20, seed=0, exclude=set(first[:5]))
    assert not set(without) & set(first[:5])
    assert without[:15] == first[5:]  # one seeded order: excluding molecules only swaps those out


def _moses_wheel(tmp_path, smiles, monkeypatch):
    """A molsets wheel of ``smiles`` in MOSES's layout, pinned as the MOSES asset (sha256 and all)."""
    table = pd.DataFrame({"SMILES": smiles}).to_csv(index=False).encode()
    wheel = tmp_path / f"{MOSES.wheel_name}"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(MOSES_TRAIN, gzip.compress(table))
    monkeypatch.setattr(corpus_module, "MOSES", dataclasses.replace(MOSES, sha256=sha256_of(wheel)))
    monkeypatch.setenv(MOSES.env_var, str(wheel))


def test_a_moses_corpus_is_a_seeded_sample_minus_eval_scaffolds_and_heldout(tmp_path, monkeypatch):
    cfg = compose_cfg(tmp_path / "run", ["model=tiny", "logger=none", "data.folds=3"], config_name="pretrain")
    data, _ = build_dataset(cfg.data, 0)
    drug_like = heldout_smiles(300, seed=7)  # MoleculeACE ligands stand in for ZINC's drug-like molecules
    heldout = heldout_smiles()[:20]
    raw = [*data["smiles"].iloc[:40], *heldout, "C1CC", *drug_like]  # 40 of the data's, forgetting's, one invalid
    _moses_wheel(tmp_path, raw, monkeypatch)
    every = OmegaConf.merge(cfg.corpus, {"moses": len(raw)})
    smiles, stats = read_corpus(every, cfg.data, 0)
    assert stats["corpus"] == f"moses={len(raw)}" and stats["corpus_invalid_smiles_dropped"] == 1
    assert not set(smiles) & set(heldout_smiles()) and stats["corpus_forgetting_heldout_dropped"] >= 20
    assert not {scaffold(s) for s in smiles} & _data_scaffolds(cfg.data, 0)  # the data's folds tile it: all out
    assert stats["corpus_eval_groups_dropped"] >= 40 and canonical_smiles(smiles[:20]) == smiles[:20]
    sample = OmegaConf.merge(cfg.corpus, {"moses": 100})
    a, b, c = (read_corpus(sample, cfg.data, seed)[0] for seed in (0, 0, 1))
    assert a == b != c and len(a) <= 100  # seeded by the run's seed
    with pytest.raises(DataError, match=f"corpus.moses=100000: choose 1..{len(raw)} molecules"):
        read_corpus(OmegaConf.merge(cfg.corpus, {"moses": 100_000}), cfg.data, 0)
