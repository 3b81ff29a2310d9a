"""Every screen row's split, placed before any label exists: KinDEL's own split file, a computed disynthon split
that no disynthon crosses, or computed random folds. None reads a count, so no label can move a row between splits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from omegaconf import DictConfig
from scipy import optimize

from delbind.data.sampling import keyed_uniform
from delbind.data.sources.kindel.files import kindel_file
from delbind.data.sources.kindel.labels import pair_keys
from delbind.data.sources.kindel.screen import SYNTHONS, molecule_keys
from delbind.data.splits import SPLIT_NAMES, SPLITS, Folds
from delbind.errors import DataError

STRATUM = 20  # blocks per stratum of similar row count, each dealt to the parts in proportion


def _deal_blocks(weight: np.ndarray, shares: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Part (0, 1, 2) per building block, dealt within strata of ``STRATUM`` blocks of similar ``weight``.

    Each stratum gets the parts in proportion to ``shares`` (largest remainder), in seeded random order, so
    large blocks (many rows) spread over the parts instead of landing in one by chance.
    """
    exact = STRATUM * shares
    counts = np.floor(exact).astype(int)
    counts[np.argsort(counts - exact)[: STRATUM - counts.sum()]] += 1
    template = np.repeat(np.arange(3), counts)
    labels = np.concatenate([rng.permutation(template) for _ in range(-(-len(weight) // STRATUM))])
    order = np.lexsort((rng.random(len(weight)), -weight))  # most rows first; ties in seeded random order
    parts = np.empty(len(weight), dtype=int)
    parts[order] = labels[: len(weight)]
    return parts


def placed_fractions(shares: Sequence[float]) -> np.ndarray:
    """Shares of the screen's rows that train, val and test hold when each position's blocks are dealt to the
    parts in ``shares`` (train, val, test): pure val / test rows hold three blocks of that part; a row trains when
    no two of its blocks share the val or the test part (pure train, or one train block and at most one of each).
    """
    t, v, s = shares
    return np.array([t**3 + 3 * t**2 * (v + s) + 6 * t * v * s, v**3, s**3])


def part_shares(fractions: Sequence[float]) -> np.ndarray:
    """Block shares per part (train, val, test) whose placed rows split as ``fractions`` (solved with scipy):
    mixed rows train, so equal cube roots of the fractions would leave val and test far under their share."""
    want = np.asarray(fractions, dtype=float) / sum(fractions)

    def gap(x: np.ndarray) -> np.ndarray:
        placed = placed_fractions((1 - x[0] - x[1], x[0], x[1]))
        return placed[1:] / placed.sum() - want[1:]

    solution = optimize.root(gap, np.cbrt(want[1:]) / np.cbrt(want).sum())
    if not solution.success:  # pragma: no cover - smooth, monotone system; kept as a guard
        raise DataError(f"no block shares give the split fractions {list(fractions)}: {solution.message}")
    return np.array([1 - solution.x.sum(), *solution.x])


def synthon_partition(
    screen: dict[str, Any], fractions: Sequence[float], seed: int, st: dict[str, Any] | None = None
) -> np.ndarray:
    """A disynthon split per screen row: ``train``/``val``/``test``, or ``""`` where the row cannot be placed.

    Each position's synthons are dealt (seeded, stratified by how many rows hold them: label-free, so no count
    of a val/test row can move a block) into three parts; a molecule goes to a split when all three of its
    synthons are in that split's part, so every disynthon it holds belongs to that split alone. A mixed molecule
    (blocks in two or three parts) trains when no two of its blocks share the val or the test part: none of its
    disynthons can then be a val or test one (``disynthon_mixed_to_train`` in ``st``); the other mixed molecules
    are left out. Part sizes come from ``part_shares``, so the placed rows split as ``fractions`` asks.
    """
    rng = np.random.default_rng(seed)
    shares = part_shares(fractions)
    parts = []
    for col in SYNTHONS:
        code = screen[col]
        weight = np.bincount(code[code >= 0], minlength=int(code.max(initial=0)) + 1)
        parts.append(_deal_blocks(weight, shares, rng)[code])
    same = (parts[0] == parts[1]) & (parts[1] == parts[2])
    split = np.where(same, np.array(SPLITS, dtype=object)[parts[0]], "")
    train = SPLITS.index("train")
    # a held-out disynthon: two blocks of one molecule dealt to the same val or test part (whether or not a val /
    # test row of this screen holds that pair: the rule is the partition's, not the sample's)
    held_pair = np.zeros(len(split), dtype=bool)
    for i, j in ((0, 1), (0, 2), (1, 2)):
        held_pair |= (parts[i] == parts[j]) & (parts[i] != train)
    to_train = ~same & ~held_pair
    split[to_train] = "train"
    if st is not None:  # pure rows: the placed rows of the stricter rule that keeps only all-in-one-part molecules
        st["disynthon_pure_rows"], st["disynthon_mixed_to_train"] = int(same.sum()), int(to_train.sum())
    return split


def molecule_folds(keys: np.ndarray, folds: Folds, seed: int) -> np.ndarray:
    """A random split per screen row for fold ``folds.fold``: each molecule's fold is a seeded coin of its key
    (``sampling.keyed_uniform``), so a multirun over ``data.fold`` tests every molecule once per ``data_seed``;
    val is a second coin among the other folds' molecules, sized to ``val_fraction`` of the screen."""
    fold = np.minimum((keyed_uniform(keys, seed) * folds.folds).astype(int), folds.folds - 1)
    val = keyed_uniform(keys, folds.fold_seed(seed)) < folds.val_fraction / (1 - 1 / folds.folds)
    return np.where(fold == folds.fold, "test", np.where(val, "val", "train")).astype(object)


def place_rows(screen: dict[str, Any], cfg: DictConfig, seed: int, st: dict[str, Any]) -> np.ndarray:
    """Every row's split (``""``: left out), before labels: KinDEL's file, else computed from the building blocks."""
    if cfg.split not in ("random", "disynthon"):
        raise DataError(
            f"data.split={cfg.split!r} is not offered for KinDEL: use disynthon (the DEL unit, KinDEL's benchmark "
            "split) or random. A scaffold split would place every row before labelling, which needs RDKit on all "
            "1M molecules (~400 us each here, ~7 min)"
        )
    split_col = kindel_splits(cfg, screen["n"])
    st["split_from"] = "computed" if split_col is None else f"kindel split{int(cfg.fold) + 1}"
    st["cv"] = "replicate"  # KinDEL's five files and a computed disynthon split are replicate splits
    if split_col is not None:
        return split_col
    folds = Folds.from_cfg(cfg)
    if cfg.split == "disynthon":
        # A disynthon split cannot tile the library into folds (a molecule holds three blocks): each fold is a
        # replicate split of its own seed, as KinDEL's five files are; comparisons treat them as overlapping.
        return synthon_partition(screen, folds.fractions, folds.fold_seed(seed), st)
    st["cv"] = "kfold"
    return molecule_folds(molecule_keys(screen), folds, seed)


def shared_disynthons(screen: dict[str, Any], split_col: np.ndarray, rows: np.ndarray) -> int:
    """How many disynthons (a+b, a+c, b+c block pairs) of the ``rows`` mask occur in more than one split."""
    placed = rows & (split_col != "")
    codes = pd.Series(split_col[placed]).astype("category").cat.codes.to_numpy()
    shared = 0
    for keys in pair_keys(*(screen[col][placed] for col in SYNTHONS)):
        per_key = pd.DataFrame({"key": keys, "split": codes}).drop_duplicates()
        shared += int((per_key["key"].value_counts() > 1).sum())
    return shared


def check_split_file(screen: dict[str, Any], split_col: np.ndarray, kind: np.ndarray, cfg: DictConfig,
                     st: dict[str, Any]) -> None:  # fmt: skip
    """KinDEL's split file is counted, not trusted: disynthons its splits share among the labelled rows go into
    ``split_file_shared_disynthons``, and a disynthon split sharing any is refused unless
    ``data.allow_split_overlap``."""
    shared = shared_disynthons(screen, split_col, kind != "")
    st["split_file_shared_disynthons"] = shared
    if shared and cfg.split == "disynthon" and not cfg.get("allow_split_overlap", False):
        raise DataError(
            f"KinDEL's disynthon split file (split{int(cfg.fold) + 1}) puts {shared:,} disynthons of the labelled "
            "rows in more than one split, so test molecules share building-block pairs with training ones: "
            "data.use_kindel_splits=false computes a split that shares none; data.allow_split_overlap=true "
            "accepts it knowingly"
        )


def kindel_splits(cfg: DictConfig, n_rows: int) -> np.ndarray | None:
    """KinDEL's own split (``split<index>`` of ``splits/{target}_{split}.parquet``) per screen row, if present."""
    if cfg.split not in ("random", "disynthon") or not cfg.use_kindel_splits:
        return None
    path = kindel_file(cfg, f"splits/{cfg.target}_{cfg.split}.parquet", required=False)
    if path is None:
        return None
    col = f"split{int(cfg.fold) + 1}"  # data.fold picks one of KinDEL's replicate splits (fold 0 = split1)
    if col not in pq.read_schema(path).names:
        raise DataError(f"{path} has no column {col}: with KinDEL's split files data.fold must be 0..4")
    values = pd.read_parquet(path, columns=[col])[col]
    if len(values) != n_rows:
        raise DataError(
            f"{path} has {len(values)} rows but the screen file has {n_rows}: use matching files, or "
            "data.use_kindel_splits=false to compute the split"
        )
    mapped = values.map(SPLIT_NAMES)
    if mapped.isna().any():
        raise DataError(f"{path} column {col} holds {sorted(set(values[mapped.isna()]))}; expected train/valid/test")
    return mapped.to_numpy()
