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
from delbind.data.sources.kindel.evidence import fold_above
from delbind.data.sources.kindel.files import kindel_file
from delbind.data.sources.kindel.labels import Labels, label_rules
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


def _would_supply(labels: Labels, split_col: np.ndarray, wanted: dict[str, dict[str, int]]) -> str:
    """The data.neg_max_fold at which every split holds the negatives ``wanted`` of each kind (hard, and the easy
    ones they bring), computed from the rows' fold bounds (a larger pool: weaker evidence), or why none does."""
    needed = 0.0
    for kind, per_split in wanted.items():
        candidate = labels.hard_candidate if kind == "hard" else labels.easy_candidate
        for split, want in per_split.items():
            bounds = np.sort(labels.upper[candidate & (split_col == split)])
            if not want:
                continue
            if len(bounds) < want or not np.isfinite(bounds[want - 1]):
                found = int(np.isfinite(bounds).sum())
                return f"no data.neg_max_fold supplies split {split} ({found} {kind} candidates with any evidence)"
            needed = max(needed, float(bounds[want - 1]))
    return f"data.neg_max_fold={fold_above(needed):g} (weaker evidence of non-binding) would supply every split"


def _shortfall(
    labels: Labels, split_col: np.ndarray, kind: str, have: dict[str, int], wanted: dict[str, dict[str, int]],
    per: dict[str, int],
) -> DataError:  # fmt: skip
    """The first split short of ``kind`` negatives, with the settings computed to work on this screen: the ratio every
    split can meet (``per``: what the ratio multiplies, binders for hard, hard for easy) and the neg_max_fold that
    supplies every kind ``wanted``."""
    split = next(s for s in wanted[kind] if have[s] < wanted[kind][s])
    key = "data.hard_per_binder" if kind == "hard" else "data.easy_per_hard"
    ratio = min(np.floor(100 * have[s] / per[s]) / 100 for s in per if per[s])
    also = " (or lower data.easy_block_alpha: fewer blocks count as enriched)" if kind == "easy" else ""
    return DataError(
        f"only {have[split]} {kind} negatives in split {split}, {wanted[kind][split]} wanted: on this screen "
        f"{key}={ratio:g} or {_would_supply(labels, split_col, wanted)}{also}"
    )


def choose_rows(
    labels: Labels, split_col: np.ndarray, cfg: DictConfig, seed: int, st: dict[str, Any], keys: np.ndarray
) -> np.ndarray:
    """Row numbers that go on, per split: binders, sampled hard negatives, easy candidates.

    Hard negatives are drawn per split (``hard_per_binder`` x that split's binders) and easy candidates in
    proportion, so every split has the same binder prevalence; ``max_molecules`` caps each split's binders by its
    share of the screen's rows (a label-free share). Every draw is keyed by the molecule (``keys``,
    screen.molecule_keys) and the seed: the same rows whatever the file's row order. A split short of hard or easy
    negatives stops the build with the settings that would work on this screen (``_shortfall``).
    """
    kind, placed = labels.kind, max(int((split_col != "").sum()), 1)
    binders: dict[str, np.ndarray] = {}
    for split in SPLITS:
        binders[split] = np.flatnonzero((kind == "binder") & (split_col == split))
        if cfg.get("max_molecules"):  # debug subsets: keep the binder:hard ratio
            want = max(1, round(cfg.max_molecules * (split_col == split).sum() / placed / (1 + cfg.hard_per_binder)))
            binders[split] = keyed_draw(binders[split], keys, want, _draw_seed(seed, f"binders {split}"))
    pools = {k: {s: np.flatnonzero((kind == k) & (split_col == s)) for s in SPLITS} for k in ("hard", "easy")}
    n_binders = {s: len(b) for s, b in binders.items()}
    want_hard = {s: round(cfg.hard_per_binder * n) for s, n in n_binders.items()}
    have_hard = {s: len(p) for s, p in pools["hard"].items()}
    want_easy = {s: round(cfg.easy_per_hard * n) for s, n in want_hard.items()}
    if any(have_hard[s] < want_hard[s] for s in SPLITS):
        raise _shortfall(labels, split_col, "hard", have_hard, {"hard": want_hard, "easy": want_easy}, n_binders)
    have_easy = {s: len(p) for s, p in pools["easy"].items()}
    if any(have_easy[s] < want_easy[s] for s in SPLITS):
        raise _shortfall(labels, split_col, "easy", have_easy, {"easy": want_easy}, want_hard)
    chosen = []
    for split in SPLITS:
        hard = keyed_draw(pools["hard"][split], keys, want_hard[split], _draw_seed(seed, f"hard {split}"))
        n_easy = round(cfg.easy_candidates_per_hard * want_easy[split])
        easy = keyed_draw(pools["easy"][split], keys, n_easy, _draw_seed(seed, f"easy {split}"))
        chosen += [binders[split], hard, easy]
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
        labels = label_rules(screen, enrichment, split_col, cfg, st)
        log.info("data.neg_max_fold = %g (%s)", st["neg_max_fold"], st["neg_max_fold_rule"])
        if st["split_from"] != "computed":
            check_split_file(screen, split_col, labels.kind, cfg, st)
        rows = choose_rows(labels, split_col, cfg, seed, st, molecule_keys(screen))
    with stage("smiles", log):
        df = rows_frame(screen, rows, labels.kind, enrichment).assign(split=split_col[rows])
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
