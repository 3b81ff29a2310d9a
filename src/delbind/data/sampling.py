"""Sampling negatives per split, so every split holds ``easy_per_hard`` easy negatives per hard one."""

from __future__ import annotations

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from delbind.data.splits import SPLITS, Folds, assign_splits
from delbind.errors import DataError


def keyed_hash(keys: np.ndarray, seed: int) -> np.ndarray:
    """A seeded 64-bit hash of each molecule ``key`` (pandas' splitmix-style hash): the same for the same molecule
    and seed, whatever the row it sits in."""
    salt = pd.util.hash_array(np.array([seed], dtype=np.uint64))[0]
    return pd.util.hash_array(pd.util.hash_array(keys.astype(np.uint64)) ^ salt)


def keyed_uniform(keys: np.ndarray, seed: int) -> np.ndarray:
    """A seeded draw in [0, 1) per molecule ``key`` (its ``keyed_hash`` scaled): a row-order-free coin per molecule."""
    return (keyed_hash(keys, seed) >> np.uint64(11)).astype(np.float64) / 2.0**53


def keyed_draw(candidates: np.ndarray, keys: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` of ``candidates`` (row numbers, sorted on return): the n smallest ``keyed_hash`` of their molecule
    ``keys``, so the draw depends on the molecules and the seed, never on where rows sit in the file."""
    mixed = keyed_hash(keys[candidates], seed)
    order = np.lexsort((keys[candidates], mixed))  # ties (one molecule in two rows) by key, still order-free
    return np.sort(candidates[order[: min(n, len(candidates))]])


def sample_easy(pool: pd.DataFrame, target: pd.DataFrame, cfg: DictConfig, seed: int, stats: dict) -> pd.DataFrame:
    """Split the easy pool by group (unless it has a split), then sample each split to ``easy_per_hard`` x hard."""
    if "split" not in pool:
        pool = pool.assign(split=assign_splits(pool["group"], Folds.from_cfg(cfg), seed))
    widen = (
        f"data.easy_max_similarity (now {cfg.easy_max_similarity})"
        if "easy_max_similarity" in cfg
        else f"data.easy_candidates_per_hard (now {cfg.easy_candidates_per_hard})"
    )
    parts = []
    for split in SPLITS:
        want = round(cfg.easy_per_hard * int(((target["split"] == split) & (target["kind"] == "hard")).sum()))
        have = pool[pool["split"] == split]
        if len(have) < want:
            raise DataError(
                f"only {len(have)} easy negatives for split {split}, {want} wanted: lower data.easy_per_hard "
                f"or raise {widen}"
            )
        parts.append(have.sample(n=want, random_state=seed))
    return pd.concat(parts)
