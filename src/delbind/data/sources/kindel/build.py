"""The KinDEL dataset: read the screen, label every row, place rows in splits, sample, canonicalize, split.

Only the rows that end up in the dataset (binders + sampled negatives) go through RDKit; every rule on
the 1M-row screen is vectorized over whole columns."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from delbind.data.chem import canonical_smiles
from delbind.data.sampling import keyed_draw, sample_easy
from delbind.data.sources.kindel.files import kindel_file
from delbind.data.sources.kindel.labels import label_rules
from delbind.data.sources.kindel.screen import SYNTHONS, enrichment_of, molecule_keys, read_screen, rows_frame
from delbind.data.sources.kindel.splits import check_split_file, kindel_splits, synthon_partition
from delbind.data.splits import SPLITS, Folds, assign_splits, split_groups
from delbind.errors import DataError
from delbind.profiling import stage

log = logging.getLogger(__name__)

TARGETS = ("mapk14", "ddr1")


def _draw_seed(seed: int, what: str) -> int:
    """A seed of its own for each kind of draw, so the hard and easy draws of one seed are unrelated."""
    return int(np.random.SeedSequence([seed, *what.encode()]).generate_state(1)[0])


def _short(what: str, split: str | None, have: int, want: int, fix: str) -> DataError:
    """A shortfall of one kind of negative, overall or in one split, with the keys that change it."""
    where = f"split {split}" if split else "the screen"
    return DataError(f"only {have} {what} in {where}, {want} wanted: {fix}")


def choose_rows(
    kind: np.ndarray, split_col: np.ndarray | None, cfg: DictConfig, seed: int, st: dict[str, Any], keys: np.ndarray
) -> np.ndarray:
    """Row numbers that go on: binders (capped by ``max_molecules``), sampled hard negatives, easy candidates.

    With a split per row, hard negatives are drawn per split (``hard_per_binder`` x that split's binders) and
    easy candidates in proportion, so every split has the same binder prevalence. Every draw is keyed by the
    molecule (``keys``, screen.molecule_keys) and the seed: the same rows whatever the file's row order.
    """
    binders = np.flatnonzero(kind == "binder")
    if cfg.get("max_molecules"):  # debug subsets: keep the binder:hard ratio
        share = min(1.0, cfg.max_molecules / ((1 + cfg.hard_per_binder) * len(binders)))
        binders = keyed_draw(binders, keys, max(1, round(share * len(binders))), _draw_seed(seed, "binders"))
    chosen = [binders]
    for split in SPLITS if split_col is not None else (None,):
        here = np.ones(len(kind), dtype=bool) if split is None else split_col == split
        hard_pool = np.flatnonzero((kind == "hard") & here)
        want = round(cfg.hard_per_binder * here[binders].sum())
        if len(hard_pool) < want:
            fix = "lower data.hard_per_binder or raise data.neg_quantile (a larger negative pool)"
            raise _short("hard negatives", split, len(hard_pool), want, fix)
        hard = keyed_draw(hard_pool, keys, want, _draw_seed(seed, f"hard {split}"))
        easy_pool = np.flatnonzero((kind == "easy") & here)
        want = round(cfg.easy_per_hard * len(hard))
        if len(easy_pool) < want:
            fix = "lower data.easy_per_hard or data.easy_block_alpha (fewer blocks count as enriched)"
            raise _short("easy negatives", split, len(easy_pool), want, fix)
        n_easy = round(cfg.easy_candidates_per_hard * want)
        chosen += [hard, keyed_draw(easy_pool, keys, n_easy, _draw_seed(seed, f"easy {split}"))]
    st["binders_used"], st["hard_sampled"] = len(binders), int(sum(len(h) for h in chosen[1::2]))
    st["easy_candidates"] = int(sum(len(e) for e in chosen[2::2]))
    return np.concatenate(chosen)


def build_kindel(cfg: DictConfig, seed: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Binders, hard and easy negatives from the KinDEL screen of ``data.target``, split as configured."""
    if cfg.target not in TARGETS:
        raise DataError(f"data.target={cfg.target} is not a KinDEL target: use one of {list(TARGETS)}")
    st: dict[str, Any] = {"target": cfg.target}
    path = kindel_file(cfg, f"{cfg.target}_1M.parquet")
    with stage("read", log):
        screen = read_screen(path)
    st["rows_read"] = screen["n"]
    with stage("enrichment", log):
        enrichment = enrichment_of(screen)
    st["enrichment_from"] = "target_enrichment" if "target_enrichment" in screen else "counts"
    with stage("labels", log):
        kind = label_rules(screen, enrichment, cfg, st)
        split_col = kindel_splits(cfg, screen["n"])
        st["split_from"] = "computed" if split_col is None else f"kindel split{int(cfg.fold) + 1}"
        if split_col is not None:
            check_split_file(screen, split_col, kind, cfg, st)
        if split_col is None and cfg.split == "disynthon":
            # A disynthon split cannot tile the library into folds (a molecule holds three blocks): each fold is a
            # replicate split of its own seed, as KinDEL's five files are; comparisons treat them as overlapping.
            folds = Folds.from_cfg(cfg)
            split_col = synthon_partition(screen, folds.fractions, folds.fold_seed(seed), kind == "binder", st)
        st["cv"] = "kfold" if split_col is None else "replicate"
        if split_col is not None:  # placed per screen row, before sampling, so samples fill every split
            unplaced = (split_col == "") & (kind != "")
            st["disynthon_mixed_dropped"] = int(unplaced.sum())
            # the signal a split keeps: binders and labelled rows it can place (the rest are dropped)
            for what, rows in (("binders", kind == "binder"), ("labelled_rows", kind != "")):
                st[f"split_kept_fraction_{what}"] = float(1 - (unplaced & rows).sum() / max(int(rows.sum()), 1))
            kind = np.where(unplaced, "", kind)
        rows = choose_rows(kind, split_col, cfg, seed, st, molecule_keys(screen))
    with stage("smiles", log):
        df = rows_frame(screen, rows, kind, enrichment)
        df = _canonical(df, st)
    with stage("split", log):
        df = _split(df, split_col, cfg, seed, st)
    cols = ["smiles", "label", "kind", "split", "group", "molecule_hash", *SYNTHONS, "enrichment"]
    return df[cols], st


def _canonical(df: pd.DataFrame, st: dict[str, Any]) -> pd.DataFrame:
    """RDKit canonical SMILES for the chosen rows; invalid ones and repeated molecules dropped and counted."""
    df = df.assign(smiles=canonical_smiles(df["smiles"]))
    st["invalid_smiles_dropped"] = int(df["smiles"].isna().sum())
    df = df.dropna(subset=["smiles"])
    # One molecule reached by two synthon combinations keeps its highest-ranked role (binder first), then its
    # smallest molecule_hash; rows go on in molecule_hash order: nothing downstream sees the file's row order.
    order = df["kind"].map({"binder": 0, "hard": 1, "easy": 2})
    deduped = df.assign(_o=order).sort_values(["_o", "molecule_hash"]).drop_duplicates("smiles").drop(columns="_o")
    st["duplicate_smiles_dropped"] = len(df) - len(deduped)
    return deduped.sort_values("molecule_hash", kind="stable")


def _split(df: pd.DataFrame, split_col: np.ndarray | None, cfg: DictConfig, seed: int, st: dict) -> pd.DataFrame:
    """Split binders + hard negatives, then sample easy negatives per split (``easy_per_hard`` x hard)."""
    df = df.assign(label=(df["kind"] == "binder").astype(int))
    target, pool = df[df["kind"] != "easy"].copy(), df[df["kind"] == "easy"].copy()
    if split_col is not None:  # split per screen row (KinDEL's file or the synthon partition)
        for part in (target, pool):
            part["split"], part["group"] = split_col[part["row"]], part["molecule_hash"]
    else:
        target["group"] = split_groups(target["smiles"], cfg.split)
        target["split"] = assign_splits(target["group"], Folds.from_cfg(cfg), seed, target["label"])
        pool["group"] = split_groups(pool["smiles"], cfg.split)
        shared = pool["group"].isin(target["group"])  # scaffold: no easy negative shares one with the target set
        st["easy_shared_group_dropped"] = int(shared.sum())
        pool = pool[~shared]
    for split in SPLITS:
        st[f"split_{split}_rows"] = int((target["split"] == split).sum())
    return pd.concat([target, sample_easy(pool, target, cfg, seed, st)], ignore_index=True)
