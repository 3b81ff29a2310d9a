"""Shared chemistry, through RDKit: canonical and randomized SMILES, scaffolds, and the one ECFP4 definition.

RDKit is imported on first use, not with this module: a run on a prepared dataset (``data.prepared``) and the
offline GPU check (docs/performance.md) train and score without it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np

ECFP_RADIUS = 2  # ECFP4: Morgan radius 2
ECFP_BITS = 2048


@functools.cache
def _rdkit() -> SimpleNamespace:
    """RDKit's modules, imported once; without RDKit one line says what needs it."""
    try:
        from rdkit import Chem, DataStructs, RDLogger
        from rdkit.Chem import rdFingerprintGenerator
        from rdkit.Chem.Scaffolds import MurckoScaffold
    except ImportError as e:
        raise ImportError(
            f"RDKit is needed to read, standardize or fingerprint SMILES ({e}): pip install rdkit. A run on a "
            "prepared dataset (data.prepared=DIR from scripts/prepare_data.py) trains without it."
        ) from e
    RDLogger.DisableLog("rdApp.*")  # invalid SMILES are counted and reported, not printed one by one
    return SimpleNamespace(Chem=Chem, DataStructs=DataStructs, fingerprints=rdFingerprintGenerator,
                           Murcko=MurckoScaffold)  # fmt: skip


def canonical_smiles(smiles: Iterable[str]) -> list[str | None]:
    """RDKit canonical isomeric SMILES, or None where RDKit cannot parse the input."""
    Chem, out = _rdkit().Chem, []
    for s in smiles:
        mol = Chem.MolFromSmiles(s) if isinstance(s, str) and s else None
        out.append(Chem.MolToSmiles(mol) if mol is not None else None)
    return out


MAX_RDKIT_SEED = 2**31 - 1  # RDKit reads a seed as a signed int: 0 or one past this draws unseeded (unrepeatable)


def randomized_smiles(smiles: str, n: int, seed: int) -> list[str]:
    """``n`` random (non-canonical) SMILES of one molecule, the same for the same ``seed`` (1..``MAX_RDKIT_SEED``).

    RDKit's random SMILES writer (``MolToSmiles(doRandom=True, canonical=False)``: random start atom and branch
    order) through ``MolToRandomSmilesVect``, which takes its own seed instead of RDKit's process-wide generator.
    Stereo is kept. A draw may happen to equal the canonical SMILES.
    """
    if not 1 <= seed <= MAX_RDKIT_SEED:
        raise ValueError(f"seed={seed}: RDKit draws unseeded (unrepeatable) outside 1..{MAX_RDKIT_SEED}")
    Chem = _rdkit().Chem
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError(f"RDKit cannot parse {smiles!r}")
    return list(Chem.MolToRandomSmilesVect(mol, n, randomSeed=seed))


def scaffold(smiles: str) -> str:
    """Bemis-Murcko scaffold; acyclic molecules are their own group (keyed by their SMILES)."""
    scaf = _rdkit().Murcko.MurckoScaffoldSmiles(smiles=smiles)
    return scaf if scaf else f"acyclic:{smiles}"


def ecfp4(smiles: Sequence[str]) -> list[Any]:
    """ECFP4 bit vectors (RDKit ExplicitBitVect) of valid SMILES."""
    rd = _rdkit()
    gen = rd.fingerprints.GetMorganGenerator(radius=ECFP_RADIUS, fpSize=ECFP_BITS)
    return [gen.GetFingerprint(rd.Chem.MolFromSmiles(s)) for s in smiles]


def ecfp4_matrix(smiles: Sequence[str]) -> np.ndarray:
    """ECFP4 as a uint8 matrix (rows = molecules), for scikit-learn."""
    out, to_numpy = np.zeros((len(smiles), ECFP_BITS), dtype=np.uint8), _rdkit().DataStructs.ConvertToNumpyArray
    for i, fp in enumerate(ecfp4(smiles)):
        to_numpy(fp, out[i])
    return out


def tanimoto(fp: Any, reference: Sequence[Any]) -> np.ndarray:
    """Tanimoto similarity of one ECFP4 bit vector to each of ``reference`` (bit vectors from ``ecfp4``)."""
    return np.asarray(_rdkit().DataStructs.BulkTanimotoSimilarity(fp, reference))


def max_tanimoto(query: Sequence[str], reference: Sequence[str]) -> np.ndarray:
    """For each query molecule, its highest ECFP4 Tanimoto similarity to any reference molecule."""
    ref = ecfp4(reference)
    return np.array([tanimoto(fp, ref).max() for fp in ecfp4(query)])
