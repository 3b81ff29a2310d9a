"""The paired figures the answers quote: one row of the comparison's verdict table (hard metrics: difference, CI,
Holm-adjusted p, verdict) and, for the easy test sets that table leaves out, the same kind of paired test for one
pair of rows (comparison.verdicts.paired_test: pooled or one-fold DeLong / paired bootstrap, else the corrected t).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from delbind.comparison import VERDICT
from delbind.comparison.verdicts import METHODS, SCOPE, paired_test
from delbind.evaluation import statistics as st
from delbind.report.data import Report


@dataclass(frozen=True)
class Paired:
    """``arm`` minus ``reference`` on ``metric``, on the same molecules."""

    metric: str
    diff: float
    lo: float
    hi: float
    p: float
    verdict: str  # better / worse / equivalent / can't tell
    method: str
    n_units: int
    holm: bool  # p is Holm-adjusted over the verdict table's rows (else: this one pair alone)
    scope: str = "arms"  # what the verdict speaks of: the arms (repeats) or "these models" (one pair of fits)
    repeats: int = 1


def from_pairs(pairs: pd.DataFrame, arm: str, metric: str) -> Paired | None:
    """The verdict table's figures of ``arm`` on a hard ``metric``; None when the table has no such row or no paired
    test was possible (too few shared folds and no complete k-fold repeat)."""
    rows = pairs[pairs["arm"] == arm] if "arm" in pairs else pairs
    if rows.empty or not np.isfinite(rows.iloc[0][f"{metric}_se"]):
        return None
    r = rows.iloc[0]
    lo, hi, p, verdict = r[f"{metric}_lo"], r[f"{metric}_hi"], r[f"{metric}_p_holm"], r[f"{metric}_verdict"]
    scope, repeats = r.get("scope", "these models"), int(r.get("n_repeats", 1))
    return Paired(metric, float(r[f"{metric}_diff"]), lo, hi, p, verdict, r["method"], int(r["n_units"]), True,
                  scope, repeats)  # fmt: skip


def paired(report: Report, pairs: pd.DataFrame, arm: str, ref: str, metric: str) -> Paired | None:
    """``arm`` - ``ref`` on ``metric``: the verdict table's row for a hard metric (``pairs``, paired against
    ``ref``); for an easy one the same tests computed here for this pair alone (not Holm-adjusted). None when no
    paired test is possible."""
    if metric in VERDICT:
        return from_pairs(pairs, arm, metric)
    try:
        found = paired_test(report.runs, report.pooled, arm, ref, metric, 2000)
    except ValueError:  # a set too small to test (fewer than 2 binders or non-binders)
        return None
    test, units = found["test"], found["units"]
    if not np.isfinite(test.se):
        return None
    lo, hi = st.confidence_interval(test, 1 - report.alpha)
    verdict = st.pair_verdict(test, report.margin, report.alpha)
    scope, method = SCOPE[found["method"]], METHODS[found["method"]]
    return Paired(metric, test.diff, lo, hi, test.p, verdict, method, units, False, scope, found["repeats"])


def p_text(p: float) -> str:
    return "n/a" if pd.isna(p) else "< 0.001" if p < 0.001 else f"= {p:.3f}"


def how(p: Paired) -> str:
    """The test behind ``p``, for this metric: ``DeLong, pooled out-of-fold over 5 folds``."""
    test = "DeLong" if p.metric.endswith("auroc") else "stratified paired bootstrap"
    if p.method == METHODS["repeats"]:
        return f"{test} per repeat, pooled out-of-fold, plus the spread over {p.repeats} repeats"
    if p.method == METHODS["pooled"]:
        return f"{test}, pooled out-of-fold over {p.n_units} folds"
    if p.method == METHODS["one_fold"]:
        return f"{test} on the one fold both ran"
    return f"corrected resampled t over {p.n_units} shared folds or splits"


def claim(p: Paired) -> str:
    """``paired difference +0.030 [+0.005, +0.055], Holm p = 0.035 (DeLong, ...): **better**``."""
    which = "Holm p" if p.holm else "p (this pair alone, not Holm-adjusted)"
    return f"paired difference {p.diff:+.3f} [{p.lo:+.3f}, {p.hi:+.3f}], {which} {p_text(p.p)} ({how(p)}): {word(p)}"


def word(p: Paired) -> str:
    """The verdict as written: ``**better**``, or ``**better** (these models)`` when it judges one pair of fits."""
    return f"**{p.verdict}**" + (" (these models)" if p.scope != "arms" else "")


def scope_note(tests: list[Paired | None]) -> str:
    """One sentence when any of ``tests`` judges fitted models, not arms (empty otherwise)."""
    if all(t is None or t.scope == "arms" for t in tests):
        return ""
    return (
        " Verdicts marked (these models) come from one repeat: they judge these fitted models on these molecules, "
        "not the recipes; retrained with another seed the difference can move by more than its interval "
        "(docs/evaluation.md), so run repeats for a verdict about the arms."
    )
