"""Binders, hard and easy negatives per screen row: every rule vectorized over the whole screen, counted."""

from __future__ import annotations

from typing import Any

import numpy as np
from omegaconf import DictConfig

from delbind.data.sources.kindel.screen import SYNTHONS, TARGET_COUNTS
from delbind.errors import DataError


def _pair_keys(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> list[np.ndarray]:
    """The three disynthons (a+b, a+c, b+c) of each row as int64 keys, one array per synthon pair."""
    a, b, c = (x.astype(np.int64) for x in (a, b, c))
    width = np.int64(max(int(a.max(initial=0)), int(b.max(initial=0)), int(c.max(initial=0))) + 1)
    return [a * width + b, a * width + c, b * width + c]


def label_rules(screen: dict[str, Any], enrichment: np.ndarray, cfg: DictConfig, st: dict[str, Any]) -> np.ndarray:
    """Per row: ``binder``, ``hard``, ``easy`` or ``""`` (dropped), with a count for every rule in ``st``."""
    n = screen["n"]
    codes = [screen[c] for c in SYNTHONS]
    has_synthons = np.logical_and.reduce([c >= 0 for c in codes])
    st["missing_synthon_dropped"] = int((~has_synthons).sum())
    reads = np.column_stack([screen[c] for c in TARGET_COUNTS]).sum(axis=1)
    n_top = int(np.ceil(cfg.pos_fraction * n))
    top = np.zeros(n, dtype=bool)
    top[np.argsort(-enrichment, kind="stable")[:n_top]] = True  # exact fraction; ties by file order
    binder = top & (reads >= cfg.min_target_count) & has_synthons
    st["top_fraction_rows"] = int(top.sum())
    st["top_low_reads_dropped"] = int((top & (reads < cfg.min_target_count)).sum())
    st["binders_found"] = int(binder.sum())
    if not binder.any():
        raise DataError(
            f"no binders: none of the top {cfg.pos_fraction:.3%} by enrichment has >= {cfg.min_target_count} target "
            "reads; lower data.min_target_count or raise data.pos_fraction"
        )
    threshold = float(np.quantile(enrichment, cfg.neg_quantile))
    pool = (enrichment <= threshold) & ~binder & has_synthons
    st["neg_threshold_enrichment"] = threshold
    st["neg_pool"] = int(pool.sum())
    st["between_thresholds_dropped"] = int((~binder & ~pool & has_synthons).sum())
    shares_pair = np.zeros(n, dtype=bool)
    for keys in _pair_keys(*codes):
        shares_pair |= np.isin(keys, keys[binder])
    shares_any = np.logical_or.reduce([np.isin(c, c[binder]) for c in codes])
    hard, easy = pool & shares_pair, pool & ~shares_any
    st["pool_hard"] = int(hard.sum())
    st["pool_easy"] = int(easy.sum())
    st["pool_one_synthon_dropped"] = int((pool & shares_any & ~shares_pair).sum())
    if not hard.any() or not easy.any():
        raise DataError(
            f"no {'hard' if not hard.any() else 'easy'} negatives: {st['pool_hard']} pool members share a disynthon "
            f"with a binder, {st['pool_easy']} share no synthon; fewer binders (lower data.pos_fraction, raise "
            "data.min_target_count) or a larger pool (raise data.neg_quantile) change that"
        )
    kind = np.full(n, "", dtype=object)
    kind[binder], kind[hard], kind[easy] = "binder", "hard", "easy"
    return kind
