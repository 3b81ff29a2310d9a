"""Splits: whole groups (molecule, scaffold, disynthon unit) dealt to train / val / test, stratified by label."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from delbind.data.chem import scaffold
from delbind.errors import DataError

SPLITS = ("train", "val", "test")
# What split columns may hold (a table's split column, KinDEL's split files), mapped to SPLITS.
SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


def assign_splits(
    groups: pd.Series, fractions: Sequence[float], seed: int, labels: pd.Series | None = None
) -> pd.Series:
    """Assign whole groups to train/val/test so no group is in two splits.

    With ``labels``, groups are dealt within two strata (mostly binders / mostly not), so every split
    keeps about the overall binder fraction and AU-PRC means the same across splits and seeds.
    """
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-6:
        raise DataError(f"data.split_fractions must be three numbers summing to 1, got {list(fractions)}")
    if labels is None:
        return _deal_groups(groups, fractions, seed)
    mostly_binders = groups.map(labels.groupby(groups).mean() >= 0.5)
    strata = [groups[mostly_binders == stratum] for stratum in (False, True)]
    return pd.concat([_deal_groups(part, fractions, seed) for part in strata if len(part)]).reindex(groups.index)


def _deal_groups(groups: pd.Series, fractions: Sequence[float], seed: int) -> pd.Series:
    """Groups too large to fit val or test go to train first; the rest are placed in a seeded random
    order (as chemprop's balanced scaffold split), filling train, then val, then test."""
    n = len(groups)
    sizes = groups.value_counts(sort=False)
    big = sizes[sizes > n * min(fractions[1:]) / 2].sort_values(ascending=False, kind="stable")
    small = sizes.drop(big.index)
    rng = np.random.default_rng(seed)
    order = list(big.index) + list(small.index[rng.permutation(len(small))])
    cap = {"train": fractions[0] * n, "val": fractions[1] * n}
    filled = {"train": 0, "val": 0}
    assigned = {}
    for g in order:
        split = next((s for s in ("train", "val") if filled[s] + sizes[g] <= cap[s]), "test")
        filled[split] = filled.get(split, 0) + sizes[g]
        assigned[g] = split
    return groups.map(assigned)


def split_groups(smiles: pd.Series, how: str) -> pd.Series:
    """The unit kept whole by ``data.split``: a scaffold, or the molecule itself."""
    if how == "scaffold":
        return smiles.map(scaffold)
    if how == "random":
        return smiles.copy()
    raise DataError(f"data.split={how!r} is not available for this data source: use scaffold or random")
