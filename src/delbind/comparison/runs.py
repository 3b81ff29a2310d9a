"""Reading finished runs: every metrics.json below some dirs -> one row per run, labelled by its arm's recipe."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from delbind.errors import DataError
from delbind.rundirs import Skipped, finished_runs

QUALITY = ["test_easy_auroc", "test_easy_auprc", "test_hard_auroc", "test_hard_auprc"]
SELECTION = "val_hard_auprc"  # what defaults and sweeps are chosen on: shown beside test, never chosen by test
VERDICT = ["test_hard_auroc", "test_hard_auprc"]  # the paired table's verdicts: the goal
# Cost, and what fine-tuning cost the trunk: forgetting = MLM loss after - before (n/a without an MLM head).
COST = ["train_runtime_s", "train_samples_per_s", "peak_memory_mb", "trainable_params", "forgetting"]
# Averaged into the summary (the report reads them); a column of the tables only where some row measured it (runs
# kept before drift was measured have none): drift = 1 - linear CKA of the trunk's embeddings before and after.
COST_WHERE_MEASURED = ["representation_drift"]
LABELS = {
    SELECTION: "val hard AU-PRC",
    "test_easy_auroc": "easy AUROC",
    "test_easy_auprc": "easy AU-PRC",
    "test_hard_auroc": "hard AUROC",
    "test_hard_auprc": "hard AU-PRC",
    "train_runtime_s": "train time (s)",
    "train_samples_per_s": "samples/s",
    "peak_memory_mb": "peak memory (MB)",
    "trainable_params": "trainable params",
    "forgetting": "forgetting (MLM loss)",
    "representation_drift": "drift (1 - CKA)",
}
# How a row's test molecules were drawn: k-fold CV (folds tile the set: out-of-fold predictions pool), replicate
# splits (KinDEL's split files: overlapping resamples), the file's own split, or seeds that re-split (runs made
# before cross-validation; their test molecules overlap other seeds' val).
DESIGNS = {
    "kfold": "k-fold CV",
    "replicate": "replicate splits",
    "given": "given split",
    "resplit": "re-split seeds (old runs)",
}


def load_runs(
    paths: Iterable[Path | str], per_target: bool = True, strict: bool = False, labels: bool = True
) -> pd.DataFrame:
    """The runs of ``read_runs`` (those left out are logged, one line each)."""
    return read_runs(paths, per_target, strict, labels)[0]


def read_runs(
    paths: Iterable[Path | str], per_target: bool = True, strict: bool = False, labels: bool = True
) -> tuple[pd.DataFrame, list[Skipped]]:
    """One row per finished, readable run at or below each path, with ``design``, ``repeat`` and ``unit`` columns:
    the repeat (data_seed, seed) a run belongs to and its fold (or split) within it; and the run dirs left out
    (unreadable or unfinished; ``strict``: an error). Runs of several targets get the target in their row label
    (``per_target``; the panel, which groups by target itself, turns it off). ``labels=False``: a sweep's label
    does not make a row of its own, so runs of one recipe kept under different labels (``lr1e-4`` when it was a
    candidate, none once it is the default) pool as one row; two runs of one row on one repeat and fold are then
    refused, as they would be two recipes under one name."""
    rows, skipped = finished_runs(paths, strict)
    runs = pd.DataFrame(rows)
    if not labels:
        runs = runs.drop(columns="label", errors="ignore")
    name = runs["arm"].fillna(runs["mode"]) if "arm" in runs else runs["mode"]  # files before `arm` have `mode`
    runs["arm"] = runs.assign(arm=name).apply(row_label, axis=1)
    if per_target and "target" in runs and runs["target"].nunique() > 1:  # one arm on two targets: two rows
        runs["arm"] = runs["arm"] + " @ " + runs["target"].astype(str)
    runs = runs.assign(**_units(runs))
    if not labels:
        clash = runs.duplicated(["arm", "repeat", "unit"], keep=False) & (runs["design"] != "resplit")
        if clash.any():
            first = runs[clash].iloc[0]
            where = ", ".join(runs.loc[clash, "run_dir"].head(2))
            raise DataError(f"two runs of {first['arm']} on repeat {first['repeat']} fold {first['unit']} ({where}): "
                            "two recipes under one name without their labels; keep the labels, or give one "
                            "recipe's runs per arm")  # fmt: skip
    return runs, skipped


def _units(runs: pd.DataFrame) -> dict[str, pd.Series]:
    """Old runs (no ``cv``): each seed (data_seed) is a re-split, the replicate. CV runs: a repeat is one data_seed
    (and init seed); its units are the folds."""
    design = runs["cv"].fillna("resplit") if "cv" in runs else pd.Series("resplit", index=runs.index)

    def text(values: pd.Series) -> pd.Series:  # 3 -> "3" whether the column came out int or float
        return pd.to_numeric(values, errors="coerce").astype("Int64").astype(str)

    split_seed = runs["data_seed"].fillna(runs["seed"]) if "data_seed" in runs else runs["seed"]
    fold = runs["fold"] if "fold" in runs else pd.Series(np.nan, index=runs.index)
    old = design == "resplit"
    repeat = np.where(old, "all", text(split_seed) + "/" + text(runs["seed"]))
    unit = np.where(old, text(split_seed), text(fold))
    return {"design": design, "repeat": pd.Series(repeat, runs.index), "unit": pd.Series(unit, runs.index)}


def repeat_order(repeat: str) -> tuple[int, ...]:
    """Sort key of a ``repeat`` ("data_seed/seed", or "all" for old re-split runs): numerically, data seed first."""
    return tuple(int(x) if x.isdigit() else -1 for x in repeat.split("/"))


def deal_of(repeat: str) -> str:
    """The deal of the folds (data_seed) a ``repeat`` belongs to: repeats of one deal scored the same molecules in
    the same folds."""
    return repeat.split("/")[0]


def row_label(run: pd.Series) -> str:
    """A run's row: ``arm (model[, pooling][, ensemble of n][, chosen on <metric>][, label])``. [CLS] and mean pooling
    are different recipes of one arm, a checkpoint chosen on another val metric is another recipe, and a seed
    ensemble is not its members: never averaged together (older runs lack the keys)."""
    parts = [run["model"]]
    if isinstance(run.get("pooling"), str):
        parts.append(f"{run['pooling']} pooling")
    if pd.notna(run.get("ensemble_size")):
        parts.append(f"ensemble of {int(run['ensemble_size'])}")
    elif pd.notna(run.get("ensemble_member")) and bool(run["ensemble_member"]):  # trained by an ensemble job
        parts.append("ensemble member")
    chosen_on = run.get("selection_metric")  # another checkpoint rule is another recipe (older runs: the default)
    if isinstance(chosen_on, str) and chosen_on != SELECTION:
        parts.append(f"chosen on {chosen_on}")
    if isinstance(run.get("label"), str):  # a recipe named by its sweep: a row of its own
        parts.append(run["label"])
    return f"{run['arm']} ({', '.join(parts)})"


def arm_of(label: str) -> str:
    """A row label's arm (``row_label``'s inverse): ``lp_ft (rxnfp_bert, mean pooling, lr3e-4)`` -> ``lp_ft``."""
    return label.split(" (", 1)[0]


def per_unit(group: pd.DataFrame, metric: str) -> pd.Series:
    """``metric`` of one row's runs, one value per (repeat, fold-or-split), NaNs dropped; runs of one unit (several
    init seeds on one old re-split) are averaged first, so the replicate is the split, never the seed."""
    values = pd.to_numeric(group[metric], errors="coerce") if metric in group else pd.Series(np.nan, group.index)
    return values.groupby([group["repeat"].to_numpy(), group["unit"].to_numpy()]).mean().dropna()
