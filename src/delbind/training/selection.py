"""How much signal the checkpoint choice had: the val selection metric over a run's evaluations.

The checkpoint is the evaluation with the best ``trainer.metric_for_best_model`` (val hard AU-PRC); on a val set of
~25 binders / ~31 hard negatives that figure often reaches 1.000 and stays there, and every later tie keeps the first
such evaluation, so which step is chosen moves with the seed. metrics.json records how often that happened.
"""

from __future__ import annotations

from typing import Any

TIE = 1e-12  # two evaluations this close on the metric are a tie


def selection_facts(history: list[dict[str, Any]], metric: str, greater_is_better: bool = True) -> dict[str, Any]:
    """``val_evals``: evaluations that reported ``metric`` (e.g. ``eval_val_hard_auprc``); ``val_saturated_evals``:
    those at the metric's ceiling (1.0 for a higher-is-better score in [0, 1]); ``val_best_ties``: those tied with
    the best value (1 = the best was unique)."""
    values = [float(h[metric]) for h in history if metric in h]
    if not values:
        return {"val_evals": 0, "val_saturated_evals": 0, "val_best_ties": 0}
    best = max(values) if greater_is_better else min(values)
    saturated = sum(v >= 1.0 - TIE for v in values) if greater_is_better else 0
    return {
        "val_evals": len(values),
        "val_saturated_evals": saturated,
        "val_best_ties": sum(abs(v - best) <= TIE for v in values),
    }
