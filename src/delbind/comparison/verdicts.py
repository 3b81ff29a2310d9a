"""Paired verdicts: every row against a reference row on the same molecules -> better / worse / equivalent / can't
tell, with the effect size, its interval, a Holm-adjusted p over the rows, and the difference the data can resolve.

Which test (see delbind.evaluation.statistics):
- one k-fold repeat with pooled out-of-fold predictions: DeLong's test for hard AUROC and a stratified paired
  bootstrap for hard AU-PRC, on the molecules both rows scored (each molecule once);
- several repeats, replicate splits or old re-split seeds: the corrected resampled t-test over folds x repeats
  (Nadeau & Bengio 2003; Bouckaert & Frank 2004), whose variance term counts the overlap of the training sets.
Equivalence is two one-sided tests within +-``margin``; both families of p-values are Holm-adjusted over the rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from delbind.comparison.runs import SELECTION, VERDICT, per_unit
from delbind.errors import ConfigError
from delbind.evaluation import statistics as st

METHODS = {
    "pooled": "pooled out-of-fold (DeLong; paired bootstrap for AU-PRC)",
    "one_fold": "one shared fold (DeLong; paired bootstrap for AU-PRC)",
    "corrected_t": "corrected t",
}


def resolve_arm(summary: pd.DataFrame, name: str) -> str:
    """The row ``name`` refers to: its full label (``lp_ft (rxnfp_bert, mean pooling)``) or an arm name that only
    one row has (``ecfp_rf``)."""
    labels = list(summary["arm"])
    if name in labels:
        return name
    matches = [label for label in labels if label.split(" (", 1)[0] == name]
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


def _pooled_pair(a: pd.DataFrame, b: pd.DataFrame, metric: str, n_bootstrap: int) -> st.PairedTest:
    eval_set, name = metric.rsplit("_", 1)
    a, b = (x.loc[x["eval_set"] == eval_set, ["smiles", "label", "score"]] for x in (a, b))
    both = a.merge(b, on=["smiles", "label"], suffixes=("_a", "_b"))
    y, sa, sb = both["label"].to_numpy(), both["score_a"].to_numpy(), both["score_b"].to_numpy()
    return st.delong(y, sa, sb) if name == "auroc" else st.paired_bootstrap(y, sa, sb, name, n_bootstrap, seed=0)


def _units_pair(runs: pd.DataFrame, arm: str, ref: str, metric: str) -> tuple[st.PairedTest, int, int]:
    """Corrected resampled t over the (repeat, fold) units both rows ran; returns the test, its df and unit count."""
    a, b = (per_unit(runs[runs["arm"] == label], metric) for label in (arm, ref))
    both = pd.concat([a, b], axis=1, join="inner")
    if len(both) < 2:
        nan = st.PairedTest(np.nan, np.nan, np.nan, np.nan, np.nan, "too few shared splits")
        return nan, 0, len(both)
    own = runs[runs["arm"] == arm]
    size = f"n_{metric.rsplit('_', 1)[0]}"  # the test set's own size: n_test_hard for test_hard_*
    n_test = pd.to_numeric(own.get(size, pd.Series(np.nan)), errors="coerce").mean()
    n_train = pd.to_numeric(own.get("n_train", pd.Series(np.nan)), errors="coerce").mean()
    diffs = (both.iloc[:, 0] - both.iloc[:, 1]).to_numpy()
    test = st.corrected_ttest(diffs, n_train, n_test)
    return test, len(both) - 1, len(both)


def paired_test(
    runs: pd.DataFrame, pooled: dict[tuple[str, str], pd.DataFrame], arm: str, ref: str, metric: str, n_bootstrap: int
) -> dict[str, Any]:
    """The paired test of ``arm`` - ``ref`` on ``metric`` (any test set's AUROC / AU-PRC): pooled when both ran the
    same single complete k-fold repeat (and nothing else), on the one fold when they share only one, else the
    corrected t over shared units. Returns the test, its df, the method key and the unit count."""
    repeats = [set(runs.loc[runs["arm"] == label, "repeat"]) for label in (arm, ref)]
    shared = {r for (label, r) in pooled if label == arm} & {r for (label, r) in pooled if label == ref}
    if len(shared) == 1 and repeats[0] == repeats[1] == shared:
        (repeat,) = shared
        test = _pooled_pair(pooled[(arm, repeat)], pooled[(ref, repeat)], metric, n_bootstrap)
        units = int(pd.to_numeric(runs.loc[runs["arm"] == arm, "folds"]).iloc[0])
        return {"test": test, "df": None, "method": "pooled", "units": units}
    test, df, units = _units_pair(runs, arm, ref, metric)
    if units == 1:  # one fold (or split) in common, e.g. two single runs: a paired test on its molecules
        one = _one_unit_pair(runs, arm, ref, metric, n_bootstrap)
        if one is not None:
            return {"test": one, "df": None, "method": "one_fold", "units": 1}
    return {"test": test, "df": df, "method": "corrected_t", "units": units}


def _one_unit_pair(runs: pd.DataFrame, arm: str, ref: str, metric: str, n_bootstrap: int) -> st.PairedTest | None:
    """DeLong / paired bootstrap on the test molecules of the one (repeat, unit) both rows ran (its first run each);
    None when a run kept no readable predictions."""
    keys = [set(zip(runs.loc[runs["arm"] == x, "repeat"], runs.loc[runs["arm"] == x, "unit"])) for x in (arm, ref)]
    (repeat, unit) = sorted(keys[0] & keys[1])[0]
    preds = []
    for label in (arm, ref):
        run = runs[(runs["arm"] == label) & (runs["repeat"] == repeat) & (runs["unit"] == unit)].iloc[0]
        try:
            preds.append(pd.read_parquet(f"{run['run_dir']}/predictions.parquet"))
        except (OSError, ValueError):
            return None
    return _pooled_pair(preds[0], preds[1], metric, n_bootstrap)


def paired_verdicts(
    runs: pd.DataFrame,
    summary: pd.DataFrame,
    pooled: dict[tuple[str, str], pd.DataFrame],
    reference: str | None = None,
    margin: float = 0.02,
    alpha: float = 0.05,
    n_bootstrap: int = 2000,
) -> pd.DataFrame:
    """Every other row minus the reference on the hard test metrics (and val hard AU-PRC, for the record)."""
    ref = reference_row(summary, reference)
    rows: list[dict[str, Any]] = []
    if ref is None:
        return pd.DataFrame(rows)
    for arm in summary["arm"]:
        if arm == ref:
            continue
        row: dict[str, Any] = {"arm": arm, "reference": ref}
        val, df, _ = _units_pair(runs, arm, ref, SELECTION)  # what a choice looks at, with its fold-to-fold noise
        lo, hi = st.confidence_interval(val, 1 - alpha, df) if np.isfinite(val.se) else (np.nan, np.nan)
        row |= {f"{SELECTION}_diff": val.diff, f"{SELECTION}_lo": lo, f"{SELECTION}_hi": hi}
        for metric in VERDICT:
            pair = paired_test(runs, pooled, arm, ref, metric, n_bootstrap)
            test, df = pair["test"], pair["df"]
            lo, hi = st.confidence_interval(test, 1 - alpha, df) if np.isfinite(test.se) else (np.nan, np.nan)
            equiv = st.tost_p(test.diff, test.se, margin, df) if np.isfinite(test.se) else np.nan
            row |= {"method": METHODS[pair["method"]], "n_units": pair["units"]}
            row |= {f"{metric}_{k}": v for k, v in (("diff", test.diff), ("lo", lo), ("hi", hi), ("se", test.se))}
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
    return table


def resolvable_difference(pairs: pd.DataFrame, power: float = 0.8, alpha: float = 0.05) -> float:
    """The smallest hard-AUROC difference these data resolve at ``power``: from the median standard error of the
    paired differences actually measured (NaN without any)."""
    se = pairs.get("test_hard_auroc_se", pd.Series(dtype=float)).dropna()
    return st.min_detectable_difference(float(se.median()), power, alpha) if len(se) else float("nan")
