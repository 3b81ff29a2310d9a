"""Binders, hard and easy negatives per screen row, within splits placed before: every rule vectorized, counted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from omegaconf import DictConfig
from scipy import stats

from delbind.data.sources.kindel.evidence import fold_bounds
from delbind.data.sources.kindel.screen import SYNTHONS, TARGET_COUNTS
from delbind.data.splits import SPLITS
from delbind.errors import DataError


def pair_keys(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> list[np.ndarray]:
    """The three disynthons (a+b, a+c, b+c) of each row as int64 keys, one array per synthon pair."""
    a, b, c = (x.astype(np.int64) for x in (a, b, c))
    width = np.int64(max(int(a.max(initial=0)), int(b.max(initial=0)), int(c.max(initial=0))) + 1)
    return [a * width + b, a * width + c, b * width + c]


def enriched_blocks(code: np.ndarray, binder: np.ndarray, usable: np.ndarray, alpha: float) -> np.ndarray:
    """Per building block of one position: is its binder rate among the ``usable`` rows above theirs (one-sided
    binomial, p < alpha)?

    Rows holding the block are the trials, binders among them the successes, the rows' binder rate the null.
    No multiple-testing correction on purpose: a noise block flagged by chance only costs easy candidates,
    while an active block left unflagged would put binder-like molecules among easy negatives.
    """
    size = int(code.max(initial=0)) + 1
    if not usable.any():
        return np.zeros(size, dtype=bool)
    rows = np.bincount(code[usable], minlength=size)
    hits = np.bincount(code[binder], minlength=size)
    p_value = stats.binom.sf(hits - 1, rows, binder.sum() / usable.sum())  # P(X >= hits) under the library rate
    return (rows > 0) & (p_value < alpha)


def _binders(
    screen: dict[str, Any],
    enrichment: np.ndarray,
    usable: np.ndarray,
    train: np.ndarray,
    counted: np.ndarray,
    cfg: DictConfig,
    st: dict,
) -> np.ndarray:
    """Rows of ``usable`` above the training rows' top ``pos_fraction`` by enrichment, with at least
    ``min_target_count`` reads; the counts in ``st`` are over the ``counted`` rows among them.

    The cut is a quantile of training rows only and applies to every row, as a standardization fit on training
    data would: no val/test count can move it. Enrichment from small integer counts ties in large groups. When
    the tie group at the cut straddles it, the whole group stays out (counted in ``binder_cut_ties_dropped``): its
    rows hold the same evidence as rows below the cut, so no rule but file order could pick some of them, and a
    binder label should rest on evidence stronger than a non-binder's. The top is then a little under
    ``pos_fraction``, never over it.
    """
    reads = np.column_stack([screen[c] for c in TARGET_COUNTS]).sum(axis=1)
    ranked = -np.sort(-enrichment[usable & train])
    if not len(ranked):
        raise DataError("no training rows: the split places none of the screen's rows in train")
    n_top = int(np.ceil(cfg.pos_fraction * len(ranked)))
    cut = ranked[n_top - 1]
    straddles = n_top < len(ranked) and ranked[n_top] == cut
    top = (enrichment > cut if straddles else enrichment >= cut) & usable
    binder = top & (reads >= cfg.min_target_count)
    st["binder_cut_enrichment"] = float(cut)
    st["binder_cut_ties_dropped"] = int(((enrichment == cut) & usable & counted).sum()) if straddles else 0
    st["top_fraction_rows"] = int((top & counted).sum())
    st["top_low_reads_dropped"] = int((top & counted & ~binder).sum())
    if not (binder & train).any():
        raise DataError(
            f"no binders: none of the top {cfg.pos_fraction:.3%} of training rows by enrichment has >= "
            f"{cfg.min_target_count} target reads; lower data.min_target_count or raise data.pos_fraction"
        )
    return binder


@dataclass
class Labels:
    """Per screen row: its ``kind`` (binder / hard / easy / "" = dropped), the upper bound of its fold enrichment,
    and whether it would be a hard or an easy negative with enough evidence (a usable non-binder of its split sharing
    a disynthon with a binder it reads, or sharing none and holding no enriched block): what a shortfall's error needs
    to compute the setting that would supply it."""

    kind: np.ndarray
    upper: np.ndarray
    hard_candidate: np.ndarray
    easy_candidate: np.ndarray


def _kinds_of_split(
    codes: list[np.ndarray],
    masks: tuple[np.ndarray, np.ndarray],
    split_col: np.ndarray,
    split: str,
    cfg: DictConfig,
    st: dict,
) -> tuple[np.ndarray, np.ndarray]:
    """Hard and easy candidates of one split (usable non-binders, evidence not yet asked), judged against the binders
    its own rows and the training rows hold.

    A training row reads training rows only, so no val/test count moves a training label; a val/test row also
    reads its own split: under a disynthon split it shares no disynthon with a training binder, so training
    binders alone could name none of its hard negatives. The enriched-block test runs on each set of rows read.
    """
    binder, usable = masks
    here, train = split_col == split, split_col == "train"
    read = [train] if split == "train" else [train, here]
    seen = binder & np.logical_or.reduce(read)
    shares_pair = np.zeros(len(here), dtype=bool)
    for keys in pair_keys(*codes):
        shares_pair[here] |= np.isin(keys[here], keys[seen])
    enriched_block = np.zeros(len(here), dtype=bool)
    for name, code in zip(SYNTHONS, codes):
        for rows in read:
            enriched = enriched_blocks(code, binder & rows, usable & rows, cfg.easy_block_alpha)
            enriched_block |= enriched[code] & usable & here  # code -1 (missing) would index the last block: masked
        if split == "train":
            st[f"enriched_blocks_{name[-1]}"], st[f"blocks_{name[-1]}"] = int(enriched.sum()), len(enriched)
    mine = usable & ~binder & here
    return mine & shares_pair, mine & ~shares_pair & ~enriched_block


def label_rules(
    screen: dict[str, Any], enrichment: np.ndarray, split_col: np.ndarray, cfg: DictConfig, st: dict[str, Any]
) -> Labels:
    """Per row: ``binder``, ``hard``, ``easy`` or ``""`` (dropped), with a count for every rule in ``st``.

    Rows are placed in splits first (``split_col``, ``""`` = left out); every threshold (binder cut, read totals)
    comes from training rows and each split's kinds from its own and the training binders, so changing the counts
    of val/test rows changes neither which rows train nor how they are labelled.
    """
    codes = [screen[c] for c in SYNTHONS]
    has_blocks = np.logical_and.reduce([c >= 0 for c in codes])
    placed, train = split_col != "", split_col == "train"
    st["missing_synthon_dropped"] = int((~has_blocks).sum())
    # the training cut applied to every row with blocks (what an unplaced row would have been: the kept fractions),
    # its counts taken over the placed rows, the ones that can be labelled
    binder_any = _binders(screen, enrichment, has_blocks, train & has_blocks, placed, cfg, st)
    upper, max_fold = fold_bounds(screen, train & has_blocks, binder_any & train, cfg, st)
    measured = (upper < max_fold) & has_blocks & ~binder_any
    usable = has_blocks & placed
    binder, pool = binder_any & placed, measured & placed
    # what the split keeps: binders and labelled rows it can place (the rest are left out, counted)
    st["unplaced_rows"] = int((has_blocks & ~placed).sum())
    st["disynthon_mixed_dropped"] = int((has_blocks & ~placed & (binder_any | measured)).sum())
    for what, rows in (("binders", binder_any), ("labelled_rows", binder_any | measured)):
        st[f"split_kept_fraction_{what}"] = float((rows & placed).sum() / max(int(rows.sum()), 1))
    st["binders_found"] = int(binder.sum())
    st["neg_pool"] = int(pool.sum())
    st["neg_no_evidence_dropped"] = int((usable & ~binder & ~pool).sum())
    kind = np.full(screen["n"], "", dtype=object)
    kind[binder] = "binder"
    hard_candidate, easy_candidate = np.zeros(len(kind), dtype=bool), np.zeros(len(kind), dtype=bool)
    for split in SPLITS:
        hard, easy = _kinds_of_split(codes, (binder, usable), split_col, split, cfg, st)
        hard_candidate |= hard
        easy_candidate |= easy
        hard, easy = hard & pool, easy & pool
        st[f"pool_hard_{split}"], st[f"pool_easy_{split}"] = int(hard.sum()), int(easy.sum())
        kind[hard], kind[easy] = "hard", "easy"
    st["pool_hard"] = int((kind == "hard").sum())
    st["pool_easy"] = int((kind == "easy").sum())
    st["pool_enriched_block_dropped"] = st["neg_pool"] - st["pool_hard"] - st["pool_easy"]
    _check_kinds(st, cfg)
    return Labels(kind, upper, hard_candidate, easy_candidate)


def _check_kinds(st: dict[str, Any], cfg: DictConfig) -> None:
    """A clear error when the pool holds no hard or no easy negatives, naming the count and the keys to change."""
    if not st["pool_hard"]:
        raise DataError(
            f"no hard negatives: none of the {st['neg_pool']} pool members shares a disynthon with a binder of its "
            f"split or of train ({st['binders_found']} binders); more binders (raise data.pos_fraction) or a larger "
            "pool (raise data.neg_max_fold or lower data.neg_confidence: weaker evidence of non-binding) change that"
        )
    if not st["pool_easy"]:
        raise DataError(
            f"no easy negatives: of {st['neg_pool']} pool members, {st['pool_hard']} share a disynthon with a binder "
            f"and {st['pool_enriched_block_dropped']} hold a building block enriched among binders (p < "
            f"data.easy_block_alpha={cfg.easy_block_alpha}); fewer binders (lower data.pos_fraction, raise "
            "data.min_target_count), a stricter enrichment test (lower data.easy_block_alpha) or a larger pool "
            "(raise data.neg_max_fold) change that"
        )
