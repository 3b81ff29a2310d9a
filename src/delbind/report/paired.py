"""The paired figures the answers quote: one row of the comparison's verdict table (hard metrics: difference, CI,
Holm-adjusted p, verdict) and, for the easy test sets that table leaves out, the same kind of paired test for one
pair of rows (pooled out-of-fold DeLong / paired bootstrap, else the corrected resampled t over shared folds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from delbind.comparison import VERDICT, per_unit
from delbind.comparison.verdicts import METHODS
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


def from_pairs(pairs: pd.DataFrame, arm: str, metric: str) -> Paired | None:
    """The verdict table's figures of ``arm`` on a hard ``metric``; None when the table has no such row or no paired
    test was possible (too few shared folds and no complete k-fold repeat)."""
    rows = pairs[pairs["arm"] == arm] if "arm" in pairs else pairs
    if rows.empty or not np.isfinite(rows.iloc[0][f"{metric}_se"]):
        return None
    r = rows.iloc[0]
    lo, hi, p, verdict = r[f"{metric}_lo"], r[f"{metric}_hi"], r[f"{metric}_p_holm"], r[f"{metric}_verdict"]
    return Paired(metric, float(r[f"{metric}_diff"]), lo, hi, p, verdict, r["method"], int(r["n_units"]), True)


def _pooled(report: Report, arm: str, ref: str, metric: str) -> tuple[st.PairedTest, int] | None:
    """The pooled test when both rows ran the same single complete k-fold repeat and nothing else (as the
    verdicts): DeLong for AUROC, a stratified paired bootstrap for AU-PRC, on the molecules both rows scored."""
    repeats = [set(report.runs.loc[report.runs["arm"] == label, "repeat"]) for label in (arm, ref)]
    shared = {r for (label, r) in report.pooled if label == arm} & {r for (label, r) in report.pooled if label == ref}
    if not (len(shared) == 1 and repeats[0] == repeats[1] == shared):
        return None
    (repeat,) = shared
    eval_set, name = metric.rsplit("_", 1)
    a, b = (report.pooled[(label, repeat)] for label in (arm, ref))
    a, b = (x.loc[x["eval_set"] == eval_set, ["smiles", "label", "score"]] for x in (a, b))
    both = a.merge(b, on=["smiles", "label"], suffixes=("_a", "_b"))
    y, sa, sb = both["label"].to_numpy(), both["score_a"].to_numpy(), both["score_b"].to_numpy()
    test = st.delong(y, sa, sb) if name == "auroc" else st.paired_bootstrap(y, sa, sb, name, 2000, seed=0)
    return test, int(pd.to_numeric(report.runs.loc[report.runs["arm"] == arm, "folds"]).iloc[0])


def _over_units(report: Report, arm: str, ref: str, metric: str) -> tuple[st.PairedTest, int] | None:
    """Corrected resampled t over the (repeat, fold) units both rows ran, with this test set's own size."""
    runs = report.runs
    a, b = (per_unit(runs[runs["arm"] == label], metric) for label in (arm, ref))
    both = pd.concat([a, b], axis=1, join="inner")
    own = runs[runs["arm"] == arm]
    size = f"n_{metric.rsplit('_', 1)[0]}"  # n_test_easy for test_easy_*
    n_test, n_train = (pd.to_numeric(own.get(c, pd.Series(np.nan)), errors="coerce").mean() for c in (size, "n_train"))
    if len(both) < 2 or not (n_test > 0 and n_train > 0):
        return None
    return st.corrected_ttest((both.iloc[:, 0] - both.iloc[:, 1]).to_numpy(), n_train, n_test), len(both)


def paired(report: Report, pairs: pd.DataFrame, arm: str, ref: str, metric: str) -> Paired | None:
    """``arm`` - ``ref`` on ``metric``: the verdict table's row for a hard metric (``pairs``, paired against
    ``ref``); for an easy one the same tests computed here for this pair alone (not Holm-adjusted). None when no
    paired test is possible."""
    if metric in VERDICT:
        return from_pairs(pairs, arm, metric)
    try:
        found, method = _pooled(report, arm, ref, metric), "pooled"
        if found is None:
            found, method = _over_units(report, arm, ref, metric), "corrected_t"
    except ValueError:  # a set too small to test (fewer than 2 binders or non-binders)
        return None
    if found is None:
        return None
    test, units = found
    lo, hi = st.confidence_interval(test, 1 - report.alpha)
    equiv = st.tost_p(test.diff, test.se, report.margin, test.df)
    verdict = st.verdict(test.diff, test.p, equiv, report.alpha)
    return Paired(metric, test.diff, lo, hi, test.p, verdict, METHODS[method], units, False)


def p_text(p: float) -> str:
    return "n/a" if pd.isna(p) else "< 0.001" if p < 0.001 else f"= {p:.3f}"


def how(p: Paired) -> str:
    """The test behind ``p``, for this metric: ``DeLong, pooled out-of-fold over 5 folds``."""
    if p.method == METHODS["pooled"]:
        test = "DeLong" if p.metric.endswith("auroc") else "stratified paired bootstrap"
        return f"{test}, pooled out-of-fold over {p.n_units} folds"
    return f"corrected resampled t over {p.n_units} shared folds or splits"


def claim(p: Paired) -> str:
    """``paired difference +0.030 [+0.005, +0.055], Holm p = 0.035 (DeLong, ...): **better**``."""
    which = "Holm p" if p.holm else "p (this pair alone, not Holm-adjusted)"
    return (
        f"paired difference {p.diff:+.3f} [{p.lo:+.3f}, {p.hi:+.3f}], {which} {p_text(p.p)} ({how(p)}): **{p.verdict}**"
    )
