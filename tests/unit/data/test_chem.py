"""Randomized SMILES: valid spellings of the same molecule, reproducible from their seed."""

import pytest

from delbind.data.chem import MAX_RDKIT_SEED, canonical_smiles, randomized_smiles
from tests.helpers import SMILES


@pytest.mark.parametrize("smiles", SMILES)  # includes a stereocentre and a double-bond geometry
def test_randomized_smiles_are_other_spellings_of_the_same_molecule(smiles):
    drawn = randomized_smiles(smiles, 20, seed=7)
    assert canonical_smiles(drawn) == canonical_smiles([smiles]) * 20  # valid, same molecule, stereo kept
    assert len(set(drawn)) > 1  # random spellings, not the canonical one each time


def test_randomized_smiles_repeat_with_their_seed_and_change_with_another():
    smiles = "CC(=O)Nc1ccc(O)cc1C[C@H](N)C(=O)O"
    assert randomized_smiles(smiles, 10, seed=3) == randomized_smiles(smiles, 10, seed=3)
    assert randomized_smiles(smiles, 10, seed=3) != randomized_smiles(smiles, 10, seed=4)
    assert randomized_smiles(smiles, 3, seed=3) == randomized_smiles(smiles, 10, seed=3)[:3]


@pytest.mark.parametrize("seed", [1, MAX_RDKIT_SEED])
def test_randomized_smiles_repeat_at_either_end_of_the_seed_range(seed):
    smiles = "CC(=O)Nc1ccc(O)cc1"
    assert len({randomized_smiles(smiles, 1, seed)[0] for _ in range(10)}) == 1


@pytest.mark.parametrize("seed", [0, MAX_RDKIT_SEED + 1])  # RDKit would draw these unseeded
def test_randomized_smiles_refuses_a_seed_rdkit_would_not_repeat(seed):
    with pytest.raises(ValueError, match="unseeded"):
        randomized_smiles("CCO", 2, seed=seed)


def test_randomized_smiles_refuses_unparsable_input():
    with pytest.raises(ValueError, match="cannot parse"):
        randomized_smiles("not a smiles", 2, seed=1)


def test_without_rdkit_the_chemistry_says_what_needs_it_and_a_prepared_run_does_not(monkeypatch):
    import sys

    from delbind.data import chem

    chem._rdkit.cache_clear()
    monkeypatch.setitem(sys.modules, "rdkit", None)  # as if not installed
    try:
        with pytest.raises(ImportError, match=r"RDKit is needed .*pip install rdkit.*data\.prepared"):
            canonical_smiles(["CCO"])
    finally:
        chem._rdkit.cache_clear()
    monkeypatch.delitem(sys.modules, "rdkit")
    assert canonical_smiles(["OCC"]) == ["CCO"]
