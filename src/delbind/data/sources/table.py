"""Bring your own data: a CSV or parquet table of SMILES and 0/1 labels, optionally with kind and split columns."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from delbind.data.chem import canonical_smiles
from delbind.data.sources.base import SOURCES, DataSource
from delbind.data.splits import SPLIT_NAMES, SPLITS, Folds, assign_splits, similarity_to_seen_binders, split_groups
from delbind.errors import DataError

log = logging.getLogger(__name__)


def read_table(path: str, key: str = "data.path", what: str = "SMILES and labels") -> pd.DataFrame:
    """A CSV / TSV (optionally gzipped) or parquet file, or a DataError naming the config ``key`` and why."""
    p = Path(str(path)).expanduser()
    if not p.is_file():
        raise DataError(f"{key}={path} is not a file: give the CSV or parquet table of {what}")
    name = p.name.lower().removesuffix(".gz")
    try:
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(p)
        if name.endswith((".csv", ".tsv", ".txt")):
            return pd.read_csv(p, sep="\t" if name.endswith(".tsv") else ",")
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise DataError(f"cannot read {key}={path} ({type(e).__name__}: {e}); it must be a CSV or parquet table") from e
    raise DataError(f"{key}={path}: unknown file type; use .csv, .tsv or .parquet")


def _rows(mask: pd.Series) -> str:
    """The first few offending row numbers (0-based data rows), for error messages."""
    idx = list(mask[mask].index[:5])
    return f"{int(mask.sum())} rows (first: {idx})"


def _labels(raw: pd.Series, column: str) -> pd.Series:
    values = pd.to_numeric(raw, errors="coerce")
    if values.isna().any():
        raise DataError(
            f"label column {column!r} has missing or non-numeric values in {_rows(values.isna())}: "
            "fill them with 0/1 or drop those rows"
        )
    bad = ~values.isin([0, 1])
    if bad.any():
        raise DataError(
            f"label column {column!r} must be 0/1, found {sorted(values[bad].unique().tolist())[:5]} in {_rows(bad)}: "
            "binarize it (1 = binder) first"
        )
    return values.astype(int)


def _kinds(df: pd.DataFrame, raw: pd.Series | None, cfg: DictConfig, st: dict[str, Any]) -> pd.Series:
    """binder for label 1; easy/hard from the kind column, else by ECFP4 Tanimoto to the nearest binder its split
    may read (its own split's or train's: ``splits.similarity_to_seen_binders``)."""
    kind = pd.Series("binder", index=df.index, dtype=object)
    neg = df["label"] == 0
    if raw is not None:
        given = raw.astype("string").str.strip().str.lower()
        bad = neg & ~given.isin(["easy", "hard"])
        if bad.any():
            raise DataError(
                f"kind column {cfg.kind_column!r} must be easy or hard on label-0 rows; not so in {_rows(bad)}"
            )
        kind[neg] = given[neg]
        st["kind_from"] = "column"
        return kind
    sim = similarity_to_seen_binders(df[neg], df[~neg])
    kind[neg] = np.where(sim >= cfg.hard_min_similarity, "hard", "easy")
    st["kind_from"] = f"nearest binder (own split or train) ECFP4 Tanimoto >= {cfg.hard_min_similarity}"
    return kind


def _balance(df: pd.DataFrame, cfg: DictConfig, seed: int, st: dict[str, Any]) -> pd.DataFrame:
    """Per split, subsample easy or hard negatives to ``easy_per_hard`` easy per hard (one prevalence for both)."""
    if cfg.easy_per_hard is None:
        return df
    keep = []
    for split in SPLITS:
        part = df[df["split"] == split]
        easy, hard = part[part["kind"] == "easy"], part[part["kind"] == "hard"]
        n_easy = min(len(easy), round(cfg.easy_per_hard * len(hard)))
        n_hard = min(len(hard), int(n_easy / cfg.easy_per_hard)) if cfg.easy_per_hard else len(hard)
        st[f"balance_{split}_easy_dropped"] = len(easy) - n_easy
        st[f"balance_{split}_hard_dropped"] = len(hard) - n_hard
        keep += [part[part["kind"] == "binder"], easy.sample(n=n_easy, random_state=seed)]
        keep.append(hard.sample(n=n_hard, random_state=seed))
    return pd.concat(keep)


def _dedupe(df: pd.DataFrame, st: dict[str, Any]) -> pd.DataFrame:
    """One row per molecule. With a split column, a molecule's first split (train, val, test) keeps it: a later
    split's copy is a leak, dropped and counted, and never drops a training row. Then, within that split, repeated
    rows merge when their labels agree and all go when they contradict each other."""
    if "split" in df:
        first = df["split"].map({s: i for i, s in enumerate(SPLITS)})
        later = first > first.groupby(df["smiles"]).transform("min")
        st["cross_split_duplicates_dropped"] = int(later.sum())
        df = df[~later]
    conflicting = df.groupby("smiles")["label"].transform("nunique") > 1
    st["conflicting_duplicates_dropped"] = int(conflicting.sum())
    deduped = df[~conflicting].drop_duplicates("smiles")
    st["duplicates_merged"] = int((~conflicting).sum()) - len(deduped)
    return deduped


def build_table(cfg: DictConfig, seed: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Binders and negatives from the user's table at ``data.path``, split by its column or ``data.split``."""
    if not cfg.path:
        raise DataError("data=table needs data.path=<your CSV or parquet file>")
    raw = read_table(cfg.path)
    wanted = [cfg.smiles_column, cfg.label_column, *(c for c in (cfg.kind_column, cfg.split_column) if c)]
    missing = [c for c in wanted if c not in raw.columns]
    if missing:
        raise DataError(
            f"{cfg.path} has no column {missing} (columns: {list(raw.columns)[:10]}): set data.smiles_column / "
            "data.label_column / data.kind_column / data.split_column to its names"
        )
    st: dict[str, Any] = {"path": str(cfg.path), "rows_read": len(raw)}
    raw = raw.reset_index(drop=True)
    df = pd.DataFrame(
        {"smiles": canonical_smiles(raw[cfg.smiles_column]), "label": _labels(raw[cfg.label_column], cfg.label_column)}
    )
    invalid = df["smiles"].isna()
    st["invalid_smiles_dropped"] = int(invalid.sum())
    if invalid.mean() > cfg.max_invalid_fraction:
        raise DataError(
            f"{_rows(invalid)} of {len(df)} in column {cfg.smiles_column!r} are not valid SMILES: is it the SMILES "
            f"column? (data.smiles_column; data.max_invalid_fraction={cfg.max_invalid_fraction})"
        )
    if invalid.any():
        log.warning("dropped %s with invalid SMILES", _rows(invalid))
    if cfg.split_column:
        df["split"] = raw[cfg.split_column].astype("string").str.strip().str.lower().map(SPLIT_NAMES)
        bad = df["split"].isna() & ~invalid
        if bad.any():
            raise DataError(f"split column {cfg.split_column!r} must be train/val/test; not so in {_rows(bad)}")
    kind_raw = raw[cfg.kind_column] if cfg.kind_column else None
    df = _dedupe(df[~invalid], st)
    if df["label"].nunique() < 2:
        only = "binders" if (df["label"] == 1).all() else "non-binders"
        raise DataError(f"{cfg.path} holds only {only} after cleaning ({len(df)} rows): a classifier needs both labels")
    if cfg.get("max_molecules"):  # debug subsets: stratified by label so both classes survive
        df = df.groupby("label", group_keys=False).sample(frac=min(1.0, cfg.max_molecules / len(df)), random_state=seed)
    if cfg.split_column:
        df["group"], st["cv"] = df["smiles"], "given"
    else:
        df["group"] = split_groups(df["smiles"], cfg.split)
        df["split"] = assign_splits(df["group"], Folds.from_cfg(cfg), seed, df["label"])
    df["kind"] = _kinds(df, None if kind_raw is None else kind_raw.loc[df.index], cfg, st)
    df = _balance(df, cfg, seed, st)
    return df[["smiles", "label", "kind", "split", "group"]], st


SOURCES.add("table", DataSource(build_table))
