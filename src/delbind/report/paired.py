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


def design(p: Paired) -> str:
    """How ``p`` was tested, without the test's name: ``pooled out-of-fold over 5 folds``."""
    if p.method == METHODS["repeats"]:
        return f"per repeat, pooled out-of-fold, plus the spread over {p.repeats} repeats"
    if p.method == METHODS["pooled"]:
        return f"pooled out-of-fold over {p.n_units} folds"
    if p.method == METHODS["one_fold"]:
        return "on the one fold both ran"
    return f"corrected resampled t over {p.n_units} shared folds or splits"


def _named(p: Paired) -> bool:
    """Whether ``p`` is DeLong / the paired bootstrap (the other test is the corrected t, named by its design)."""
    return p.method in (METHODS["repeats"], METHODS["pooled"], METHODS["one_fold"])


def word(p: Paired) -> str:
    """The verdict as written: ``**better**``, or ``**better** (these models)`` when it judges one pair of fits."""
    return f"**{p.verdict}**" + (" (these models)" if p.scope != "arms" else "")


def p_cell(p: Paired | None) -> str:
    """The p column of an evidence table: Holm-adjusted where the verdict table adjusted it."""
    if p is None:
        return "n/a"
    return p_text(p.p).removeprefix("= ") + (" (Holm)" if p.holm else "")


def evidence(rows: list[tuple[str, str, str, Paired | None]], names: tuple[str, str], family: int = 0) -> str:
    """A compact markdown table of paired figures: one row per (metric, a's cell, b's cell, test), then one line on
    how the tests were made (what the verdicts speak of is the answer's own sentence). ``family``: the rows the
    Holm-adjusted p were adjusted over (every arm paired against ``names[1]``)."""
    a, b = names
    lines = [f"| | {a} | {b} | difference [95% CI] | p | verdict |", "|---|---|---|---|---|---|"]
    for label, a_cell, b_cell, test in rows:
        diff = "no paired test" if test is None else f"{test.diff:+.3f} [{test.lo:+.3f}, {test.hi:+.3f}]"
        lines.append(f"| {label} | {a_cell} | {b_cell} | {diff} | {p_cell(test)} | "
                     f"{'n/a' if test is None else word(test)} |")  # fmt: skip
    tests = [t for *_, t in rows if t is not None]
    if not tests:
        return "\n".join(lines)
    kinds = sorted({f"DeLong (AUROC) / paired bootstrap (AU-PRC) {design(t)}" if _named(t) else design(t)
                    for t in tests})  # fmt: skip
    over = f"the {family} arms paired against {b}" if family else "the verdict table's rows"
    holm = f"; p (Holm): adjusted over {over}, other p: this pair alone" if any(t.holm for t in tests) else ""
    note = f"Difference: {a} minus {b}, on the same molecules. Tests: {'; '.join(kinds)}{holm}."
    return "\n".join(lines) + "\n\n" + note
