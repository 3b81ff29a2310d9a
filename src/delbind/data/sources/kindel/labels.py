"""Binders, hard and easy negatives per screen row: every rule vectorized over the whole screen, counted."""

from __future__ import annotations

from typing import Any

import numpy as np
from omegaconf import DictConfig
from scipy import stats

from delbind.data.sources.kindel.screen import SYNTHONS, TARGET_COUNTS
from delbind.errors import DataError


def pair_keys(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> list[np.ndarray]:
    """The three disynthons (a+b, a+c, b+c) of each row as int64 keys, one array per synthon pair."""
    a, b, c = (x.astype(np.int64) for x in (a, b, c))
    width = np.int64(max(int(a.max(initial=0)), int(b.max(initial=0)), int(c.max(initial=0))) + 1)
    return [a * width + b, a * width + c, b * width + c]


def enriched_blocks(code: np.ndarray, binder: np.ndarray, usable: np.ndarray, alpha: float) -> np.ndarray:
    """Per building block of one position: is its binder rate above the library's (one-sided binomial, p < alpha)?

    Rows holding the block are the trials, binders among them the successes, the library-wide binder rate
    the null. No multiple-testing correction on purpose: a noise block flagged by chance only costs easy
    candidates, while an active block left unflagged would put binder-like molecules among easy negatives.
    """
    size = int(code.max(initial=0)) + 1
    rows = np.bincount(code[usable], minlength=size)
    hits = np.bincount(code[binder], minlength=size)
    p_value = stats.binom.sf(hits - 1, rows, binder.sum() / usable.sum())  # P(X >= hits) under the library rate
    return (rows > 0) & (p_value < alpha)


def _binders(
    screen: dict[str, Any], enrichment: np.ndarray, usable: np.ndarray, cfg: DictConfig, st: dict
) -> np.ndarray:
    """The top ``pos_fraction`` of the screen by enrichment with at least ``min_target_count`` target reads.

    Enrichment from small integer counts ties in large groups. When the tie group at the cut straddles it, the
    whole group stays out (counted in ``binder_cut_ties_dropped``): its rows hold the same evidence as rows below
    the cut, so no rule but file order could pick some of them, and a binder label should rest on evidence
    stronger than a non-binder's. The top is then a little under ``pos_fraction``, never over it.
    """
    n = screen["n"]
    reads = np.column_stack([screen[c] for c in TARGET_COUNTS]).sum(axis=1)
    n_top = int(np.ceil(cfg.pos_fraction * n))
    ranked = -np.sort(-enrichment)
    cut = ranked[n_top - 1]
    straddles = n_top < n and ranked[n_top] == cut
    top = enrichment > cut if straddles else enrichment >= cut
    st["binder_cut_enrichment"] = float(cut)
    st["binder_cut_ties_dropped"] = int((enrichment == cut).sum()) if straddles else 0
    binder = top & (reads >= cfg.min_target_count) & usable
    st["top_fraction_rows"] = int(top.sum())
    st["top_low_reads_dropped"] = int((top & (reads < cfg.min_target_count)).sum())
    st["binders_found"] = int(binder.sum())
    if not binder.any():
        raise DataError(
            f"no binders: none of the top {cfg.pos_fraction:.3%} by enrichment has >= {cfg.min_target_count} target "
            "reads; lower data.min_target_count or raise data.pos_fraction"
        )
    return binder


def label_rules(screen: dict[str, Any], enrichment: np.ndarray, cfg: DictConfig, st: dict[str, Any]) -> np.ndarray:
    """Per row: ``binder``, ``hard``, ``easy`` or ``""`` (dropped), with a count for every rule in ``st``."""
    codes = [screen[c] for c in SYNTHONS]
    usable = np.logical_and.reduce([c >= 0 for c in codes])
    st["missing_synthon_dropped"] = int((~usable).sum())
    binder = _binders(screen, enrichment, usable, cfg, st)
    threshold = float(np.quantile(enrichment, cfg.neg_quantile))
    pool = (enrichment <= threshold) & ~binder & usable
    st["neg_threshold_enrichment"] = threshold
    st["neg_pool"] = int(pool.sum())
    st["between_thresholds_dropped"] = int((~binder & ~pool & usable).sum())
    shares_pair = np.zeros(screen["n"], dtype=bool)
    for keys in pair_keys(*codes):
        shares_pair |= np.isin(keys, keys[binder])
    enriched_block = np.zeros(screen["n"], dtype=bool)
    for name, code in zip(SYNTHONS, codes):
        enriched = enriched_blocks(code, binder, usable, cfg.easy_block_alpha)
        st[f"enriched_blocks_{name[-1]}"], st[f"blocks_{name[-1]}"] = int(enriched.sum()), len(enriched)
        enriched_block |= enriched[code] & usable  # code -1 (missing) would index the last block: masked
    hard, easy = pool & shares_pair, pool & ~shares_pair & ~enriched_block
    st["pool_hard"], st["pool_easy"] = int(hard.sum()), int(easy.sum())
    st["pool_enriched_block_dropped"] = int((pool & ~shares_pair & enriched_block).sum())
    _check_kinds(st, cfg)
    kind = np.full(screen["n"], "", dtype=object)
    kind[binder], kind[hard], kind[easy] = "binder", "hard", "easy"
    return kind


def _check_kinds(st: dict[str, Any], cfg: DictConfig) -> None:
    """A clear error when the pool holds no hard or no easy negatives, naming the count and the keys to change."""
    if not st["pool_hard"]:
        raise DataError(
            f"no hard negatives: none of the {st['neg_pool']} pool members shares a disynthon with the "
            f"{st['binders_found']} binders; more binders (raise data.pos_fraction) or a larger pool (raise "
            "data.neg_quantile) change that"
        )
    if not st["pool_easy"]:
        raise DataError(
            f"no easy negatives: of {st['neg_pool']} pool members, {st['pool_hard']} share a disynthon with a binder "
            f"and {st['pool_enriched_block_dropped']} hold a building block enriched among binders (p < "
            f"data.easy_block_alpha={cfg.easy_block_alpha}); fewer binders (lower data.pos_fraction, raise "
            "data.min_target_count), a stricter enrichment test (lower data.easy_block_alpha) or a larger pool "
            "(raise data.neg_quantile) change that"
        )
