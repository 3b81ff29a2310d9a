"""The KinDEL dataset: read the screen, place every row in a split, label within splits, sample, canonicalize.

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
from delbind.data.sources.kindel.splits import check_split_file, place_rows
from delbind.data.splits import SPLITS
from delbind.errors import DataError
from delbind.profiling import stage

log = logging.getLogger(__name__)

TARGETS = ("mapk14", "ddr1")


def _draw_seed(seed: int, what: str) -> int:
    """A seed of its own for each kind of draw, so the hard and easy draws of one seed are unrelated."""
    return int(np.random.SeedSequence([seed, *what.encode()]).generate_state(1)[0])


def _short(what: str, split: str, have: int, want: int, fix: str) -> DataError:
    """A shortfall of one kind of negative in one split, with the keys that change it."""
    return DataError(f"only {have} {what} in split {split}, {want} wanted: {fix}")


def choose_rows(
    kind: np.ndarray, split_col: np.ndarray, cfg: DictConfig, seed: int, st: dict[str, Any], keys: np.ndarray
) -> np.ndarray:
    """Row numbers that go on, per split: binders, sampled hard negatives, easy candidates.

    Hard negatives are drawn per split (``hard_per_binder`` x that split's binders) and easy candidates in
    proportion, so every split has the same binder prevalence; ``max_molecules`` caps each split's binders by its
    share of the screen's rows (a label-free share). Every draw is keyed by the molecule (``keys``,
    screen.molecule_keys) and the seed: the same rows whatever the file's row order.
    """
    chosen, placed = [], max(int((split_col != "").sum()), 1)
    for split in SPLITS:
        here = split_col == split
        binders = np.flatnonzero((kind == "binder") & here)
        if cfg.get("max_molecules"):  # debug subsets: keep the binder:hard ratio
            want = max(1, round(cfg.max_molecules * here.sum() / placed / (1 + cfg.hard_per_binder)))
            binders = keyed_draw(binders, keys, want, _draw_seed(seed, f"binders {split}"))
        hard_pool = np.flatnonzero((kind == "hard") & here)
        want = round(cfg.hard_per_binder * len(binders))
        if len(hard_pool) < want:
            fix = "lower data.hard_per_binder or raise data.neg_max_fold (a larger negative pool)"
            raise _short("hard negatives", split, len(hard_pool), want, fix)
        hard = keyed_draw(hard_pool, keys, want, _draw_seed(seed, f"hard {split}"))
        easy_pool = np.flatnonzero((kind == "easy") & here)
        want = round(cfg.easy_per_hard * len(hard))
        if len(easy_pool) < want:
            fix = "lower data.easy_per_hard or data.easy_block_alpha (fewer blocks count as enriched)"
            raise _short("easy negatives", split, len(easy_pool), want, fix)
        n_easy = round(cfg.easy_candidates_per_hard * want)
        chosen += [binders, hard, keyed_draw(easy_pool, keys, n_easy, _draw_seed(seed, f"easy {split}"))]
    st["binders_used"], st["hard_sampled"] = (int(sum(len(c) for c in chosen[i::3])) for i in (0, 1))
    st["easy_candidates"] = int(sum(len(e) for e in chosen[2::3]))
    return np.concatenate(chosen)


def build_kindel(cfg: DictConfig, seed: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Binders, hard and easy negatives from the KinDEL screen of ``data.target``, in splits placed before labels."""
    if cfg.target not in TARGETS:
        raise DataError(f"data.target={cfg.target} is not a KinDEL target: use one of {list(TARGETS)}")
    st: dict[str, Any] = {"target": cfg.target}
    path = kindel_file(cfg, f"{cfg.target}_1M.parquet")
    with stage("read", log):
        screen = read_screen(path)
    st["rows_read"] = screen["n"]
    with stage("splits", log):
        split_col = place_rows(screen, cfg, seed, st)
    with stage("enrichment", log):
        enrichment = enrichment_of(screen)
    st["enrichment_from"] = "target_enrichment" if "target_enrichment" in screen else "counts"
    with stage("labels", log):
        kind = label_rules(screen, enrichment, split_col, cfg, st)
        if st["split_from"] != "computed":
            check_split_file(screen, split_col, kind, cfg, st)
        rows = choose_rows(kind, split_col, cfg, seed, st, molecule_keys(screen))
    with stage("smiles", log):
        df = rows_frame(screen, rows, kind, enrichment).assign(split=split_col[rows])
        df = _canonical(df, st)
    with stage("split", log):
        df = _split(df, cfg, seed, st)
    cols = ["smiles", "label", "kind", "split", "group", "molecule_hash", *SYNTHONS, "enrichment"]
    return df[cols], st


def _canonical(df: pd.DataFrame, st: dict[str, Any]) -> pd.DataFrame:
    """RDKit canonical SMILES for the chosen rows; invalid ones and repeated molecules dropped and counted."""
    df = df.assign(smiles=canonical_smiles(df["smiles"]))
    st["invalid_smiles_dropped"] = int(df["smiles"].isna().sum())
    df = df.dropna(subset=["smiles"])
    # One molecule reached by two synthon combinations keeps its training row first (a val/test copy of a training
    # molecule is a leak, and which training rows stay must not depend on val/test labels), then its highest-ranked
    # role (binder first), then its smallest molecule_hash; rows go on in molecule_hash order: nothing downstream
    # sees the file's row order.
    keys = df.assign(_s=df["split"].map({s: i for i, s in enumerate(SPLITS)}),
                     _o=df["kind"].map({"binder": 0, "hard": 1, "easy": 2}))  # fmt: skip
    deduped = keys.sort_values(["_s", "_o", "molecule_hash"]).drop_duplicates("smiles").drop(columns=["_s", "_o"])
    st["duplicate_smiles_dropped"] = len(df) - len(deduped)
    return deduped.sort_values("molecule_hash", kind="stable")


def _split(df: pd.DataFrame, cfg: DictConfig, seed: int, st: dict) -> pd.DataFrame:
    """Binders + hard negatives as drawn, then easy negatives sampled per split (``easy_per_hard`` x hard)."""
    df = df.assign(label=(df["kind"] == "binder").astype(int), group=df["molecule_hash"])
    target, pool = df[df["kind"] != "easy"], df[df["kind"] == "easy"]
    for split in SPLITS:
        st[f"split_{split}_rows"] = int((target["split"] == split).sum())
    return pd.concat([target, sample_easy(pool, target, cfg, seed, st)], ignore_index=True)
