"""chembl_kinase (the offline default): binders and hard negatives measured against one kinase in MoleculeACE,
easy negatives from the ligands of its non-kinase targets."""

from __future__ import annotations

import functools
import io
import re
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from delbind.assets import MOLECULEACE, list_members, read_member
from delbind.data.chem import canonical_smiles
from delbind.data.sampling import sample_easy
from delbind.data.sources.base import SOURCES, DataSource
from delbind.data.splits import Folds, assign_splits, similarity_to_seen_binders, split_groups
from delbind.errors import DataError

MOLECULEACE_DIR = "MoleculeACE/Data/benchmark_data/"
# Kinase targets among the MoleculeACE sets; every other set is a non-kinase target.
KINASE_TARGETS = frozenset(
    {"CHEMBL1862", "CHEMBL2147", "CHEMBL262", "CHEMBL2835", "CHEMBL2971", "CHEMBL4005", "CHEMBL4203"}
)


def geometric_mean(values: pd.Series) -> float:
    """Geometric mean, rounded to 10 significant digits so 100 nM stays exactly 100 nM at a threshold."""
    return float(f"{np.exp(np.log(values.to_numpy(dtype=float)).mean()):.10g}")


def _read_moleculeace(target_file: str) -> pd.DataFrame:
    """One MoleculeACE set (a copy: callers may change it). Read once per process: the easy pool and the held-out
    set both read the non-kinase sets, and every job of an in-process multirun reads them again."""
    return _read_moleculeace_once(target_file).copy()


@functools.cache
def _read_moleculeace_once(target_file: str) -> pd.DataFrame:
    df = pd.read_csv(io.BytesIO(read_member(MOLECULEACE, MOLECULEACE_DIR + target_file)))
    return df.rename(columns={"exp_mean [nM]": "value_nm"})[["smiles", "value_nm"]]


def _canonicalize_frame(df: pd.DataFrame, stats: dict[str, int], prefix: str) -> pd.DataFrame:
    df = df.assign(smiles=canonical_smiles(df["smiles"]))
    stats[f"{prefix}_invalid_smiles_dropped"] = int(df["smiles"].isna().sum())
    return df.dropna(subset=["smiles"])


def _moleculeace_files() -> dict[str, str]:
    """CHEMBL id -> file name for every benchmark set in the wheel."""
    files = {}
    for member in list_members(MOLECULEACE, MOLECULEACE_DIR):
        m = re.fullmatch(r".*/(CHEMBL\d+)_(Ki|EC50)\.csv", member)
        if m:
            files.setdefault(m.group(1), member.rsplit("/", 1)[1])
    return files


def build_chembl_kinase(cfg: DictConfig, seed: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Binders and hard negatives measured against one kinase; easy negatives from non-kinase sets."""
    files = _moleculeace_files()
    if cfg.target not in files:
        raise DataError(f"data.target={cfg.target} is not in MoleculeACE; kinase targets: {sorted(KINASE_TARGETS)}")
    stats: dict[str, Any] = {"target": cfg.target, "target_file": files[cfg.target]}
    raw = _read_moleculeace(files[cfg.target])
    stats["target_rows"] = len(raw)
    raw = _canonicalize_frame(raw, stats, "target")
    # Repeated measurements of one molecule: geometric mean of the values.
    target = raw.groupby("smiles", as_index=False)["value_nm"].agg(geometric_mean)
    stats["target_duplicates_merged"] = len(raw) - len(target)
    binder = target["value_nm"] <= cfg.binder_max_nm
    hard = target["value_nm"] >= cfg.hard_min_nm
    stats["target_between_thresholds_dropped"] = int((~binder & ~hard).sum())
    target = target[binder | hard].assign(label=binder[binder | hard].astype(int))
    target["kind"] = np.where(target["label"] == 1, "binder", "hard")
    if cfg.get("max_molecules"):  # debug subsets: stratified by label so both classes survive
        frac = min(1.0, cfg.max_molecules / len(target))
        target = target.groupby("label", group_keys=False).sample(frac=frac, random_state=seed)
    target["group"] = split_groups(target["smiles"], cfg.split)
    target["split"] = assign_splits(target["group"], Folds.from_cfg(cfg), seed, target["label"])

    easy = _easy_pool(files, target, cfg, seed, stats)
    df = pd.concat([target, sample_easy(easy, target, cfg, seed, stats)], ignore_index=True)
    return df[["smiles", "label", "kind", "split", "group", "value_nm"]], stats


def _easy_pool(files: dict[str, str], target: pd.DataFrame, cfg: DictConfig, seed: int, stats: dict) -> pd.DataFrame:
    """Ligands of non-kinase targets sharing no scaffold group with the target set, dealt to splits by group, each
    unlike every binder its split may read (its own split's and train's: no val/test binder moves a training row).

    Only a seeded random subset of ``easy_candidates_per_hard`` x (hard negatives) source rows goes
    through RDKit: the sets hold ~40k ligands and a few hundred are needed.
    """
    others = [f for chembl, f in sorted(files.items()) if chembl not in KINASE_TARGETS]
    pool = pd.concat([_read_moleculeace(f) for f in others], ignore_index=True)
    stats["easy_source_files"] = len(others)
    stats["easy_source_rows"] = len(pool)
    n_candidates = int(cfg.easy_candidates_per_hard * cfg.easy_per_hard * (target["kind"] == "hard").sum())
    pool = pool.sample(n=min(len(pool), max(n_candidates, 1)), random_state=seed)
    stats["easy_candidates"] = len(pool)
    pool = _canonicalize_frame(pool, stats, "easy").drop_duplicates("smiles")
    pool = pool[~pool["smiles"].isin(target["smiles"])].copy()
    pool["group"] = split_groups(pool["smiles"], cfg.split)
    overlap = pool["group"].isin(target["group"])
    stats["easy_shared_group_dropped"] = int(overlap.sum())
    pool = pool[~overlap]
    pool = pool.assign(split=assign_splits(pool["group"], Folds.from_cfg(cfg), seed))  # label-free: by group only
    sim = similarity_to_seen_binders(pool, target[target["label"] == 1])
    stats["easy_similar_to_binder_dropped"] = int((sim >= cfg.easy_max_similarity).sum())
    pool = pool[sim < cfg.easy_max_similarity]
    stats["easy_pool"] = len(pool)
    return pool.assign(label=0, kind="easy", value_nm=np.nan)  # never measured against the target


SOURCES.add("chembl_kinase", DataSource(build_chembl_kinase))
