"""Unlabelled SMILES: a pre-training corpus (a file, or a data source's train split) and the fixed held-out set
on which forgetting is measured."""

from __future__ import annotations

import gzip
import logging
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig

from delbind.data.chem import canonical_smiles
from delbind.data.dataset import build_dataset
from delbind.data.sources.chembl_kinase import KINASE_TARGETS, _moleculeace_files, _read_moleculeace
from delbind.data.sources.table import read_table
from delbind.errors import DataError

log = logging.getLogger(__name__)

LINE_FILES = (".smi", ".smiles", ".txt")  # one SMILES a line (a .smi line may go on with a name after a space)
HELDOUT_MOLECULES = 256
HELDOUT_SEED = 0


def _file_smiles(path: str, column: str) -> list[str]:
    """The raw SMILES of a line file (first field of each non-empty line) or of a table's ``column``."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"corpus.path={path} is not a file: give a .smi/.txt (one SMILES a line) or a CSV/parquet")
    if p.name.lower().removesuffix(".gz").endswith(LINE_FILES):
        with gzip.open(p, "rt") if p.suffix == ".gz" else p.open() as f:
            return [line.split()[0] for line in f if line.strip()]
    table = read_table(path, key="corpus.path", what="SMILES")
    if column not in table.columns:
        raise DataError(
            f"corpus.path={path} has no column {column!r} (columns: {list(table.columns)[:10]}): "
            "set corpus.smiles_column"
        )
    return table[column].dropna().astype(str).tolist()


def _canonical_unique(raw: list[str], stats: dict[str, Any]) -> list[str]:
    smiles = pd.Series(canonical_smiles(raw), dtype=object)
    stats["corpus_invalid_smiles_dropped"] = int(smiles.isna().sum())
    unique = smiles.dropna().drop_duplicates()
    stats["corpus_duplicates_dropped"] = int(smiles.notna().sum() - len(unique))
    return unique.tolist()


def read_corpus(corpus_cfg: DictConfig, data_cfg: DictConfig, seed: int) -> tuple[list[str], dict[str, Any]]:
    """Canonical, unique SMILES of ``corpus.path``, else of the data source's ``corpus.splits`` (train only by
    default: val / test molecules in the trunk would leak the test distribution into every arm built on it)."""
    if corpus_cfg.path:
        raw = _file_smiles(str(corpus_cfg.path), corpus_cfg.smiles_column)
        stats: dict[str, Any] = {"corpus": str(corpus_cfg.path), "corpus_rows": len(raw)}
        smiles = _canonical_unique(raw, stats)
    else:
        splits = list(corpus_cfg.splits)
        if set(splits) - {"train"}:
            log.warning("corpus.splits=%s: pre-training sees molecules the fine-tuned arms are tested on", splits)
        df, data_stats = build_dataset(data_cfg, seed)  # already canonical and unique per molecule
        smiles = df.loc[df["split"].isin(splits), "smiles"].drop_duplicates().tolist()
        stats = {"corpus": f"data={data_cfg.name}", "corpus_splits": splits, "data_stats": data_stats}
    if not smiles:
        raise DataError(f"the corpus ({stats['corpus']}) holds no valid SMILES")
    stats["n_molecules"] = len(smiles)
    return smiles, stats


def heldout_smiles(
    n: int = HELDOUT_MOLECULES, seed: int = HELDOUT_SEED, exclude: Collection[str] = frozenset()
) -> list[str]:
    """A seeded sample of ``n`` canonical SMILES from MoleculeACE's non-kinase ligand sets, none in ``exclude``.

    General chemistry, independent of the task: what a fine-tuned trunk may forget. Molecules are taken in one
    seeded order, so a larger ``exclude`` only swaps out the excluded ones.
    """
    if n <= 0:
        return []
    files = [f for chembl, f in sorted(_moleculeace_files().items()) if chembl not in KINASE_TARGETS]
    pool = pd.concat([_read_moleculeace(f)["smiles"] for f in files]).drop_duplicates()
    pool = pool.sample(frac=1.0, random_state=seed).tolist()
    out: list[str] = []
    seen = set(exclude)
    for start in range(0, len(pool), max(2 * n, 1)):  # only as many molecules through RDKit as needed
        for smi in canonical_smiles(pool[start : start + 2 * n]):
            if smi is not None and smi not in seen:
                seen.add(smi)
                out.append(smi)
                if len(out) == n:
                    return out
    raise DataError(f"only {len(out)} held-out SMILES are left after excluding {len(exclude)}; ask for fewer")
