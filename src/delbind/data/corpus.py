"""Unlabelled SMILES: a pre-training corpus (a file, MoleculeACE sets, or a data source's train split) kept apart
from every val / test molecule, and the fixed held-out set on which forgetting is measured."""

from __future__ import annotations

import gzip
import io
import logging
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from delbind.assets import MOSES, read_member
from delbind.data.chem import canonical_smiles
from delbind.data.dataset import build_dataset
from delbind.data.sources.chembl_kinase import KINASE_TARGETS, _moleculeace_files, _read_moleculeace
from delbind.data.sources.table import read_table
from delbind.data.splits import split_groups
from delbind.errors import DataError

log = logging.getLogger(__name__)

LINE_FILES = (".smi", ".smiles", ".txt")  # one SMILES a line (a .smi line may go on with a name after a space)
HELDOUT_MOLECULES = 256
HELDOUT_SEED = 0
CORPUS_FILE = "pretrain_corpus.smi"  # in a pre-trained model/ dir: the canonical SMILES it was pre-trained on
MOSES_TRAIN = "moses/dataset/data/train.csv.gz"  # in the molsets wheel: one SMILES column, 1,584,663 rows
MOLECULEACE_CORPORA = {"kinases": lambda chembl: chembl in KINASE_TARGETS, "all": lambda chembl: True}


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


def read_corpus(corpus_cfg: DictConfig, data_cfg: DictConfig | None, seed: int) -> tuple[list[str], dict[str, Any]]:
    """Canonical, unique SMILES of ``corpus.path``, of MoleculeACE sets (``corpus.moleculeace``), of a sample of MOSES
    (``corpus.moses``), else of the data
    source's ``corpus.splits`` (train only by default); minus every val / test molecule of the data source under
    each of ``corpus.exclude_eval_seeds``: val / test molecules in the trunk, even unlabelled, would leak the test
    distribution into every arm built on it, and a split depends on its seed."""
    built: dict[int, pd.DataFrame] = {}  # data sets already built, by seed: each is built once
    if corpus_cfg.path:
        raw = _file_smiles(str(corpus_cfg.path), corpus_cfg.smiles_column)
        stats: dict[str, Any] = {"corpus": str(corpus_cfg.path), "corpus_rows": len(raw)}
        smiles = _canonical_unique(raw, stats)
    elif corpus_cfg.get("moleculeace"):
        smiles, stats = _moleculeace_corpus(str(corpus_cfg.moleculeace), data_cfg)
    elif corpus_cfg.get("moses"):
        smiles, stats = _moses_corpus(int(corpus_cfg.moses), seed)
    else:
        splits = list(corpus_cfg.splits)
        if set(splits) - {"train"}:
            log.warning("corpus.splits=%s: pre-training sees molecules the fine-tuned arms are tested on", splits)
        df, data_stats = build_dataset(data_cfg, seed)  # already canonical and unique per molecule
        built[seed] = df
        smiles = df.loc[df["split"].isin(splits), "smiles"].drop_duplicates().tolist()
        stats = {"corpus": f"data={data_cfg.name}", "corpus_splits": splits, "data_stats": data_stats}
    seeds = [int(s) for s in corpus_cfg.get("exclude_eval_seeds") or []]
    folds = corpus_cfg.get("exclude_eval_folds", "all")
    smiles = _without_eval_molecules(smiles, data_cfg, seeds, stats, built, folds)
    if not smiles:
        dropped = stats.get("corpus_eval_groups_dropped", 0)
        raise DataError(
            f"the corpus ({stats['corpus']}) holds no valid SMILES outside the data's val / test groups ({dropped} "
            "dropped): a corpus of the data's own molecules serves one fold (corpus.exclude_eval_folds=[<fold>])"
        )
    stats["n_molecules"] = len(smiles)
    return smiles, stats


def _moleculeace_corpus(which: str, data_cfg: DictConfig | None) -> tuple[list[str], dict[str, Any]]:
    """The ligands of MoleculeACE's kinase sets (``kinases``: in-domain for a kinase task) or of every set
    (``all``), but the data's own target set; minus the fixed held-out set forgetting is measured on."""
    if which not in MOLECULEACE_CORPORA:
        raise DataError(f"corpus.moleculeace={which} is not one of {sorted(MOLECULEACE_CORPORA)}")
    own = data_cfg.get("target") if data_cfg is not None and data_cfg.name == "chembl_kinase" else None
    files = _moleculeace_files()
    sets = [c for c in sorted(files) if MOLECULEACE_CORPORA[which](c) and c != own]
    raw = pd.concat([_read_moleculeace(files[c])["smiles"] for c in sets]).tolist()
    stats: dict[str, Any] = {"corpus": f"moleculeace={which}", "corpus_sets": sets, "corpus_rows": len(raw)}
    smiles = _canonical_unique(raw, stats)
    return _without_heldout(smiles, stats), stats


def _moses_corpus(n: int, seed: int) -> tuple[list[str], dict[str, Any]]:
    """A seeded sample of ``n`` molecules of MOSES's training set (drug-like ZINC molecules: a trunk that has read
    molecules, not reactions), canonical and unique; minus the fixed held-out set forgetting is measured on."""
    table = pd.read_csv(io.BytesIO(read_member(MOSES, MOSES_TRAIN)), compression="gzip")
    if n <= 0 or n > len(table):
        raise DataError(f"corpus.moses={n}: choose 1..{len(table):,} molecules of MOSES's training set")
    rows = np.sort(np.random.default_rng(seed).choice(len(table), n, replace=False))
    raw = table.iloc[rows, 0].astype(str).tolist()
    stats: dict[str, Any] = {"corpus": f"moses={n}", "corpus_seed": seed, "corpus_rows": len(raw)}
    smiles = _canonical_unique(raw, stats)
    return _without_heldout(smiles, stats), stats


def _without_heldout(smiles: list[str], stats: dict[str, Any]) -> list[str]:
    """``smiles`` minus the fixed held-out set forgetting is measured on (counted)."""
    heldout = set(heldout_smiles())
    stats["corpus_forgetting_heldout_dropped"] = sum(s in heldout for s in smiles)
    return [s for s in smiles if s not in heldout]


def corpus_groups(smiles: Iterable[str], split: str | None) -> list[str]:
    """The unit a split keeps whole, per corpus molecule: its scaffold under a scaffold split, else the molecule
    (a DEL's disynthons cannot be read off a SMILES: the molecule is the unit there)."""
    smiles = pd.Series(list(smiles), dtype=object)
    return (split_groups(smiles, split) if split in ("scaffold", "random") else smiles).tolist()


def _folds(data_cfg: DictConfig, which: Any) -> list[int]:
    if which in (None, "all"):
        return list(range(int(data_cfg.folds)))
    return [int(f) for f in ([which] if isinstance(which, int) else which)]


def _without_eval_molecules(
    smiles: list[str],
    data_cfg: DictConfig | None,
    seeds: list[int],
    stats: dict[str, Any],
    built: dict[int, pd.DataFrame],
    folds: Any = "all",
) -> list[str]:
    """``smiles`` minus every molecule whose group (scaffold under a scaffold split) is a val / test group of
    ``data_cfg`` in any of ``folds`` under any data_seed in ``seeds`` (counted). A trunk may serve every fold of a
    cross-validation, and the test folds tile the set: by default no corpus molecule shares a group with the data."""
    stats["corpus_exclude_eval_seeds"] = seeds
    if data_cfg is None or not seeds:
        if smiles:
            log.warning("corpus.exclude_eval_seeds is empty: nothing keeps val / test groups out of the corpus")
        return smiles
    held: set[str] = set()
    fold_list = _folds(data_cfg, folds)
    for s in seeds:
        for f in fold_list:
            cfg = OmegaConf.merge(data_cfg, {"fold": f})
            df = built[s] if s in built and int(data_cfg.fold) == f else build_dataset(cfg, s)[0]
            held.update(df.loc[df["split"] != "train", "group"].astype(str))
    groups = corpus_groups(smiles, data_cfg.get("split"))
    kept = [smi for smi, g in zip(smiles, groups) if g not in held and smi not in held]
    stats["corpus_exclude_eval_folds"] = fold_list
    stats["corpus_eval_groups_dropped"] = len(smiles) - len(kept)
    return kept


def write_corpus(smiles: list[str], model_dir: Path) -> None:
    """Keep the corpus beside the pre-trained model, so a run on that trunk can check it never saw its val / test."""
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / CORPUS_FILE).write_text("\n".join(smiles) + "\n")


def _corpus_file(name_or_path: str | None) -> Path | None:
    """A local trunk's ``pretrain_corpus.smi``; None for a hub id, a config model or a trunk without the file."""
    path = Path(name_or_path).expanduser() / CORPUS_FILE if name_or_path else None
    return path if path is not None and path.is_file() else None


def trunk_corpus(name_or_path: str | None) -> list[str]:
    """The molecules a local trunk has been trained on (its ``pretrain_corpus.smi``); [] for a hub id or a trunk
    without the file."""
    path = _corpus_file(name_or_path)
    return path.read_text().split() if path is not None else []


def carry_corpus(name_or_path: str | None, trained_on: Iterable[str], model_dir: Path) -> int:
    """Keep in a trained model's dir every molecule its trunk has seen: the corpus of the trunk it started from
    and ``trained_on`` (this run's training molecules). A later run on it as a trunk is then checked as a run on a
    pre-trained trunk is (``check_trunk_corpus``): fine-tuning on one split, then training on another seed's split,
    would put that split's val / test molecules in the trunk. Returns the number of molecules written."""
    smiles = list(dict.fromkeys([*trunk_corpus(name_or_path), *trained_on]))
    if smiles:  # a frozen hub trunk has seen none of them: no file
        write_corpus(smiles, model_dir)
    return len(smiles)


def check_trunk_corpus(name_or_path: str | None, df: pd.DataFrame, split: str | None = None) -> None:
    """Stop a run whose trunk was trained (``scripts/pretrain.py``, or a fine-tuning run) on any of its val / test
    molecules, or on a molecule of one of their groups (``split``: the run's data.split; scaffold: no corpus
    molecule may share a Murcko scaffold with a val / test molecule)."""
    path = _corpus_file(name_or_path)
    if path is None:
        return
    corpus = path.read_text().split()
    held = df.loc[df["split"] != "train"]
    seen = held["smiles"].isin(set(corpus))
    if split in ("scaffold", "random"):
        seen |= held["group"].astype(str).isin(set(corpus_groups(corpus, split)))
    if seen.any():
        raise DataError(
            f"{int(seen.sum())} val / test molecules of this run are, or share a {split or 'molecule'} group with, "
            f"molecules its trunk was trained on ({path}): pre-train again with this data, data_seed and fold in "
            "corpus.exclude_eval_seeds / exclude_eval_folds, or take a trunk fine-tuned on this run's own fold"
        )


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
