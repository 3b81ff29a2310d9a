"""Paired verdicts: every row against a reference row on the same molecules -> better / worse / equivalent / can't
tell, with the effect size, its interval, a Holm-adjusted p over the rows, and the difference the data can resolve.
Or, with ``twins=<model>``, every row against the same recipe on another trunk (does the trunk matter?).

Which test (see delbind.evaluation.statistics). Repeats of two rows are paired on the same deal of the folds
(data_seed), in seed order within a deal, whatever their init seeds: they scored the same molecules.
- two or more paired k-fold repeats with pooled out-of-fold predictions: per repeat DeLong's test for hard AUROC
  and a stratified paired bootstrap for hard AU-PRC, plus the spread of that difference between repeats
  (``repeated_paired_test``): a verdict about the rows' recipes (arms), which survives retraining;
- one paired repeat (or one shared fold): the same tests on its molecules, a verdict about those fitted models only
  (scope "these models": another init seed moves it by more than DeLong's se, docs/evaluation.md);
- replicate splits or old re-split seeds: the corrected resampled t-test over folds x repeats (Nadeau & Bengio
  2003; Bouckaert & Frank 2004), whose units are separately trained models and whose variance term counts the
  overlap of the training sets.
Equivalence is two one-sided tests within +-``margin``; both families of p-values are Holm-adjusted over the rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from delbind.comparison.runs import SELECTION, VERDICT, arm_of, deal_of, per_unit, repeat_order
from delbind.errors import ConfigError
from delbind.evaluation import statistics as st

METHODS = {
    "repeats": "repeats: pooled out-of-fold per repeat + between-repeat spread",
    "pooled": "pooled out-of-fold (DeLong; paired bootstrap for AU-PRC)",
    "one_fold": "one shared fold (DeLong; paired bootstrap for AU-PRC)",
    "corrected_t": "corrected t",
}
# What a verdict speaks of: the recipes (retrained models would get the same verdict), or the fitted models compared.
SCOPE = {"repeats": "arms", "corrected_t": "arms", "pooled": "these models", "one_fold": "these models"}


def resolve_arm(summary: pd.DataFrame, name: str) -> str:
    """The row ``name`` refers to: its full label (``lp_ft (rxnfp_bert, mean pooling)``) or an arm name that only
    one row has (``ecfp_rf``)."""
    labels = list(summary["arm"])
    if name in labels:
        return name
    matches = [label for label in labels if arm_of(label) == name]
    if len(matches) == 1:
        return matches[0]
    which = "several rows" if matches else "no row"
    raise ConfigError(f"reference {name!r} matches {which}; give one of: {', '.join(labels)}")


def reference_row(summary: pd.DataFrame, reference: str | None) -> str | None:
    """The given row, or the one with the highest mean val hard AU-PRC (what a choice on val takes; never test)."""
    if reference is not None:
        return resolve_arm(summary, reference)
    if summary.empty or summary[SELECTION].isna().all():
        return None
    return str(summary.loc[summary[SELECTION].idxmax(), "arm"])


def find_twins(runs: pd.DataFrame, labels: Iterable[str], model: str) -> list[tuple[str, str]]:
    """(row, its twin): each row of ``labels`` on another trunk beside the row of the same recipe (arm, pooling,
    checkpoint rule, label) on ``model``, in the order given. Rows without one (a fingerprint baseline) are not
    paired; none at all: an empty list."""
    labels = list(labels)
    known, pairs = set(labels), []
    for label in labels:
        own = str(runs.loc[runs["arm"] == label, "model"].iloc[0])
        head = arm_of(label)  # row_label: "<arm> (<model>, ...)", the model first
        twin = label.replace(f"{head} ({own}", f"{head} ({model}", 1)
        if own != model and twin in known:
            pairs.append((label, twin))
    return pairs


def twin_pairs(runs: pd.DataFrame, summary: pd.DataFrame, model: str) -> list[tuple[str, str]]:
    """``find_twins`` over the summary's rows, in its order; no pair at all is an error (a model no row has)."""
    if not (pairs := find_twins(runs, summary["arm"], model)):
        raise ConfigError(
            f"no row has a twin on {model!r} (the same recipe on that trunk); rows: {', '.join(summary['arm'])}"
        )
    return pairs


def _slots(runs: pd.DataFrame, label: str) -> dict[str, str]:
    """Row ``label``'s repeats -> their slot: the deal of the folds (data_seed) and the repeat's rank within that deal
    in seed order. Two rows' repeats in one slot scored the same molecules in the same folds."""
    slots: dict[str, str] = {}
    for repeat in sorted(set(runs.loc[runs["arm"] == label, "repeat"]), key=repeat_order):
        rank = sum(1 for r in slots if deal_of(r) == deal_of(repeat))
        slots[repeat] = f"{deal_of(repeat)}#{rank}"
    return slots


def matched_repeats(runs: pd.DataFrame, arm: str, ref: str) -> list[tuple[str, str]]:
    """(repeat of ``arm``, repeat of ``ref``) on the same deal of the folds, paired in seed order within a deal."""
    a, b = ({slot: r for r, slot in _slots(runs, label).items()} for label in (arm, ref))
    return [(a[slot], b[slot]) for slot in a if slot in b]


def pooled_pair(a: pd.DataFrame, b: pd.DataFrame, metric: str, n_bootstrap: int) -> st.PairedTest:
    eval_set, name = metric.rsplit("_", 1)
    a, b = (x.loc[x["eval_set"] == eval_set, ["smiles", "label", "score"]] for x in (a, b))
    both = a.merge(b, on=["smiles", "label"], suffixes=("_a", "_b"))
    y, sa, sb = both["label"].to_numpy(), both["score_a"].to_numpy(), both["score_b"].to_numpy()
    return st.delong(y, sa, sb) if name == "auroc" else st.paired_bootstrap(y, sa, sb, name, n_bootstrap, seed=0)


def _units_pair(runs: pd.DataFrame, arm: str, ref: str, metric: str) -> tuple[st.PairedTest, int, int]:
    """Corrected resampled t over the (repeat, fold) units both rows ran; returns the test, its df and unit count."""
    a, b = (
        per_unit(runs[runs["arm"] == label], metric).rename(index=_slots(runs, label), level=0) for label in (arm, ref)
    )
    both = pd.concat([a, b], axis=1, join="inner")
    if len(both) < 2:
        nan = st.PairedTest(np.nan, np.nan, np.nan, np.nan, np.nan, "too few shared splits")
        return nan, 0, len(both)
    n_train, n_test = _train_test_sizes(runs[runs["arm"] == arm])
    diffs = (both.iloc[:, 0] - both.iloc[:, 1]).to_numpy()
    test = st.corrected_ttest(diffs, n_train, n_test)
    return test, len(both) - 1, len(both)


def _train_test_sizes(own: pd.DataFrame) -> tuple[float, float]:
    """Nadeau & Bengio's n_train and n_test, alike: every training row against every test molecule of a unit (the
    binders once, easy and hard negatives), whichever test set the metric reads."""

    def mean(key: str) -> float:
        return float(pd.to_numeric(own[key], errors="coerce").mean()) if key in own else np.nan

    easy, hard, binders = mean("n_test_easy"), mean("n_test_hard"), mean("n_test_hard_binders")
    n_test = easy + hard - binders if np.isfinite(easy + binders) else hard
    return mean("n_train"), n_test


def paired_test(
    runs: pd.DataFrame, pooled: dict[tuple[str, str], pd.DataFrame], arm: str, ref: str, metric: str, n_bootstrap: int
) -> dict[str, Any]:
    """The paired test of ``arm`` - ``ref`` on ``metric`` (any test set's AUROC / AU-PRC): over the paired repeats
    when two or more have complete pooled folds in both rows, on the one pooled repeat when they share one, on the
    one fold when they share only one, else the corrected t over shared units. Returns the test, its df, the method
    key, the units per repeat (folds or splits) and the number of paired repeats."""
    pairs = [(ra, rb) for ra, rb in matched_repeats(runs, arm, ref) if (arm, ra) in pooled and (ref, rb) in pooled]
    folds = int(pd.to_numeric(runs.loc[runs["arm"] == arm, "folds"]).iloc[0]) if pairs else 0
    if len(pairs) >= 2:
        each = [pooled_pair(pooled[(arm, ra)], pooled[(ref, rb)], metric, n_bootstrap) for ra, rb in pairs]
        test = st.repeated_paired_test(
            [t.diff for t in each], [t.se**2 for t in each], a=[t.estimate_a for t in each],
            b=[t.estimate_b for t in each], method=f"repeats_{each[0].method}",
        )  # fmt: skip
        return {"test": test, "df": test.df, "method": "repeats", "units": folds, "repeats": len(pairs)}
    if len(pairs) == 1:
        (repeat_a, repeat_b) = pairs[0]
        test = pooled_pair(pooled[(arm, repeat_a)], pooled[(ref, repeat_b)], metric, n_bootstrap)
        return {"test": test, "df": None, "method": "pooled", "units": folds, "repeats": 1}
    test, df, units = _units_pair(runs, arm, ref, metric)
    if units == 1:  # one fold (or split) in common, e.g. two single runs: a paired test on its molecules
        one = _one_unit_pair(runs, arm, ref, metric, n_bootstrap)
        if one is not None:
            return {"test": one, "df": None, "method": "one_fold", "units": 1, "repeats": 1}
    repeats = len(set(_slots(runs, arm).values()) & set(_slots(runs, ref).values()))
    return {"test": test, "df": df, "method": "corrected_t", "units": units, "repeats": repeats}


def _one_unit_pair(runs: pd.DataFrame, arm: str, ref: str, metric: str, n_bootstrap: int) -> st.PairedTest | None:
    """DeLong / paired bootstrap on the test molecules of the one (repeat, unit) both rows ran (its first run each);
    None when a run kept no readable predictions."""
    slots = [_slots(runs, x) for x in (arm, ref)]
    keys = [
        {(slot[r], u) for r, u in zip(runs.loc[runs["arm"] == x, "repeat"], runs.loc[runs["arm"] == x, "unit"])}
        for x, slot in zip((arm, ref), slots)
    ]
    (where, unit) = sorted(keys[0] & keys[1])[0]
    preds = []
    for label, slot in zip((arm, ref), slots):
        repeat = next(r for r, s in slot.items() if s == where)
        run = runs[(runs["arm"] == label) & (runs["repeat"] == repeat) & (runs["unit"] == unit)].iloc[0]
        try:
            preds.append(pd.read_parquet(f"{run['run_dir']}/predictions.parquet"))
        except (OSError, ValueError):
            return None
    return pooled_pair(preds[0], preds[1], metric, n_bootstrap)


def paired_verdicts(
    runs: pd.DataFrame,
    summary: pd.DataFrame,
    pooled: dict[tuple[str, str], pd.DataFrame],
    reference: str | None = None,
    margin: float = 0.02,
    alpha: float = 0.05,
    n_bootstrap: int = 2000,
    twins: str | None = None,
) -> pd.DataFrame:
    """Every other row minus the reference on the hard test metrics (and val hard AU-PRC, for the record); with
    ``twins`` (a model name), every row of another trunk minus its twin on that one instead (``twin_pairs``)."""
    rows: list[dict[str, Any]] = []
    if twins is not None:
        pairs = twin_pairs(runs, summary, twins)
    else:
        ref = reference_row(summary, reference)
        pairs = [] if ref is None else [(arm, ref) for arm in summary["arm"] if arm != ref]
    for arm, ref in pairs:
        row: dict[str, Any] = {"arm": arm, "reference": ref}
        val, df, _ = _units_pair(runs, arm, ref, SELECTION)  # what a choice looks at, with its fold-to-fold noise
        lo, hi = st.confidence_interval(val, 1 - alpha, df) if np.isfinite(val.se) else (np.nan, np.nan)
        row |= {f"{SELECTION}_diff": val.diff, f"{SELECTION}_lo": lo, f"{SELECTION}_hi": hi}
        for metric in VERDICT:
            pair = paired_test(runs, pooled, arm, ref, metric, n_bootstrap)
            test, df = pair["test"], pair["df"]
            lo, hi = st.confidence_interval(test, 1 - alpha, df) if np.isfinite(test.se) else (np.nan, np.nan)
            equiv = st.tost_p(test.diff, test.se, margin, df) if np.isfinite(test.se) else np.nan
            row |= {"method": METHODS[pair["method"]], "n_units": pair["units"], "n_repeats": pair["repeats"]}
            row["scope"] = SCOPE[pair["method"]]
            row |= {f"{metric}_{k}": v for k, v in (("diff", test.diff), ("lo", lo), ("hi", hi), ("se", test.se))}
            row[f"{metric}_df"] = np.nan if df is None else float(df)
            row |= {f"{metric}_p": test.p, f"{metric}_p_equiv": equiv}
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:  # the reference is the only row so far
        return table
    for metric in VERDICT:  # Holm over the rows, for the difference and for the equivalence tests alike
        table[f"{metric}_p_holm"] = st.holm(table[f"{metric}_p"].to_numpy(float))
        table[f"{metric}_p_equiv_holm"] = st.holm(table[f"{metric}_p_equiv"].to_numpy(float))
        table[f"{metric}_verdict"] = [
            "can't tell" if not np.isfinite(p) else st.verdict(d, p, pe, alpha)
            for d, p, pe in zip(table[f"{metric}_diff"], table[f"{metric}_p_holm"], table[f"{metric}_p_equiv_holm"])
        ]
        # a real difference inside the margin: "equivalent", and also significant (a reader should see both)
        table[f"{metric}_significant"] = table[f"{metric}_p_holm"].lt(alpha)
    return table


def resolvable_difference(pairs: pd.DataFrame, power: float = 0.8, alpha: float = 0.05) -> float:
    """The smallest hard-AUROC difference these data resolve at ``power``: the median over the rows of each paired
    test's own (total) se and df, at Holm's first-step threshold alpha / rows (NaN without any test)."""
    se = pairs.get("test_hard_auroc_se", pd.Series(dtype=float))
    df = pairs.get("test_hard_auroc_df", pd.Series(np.nan, index=se.index))
    found = [
        st.min_detectable_difference(s, power, alpha, None if pd.isna(d) else float(d), tests=len(pairs))
        for s, d in zip(se, df)
        if pd.notna(s)
    ]
    return float(np.median(found)) if found else float("nan")
