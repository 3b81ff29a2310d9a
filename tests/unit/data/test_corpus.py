"""Pre-training corpora and the held-out SMILES forgetting is measured on."""

import pytest
from omegaconf import OmegaConf

from delbind.data import build_dataset
from delbind.data.chem import canonical_smiles
from delbind.data.corpus import heldout_smiles, read_corpus
from delbind.errors import DataError
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


def test_a_source_corpus_holds_its_train_split_only(tmp_path):
    cfg = compose_cfg(tmp_path / "run", ["model=tiny", "debug=smoke", "logger=none"], config_name="pretrain")
    smiles, stats = read_corpus(cfg.corpus, cfg.data, cfg.seed)
    df, _ = build_dataset(cfg.data, cfg.seed)
    assert set(smiles) == set(df.loc[df["split"] == "train", "smiles"])
    assert not set(smiles) & set(df.loc[df["split"] != "train", "smiles"])  # val / test never seen
    assert stats["n_molecules"] == len(smiles) == len(set(smiles))


def test_heldout_smiles_are_a_fixed_canonical_sample_outside_the_run():
    first = heldout_smiles(20, seed=0)
    assert first == heldout_smiles(20, seed=0) != heldout_smiles(20, seed=1)
    assert canonical_smiles(first) == first and len(set(first)) == 20
    without = heldout_smiles(20, seed=0, exclude=set(first[:5]))
    assert not set(without) & set(first[:5])
    assert without[:15] == first[5:]  # one seeded order: excluding molecules only swaps those out
