"""Out-of-fold results: each arm's test-fold predictions pooled per repeat (every molecule once) and scored.

A k-fold repeat whose folds all ran is one set of predictions over the whole data set; its AUROC / AU-PRC and a
stratified bootstrap over molecules are the row's figures. Rows without complete folds (replicate splits, a given
split, old re-split seeds, a sweep still running) fall back to the mean over their splits with a t-interval.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from delbind.comparison.runs import COST, COST_WHERE_MEASURED, DESIGNS, QUALITY, SELECTION, per_unit
from delbind.evaluation.bootstrap import score_set

log = logging.getLogger(__name__)
TEST_SETS = ("test_easy", "test_hard")


def _complete(group: pd.DataFrame) -> bool:
    """Every fold 0..folds-1 of the repeat ran once (an unfinished sweep is not pooled)."""
    if group["design"].iloc[0] != "kfold" or "folds" not in group:
        return False
    folds = pd.to_numeric(group["folds"], errors="coerce")
    if folds.nunique() != 1 or folds.isna().any():
        return False
    return sorted(pd.to_numeric(group["fold"]).astype(int)) == list(range(int(folds.iloc[0])))


def pooled_predictions(runs: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    """(row label, repeat) -> the repeat's test predictions (smiles, label, kind, eval_set, score, fold), for every
    repeat whose folds are complete and whose runs kept predictions.parquet."""
    out = {}
    for (arm, repeat), group in runs.groupby(["arm", "repeat"], sort=False):
        if not _complete(group):
            continue
        parts = []
        for _, run in group.iterrows():
            try:
                preds = pd.read_parquet(f"{run['run_dir']}/predictions.parquet")
            except (OSError, ValueError) as e:  # a run without readable predictions: this repeat is not pooled
                log.warning("%s: predictions.parquet unreadable (%s); its repeat is not pooled", run["run_dir"], e)
                parts = []
                break
            parts.append(preds[preds["eval_set"].isin(TEST_SETS)].assign(fold=int(run["fold"])))
        if parts:
            out[(arm, repeat)] = pd.concat(parts, ignore_index=True)
    return out


def pooled_scores(preds: pd.DataFrame, n_bootstrap: int, confidence: float, seed: int = 0) -> dict[str, Any]:
    """Pooled test metrics of one repeat with their stratified bootstrap CIs, and the pooled set sizes."""
    out: dict[str, Any] = {}
    for name in TEST_SETS:
        part = preds[preds["eval_set"] == name]
        out |= score_set(name, part["label"].to_numpy(), part["score"].to_numpy(), n_bootstrap, confidence, seed)
        out[f"n_{name}_binders"], out[f"n_{name}_negatives"] = int(part["label"].sum()), int((part["label"] == 0).sum())
    return out


def _t_interval(values: pd.Series, confidence: float) -> tuple[float, float, float]:
    mean = float(values.mean())
    if len(values) < 2 or float(stats.sem(values)) == 0:
        return mean, np.nan, np.nan
    lo, hi = stats.t.interval(confidence, len(values) - 1, loc=mean, scale=stats.sem(values))
    return mean, max(float(lo), 0.0), min(float(hi), 1.0)  # AUROC / AU-PRC live in [0, 1]


def summarize(
    runs: pd.DataFrame,
    confidence: float = 0.95,
    n_bootstrap: int = 1000,
    pooled: dict[tuple[str, str], pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Rows = arm: how it was evaluated, mean val hard AU-PRC over its folds, test metrics (pooled out-of-fold with a
    bootstrap CI, else a t-interval over splits, else one run's own bootstrap CI), pooled set sizes, mean costs."""
    pooled = pooled_predictions(runs) if pooled is None else pooled
    out = []
    for arm, group in runs.groupby("arm", sort=False):
        design = group["design"].iloc[0]
        repeats = [pooled[(arm, r)] for r in group["repeat"].unique() if (arm, r) in pooled]
        row: dict[str, Any] = {"arm": arm, "design": DESIGNS.get(design, design), "n_seeds": group["seed"].nunique()}
        row["n_repeats"], row["n_units"] = group["repeat"].nunique(), len(group[["repeat", "unit"]].drop_duplicates())
        row["units_per_repeat"] = int(group.groupby("repeat")["unit"].nunique().max())  # folds (or splits) of one
        row[SELECTION] = float(per_unit(group, SELECTION).mean()) if SELECTION in group else np.nan
        if repeats:  # mean over repeats of each repeat's pooled figure and bootstrap bounds
            scored = [pooled_scores(p, n_bootstrap, confidence) for p in repeats]
            for key in scored[0]:
                if key.endswith("_ci95"):
                    metric = key.removesuffix("_ci95")
                    row[f"{metric}_lo"] = float(np.mean([s[key][0] for s in scored]))
                    row[f"{metric}_hi"] = float(np.mean([s[key][1] for s in scored]))
                else:
                    row[key] = float(np.mean([s[key] for s in scored]))
            row["ci"] = "pooled"
        else:
            for metric in QUALITY:
                values = per_unit(group, metric)
                mean, lo, hi = _t_interval(values, confidence)
                if len(values) == 1 and f"{metric}_ci95" in group:
                    lo, hi = group[f"{metric}_ci95"].dropna().iloc[0]
                row.update({metric: mean, f"{metric}_lo": lo, f"{metric}_hi": hi})
            row["ci"] = "splits" if row["n_units"] >= 2 else "bootstrap"
        for metric in (*COST, *COST_WHERE_MEASURED):
            row[metric] = pd.to_numeric(group[metric], errors="coerce").mean() if metric in group else float("nan")
        out.append(row)
    return pd.DataFrame(out)
