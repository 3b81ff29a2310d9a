"""Cross-validation folds: whole groups (molecule, scaffold, disynthon unit) dealt to folds, stratified by label.

Fold ``fold`` of ``folds`` is test; val is drawn group-disjoint from the other folds; the rest trains. A multirun
over ``data.fold`` scores every molecule once as test per ``data_seed`` (one repeat of k-fold cross-validation).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from omegaconf import DictConfig
from sklearn.model_selection import StratifiedGroupKFold

from delbind.data.chem import max_tanimoto, scaffold
from delbind.errors import ConfigError, DataError

SPLITS = ("train", "val", "test")
# What split columns may hold (a table's split column, KinDEL's split files), mapped to SPLITS.
SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


@dataclass(frozen=True)
class Folds:
    """``folds`` folds, ``fold`` of them test, ``val_fraction`` of the whole set as val (from the other folds)."""

    folds: int
    fold: int
    val_fraction: float

    @classmethod
    def from_cfg(cls, cfg: DictConfig) -> Folds:
        folds, fold, val = int(cfg.folds), int(cfg.fold), float(cfg.val_fraction)
        if folds < 2:
            raise ConfigError(f"data.folds={folds}: cross-validation needs at least 2 folds (5 is the default)")
        if not 0 <= fold < folds:
            raise ConfigError(f"data.fold={fold} is not a fold of data.folds={folds}: use 0..{folds - 1}")
        if not 0 < val < 1 - 1 / folds:
            raise ConfigError(f"data.val_fraction={val} must be above 0 and below the training folds' {1 - 1 / folds}")
        return cls(folds, fold, val)

    @property
    def fractions(self) -> tuple[float, float, float]:
        """train / val / test shares of the set (test = one fold)."""
        test = 1 / self.folds
        return (1 - test - self.val_fraction, self.val_fraction, test)

    def fold_seed(self, seed: int) -> int:
        """A seed of this fold's own, from the data seed (val's inner deal; a replicate split per fold)."""
        return int(np.random.default_rng([seed, self.fold]).integers(2**31))

    @property
    def inner_folds(self) -> int:
        """Val is one of this many group folds of the training folds (so it is ``val_fraction`` of the set)."""
        return max(2, round((1 - 1 / self.folds) / self.val_fraction))


def _deal(groups: pd.Series, strata: np.ndarray, n_splits: int, seed: int) -> np.ndarray:
    """Fold number per row: groups kept whole, folds balanced in size and stratum (scikit-learn's
    StratifiedGroupKFold). Its order depends on the sorted group names and the seed, never on row order."""
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed % 2**32)
    out = np.full(len(groups), -1)
    with warnings.catch_warnings():  # "least populated class has fewer members than n_splits": checked by callers
        warnings.simplefilter("ignore", UserWarning)
        for k, (_, idx) in enumerate(cv.split(np.zeros(len(groups)), strata, groups.to_numpy())):
            out[idx] = k
    return out


def assign_splits(groups: pd.Series, folds: Folds, seed: int, labels: pd.Series | None = None) -> pd.Series:
    """train / val / test per row for fold ``folds.fold``; no group is in two splits.

    With ``labels``, groups are dealt within two strata (mostly binders / mostly not), so every fold keeps about
    the overall binder fraction and AU-PRC means the same across folds. Val is one inner group fold of the
    non-test folds, dealt with a seed of its own per outer fold.
    """
    if groups.nunique() < folds.folds:
        raise DataError(f"{groups.nunique()} groups cannot fill data.folds={folds.folds} folds: use fewer folds")
    if labels is None:
        strata = np.zeros(len(groups), dtype=int)
    else:
        strata = groups.map(labels.groupby(groups).mean() >= 0.5).to_numpy(dtype=int)
    outer = _deal(groups, strata, folds.folds, seed)
    split = np.where(outer == folds.fold, "test", "train").astype(object)
    # Val candidates: groups of the training folds small enough that one cannot tip val's binder fraction (a
    # quarter of val); larger ones always train.
    sizes = groups.map(groups.value_counts()).to_numpy()
    rest = np.flatnonzero((outer != folds.fold) & (sizes <= folds.val_fraction * len(groups) / 4))
    inner = _deal(groups.iloc[rest], strata[rest], folds.inner_folds, folds.fold_seed(seed))
    split[rest[inner == 0]] = "val"
    return pd.Series(split, index=groups.index)


def split_groups(smiles: pd.Series, how: str) -> pd.Series:
    """The unit kept whole by ``data.split``: a scaffold, or the molecule itself."""
    if how == "scaffold":
        return smiles.map(scaffold)
    if how == "random":
        return smiles.copy()
    raise DataError(f"data.split={how!r} is not available for this data source: use scaffold or random")


def similarity_to_seen_binders(rows: pd.DataFrame, binders: pd.DataFrame) -> np.ndarray:
    """Per row (``smiles``, ``split``), its highest ECFP4 Tanimoto to the binders its split may read: its own
    split's and train's. A training row reads training binders only, so no val/test label moves a training kind;
    a val/test row also reads train, known before it. 0 where a split reads no binder."""
    sim = np.zeros(len(rows))
    for split in SPLITS:
        here = (rows["split"] == split).to_numpy()
        seen = binders.loc[binders["split"].isin({"train", split}), "smiles"].tolist()
        if here.any() and seen:
            sim[here] = max_tanimoto(rows.loc[here, "smiles"].tolist(), seen)
    return sim
