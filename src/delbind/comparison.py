"""Frozen vs fine-tuned vs baselines: metrics.json files -> comparison.{md,csv,png}."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from hydra.experimental.callback import Callback  # noqa: E402
from omegaconf import DictConfig  # noqa: E402
from scipy import stats  # noqa: E402

from delbind.errors import ConfigError, NoRunsError  # noqa: E402
from delbind.io import atomic_write, write_text  # noqa: E402
from delbind.tracking import log_comparison, logged_to_wandb  # noqa: E402

log = logging.getLogger(__name__)

QUALITY = ["test_easy_auroc", "test_easy_auprc", "test_hard_auroc", "test_hard_auprc"]
SELECTION = "val_hard_auprc"  # what defaults and sweeps are chosen on: shown beside test, never chosen by test
PAIRED = [SELECTION, "test_hard_auroc", "test_hard_auprc"]  # the paired table's metrics: the choice and the goal
# Cost, and what fine-tuning cost the trunk: forgetting = MLM loss after - before (n/a without an MLM head).
COST = ["train_runtime_s", "train_samples_per_s", "peak_memory_mb", "trainable_params", "forgetting"]
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
}


def _natural(path: Path) -> list[Any]:
    """Sort key that puts sweep job 2 before job 10, so rows follow the sweep's order."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def metrics_files(paths: Iterable[Path | str]) -> list[Path]:
    """Every metrics.json at or below each path (a run dir, a sweep dir, or the file itself), in sweep order."""
    files = []
    for path in map(Path, paths):
        files += [path] if path.name == "metrics.json" else sorted(path.glob("**/metrics.json"), key=_natural)
    return files


def load_runs(paths: Iterable[Path | str]) -> pd.DataFrame:
    """One row per metrics.json found at or below each path."""
    rows = [{**json.loads(f.read_text()), "run_dir": str(f.parent)} for f in metrics_files(paths)]
    if not rows:
        raise NoRunsError(f"no metrics.json under {[str(p) for p in paths]}")
    runs = pd.DataFrame(rows)
    name = runs["arm"].fillna(runs["mode"]) if "arm" in runs else runs["mode"]  # files before `arm` have `mode`
    runs["arm"] = runs.assign(arm=name).apply(_label, axis=1)
    return runs


def _label(run: pd.Series) -> str:
    """A run's row: ``arm (model[, pooling][, ensemble of n])``. [CLS] and mean pooling are different recipes of
    one arm, and a seed ensemble is not its members: never averaged together (older runs lack the keys)."""
    parts = [run["model"]]
    if isinstance(run.get("pooling"), str):
        parts.append(f"{run['pooling']} pooling")
    if pd.notna(run.get("ensemble_size")):
        parts.append(f"ensemble of {int(run['ensemble_size'])}")
    elif pd.notna(run.get("ensemble_member")) and bool(run["ensemble_member"]):  # trained by an ensemble job
        parts.append("ensemble member")
    return f"{run['arm']} ({', '.join(parts)})"


def _interval(values: pd.Series, bootstrap_ci: pd.Series, confidence: float) -> tuple[float, float, float, str]:
    """Mean and CI: a t-interval over the replicates (``values``: one per split) when there are several, else the
    run's own bootstrap CI."""
    mean = float(values.mean())
    if len(values) >= 2:
        sem = float(stats.sem(values))
        if sem == 0:
            return mean, mean, mean, "seeds"
        lo, hi = stats.t.interval(confidence, len(values) - 1, loc=mean, scale=sem)
        return mean, max(float(lo), 0.0), min(float(hi), 1.0), "seeds"  # AUROC / AU-PRC live in [0, 1]
    lo, hi = bootstrap_ci.iloc[0]
    return mean, float(lo), float(hi), "bootstrap"


def per_split(group: pd.DataFrame, metric: str) -> pd.Series:
    """``metric`` of one row's runs, one value per split (index: the split's seed), NaNs dropped.

    The replicate is the split: runs that share one (data_seed held, seed varied) are averaged first, so 25 runs on
    5 splits are 5 values, not 25. Runs made before data_seed existed split by their seed."""
    split = group["data_seed"].fillna(group["seed"]) if "data_seed" in group else group["seed"]
    values = pd.to_numeric(group[metric], errors="coerce") if metric in group else pd.Series(np.nan, group.index)
    return values.groupby(split.to_numpy()).mean().dropna()


def summarize(runs: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Rows = arm; per quality metric mean / lo / hi; cost columns as means; seed count."""
    out = []
    for arm, group in runs.groupby("arm", sort=False):
        row: dict[str, Any] = {"arm": arm, "n_seeds": group["seed"].nunique()}
        row[SELECTION] = pd.to_numeric(group[SELECTION], errors="coerce").mean() if SELECTION in group else np.nan
        for metric in QUALITY:
            mean, lo, hi, source = _interval(per_split(group, metric), group[f"{metric}_ci95"], confidence)
            row.update({metric: mean, f"{metric}_lo": lo, f"{metric}_hi": hi})
            row["ci"] = source
        for metric in COST:
            row[metric] = pd.to_numeric(group[metric], errors="coerce").mean() if metric in group else float("nan")
        out.append(row)
    return pd.DataFrame(out)


def paired_difference(
    runs: pd.DataFrame, arm: str, reference: str, metric: str, confidence: float = 0.95
) -> dict[str, float]:
    """``arm`` minus ``reference`` (two rows' labels) on ``metric``, paired by split: the mean difference over the
    splits both ran, its t-interval and the paired t-test's p (scipy's ``ttest_rel``). Both rows see the same
    molecules on a split, so the split-to-split swing (which dominates each row's own interval) cancels.
    With fewer than two shared splits, or identical differences, the interval and p are NaN."""
    both = pd.concat(
        [per_split(runs[runs["arm"] == label], metric) for label in (arm, reference)], axis=1, join="inner"
    )
    diff = both.iloc[:, 0] - both.iloc[:, 1]
    out = {"n_splits": float(len(diff)), "diff": float(diff.mean()) if len(diff) else np.nan}
    out |= {"lo": np.nan, "hi": np.nan, "p": np.nan}
    if len(diff) >= 2 and diff.std() > 0:
        lo, hi = stats.t.interval(confidence, len(diff) - 1, loc=diff.mean(), scale=stats.sem(diff))
        p = stats.ttest_rel(both.iloc[:, 0], both.iloc[:, 1]).pvalue
        out |= {"lo": float(lo), "hi": float(hi), "p": float(p)}
    return out


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


def paired(
    runs: pd.DataFrame, summary: pd.DataFrame, reference: str | None = None, confidence: float = 0.95
) -> pd.DataFrame:
    """Every other row minus the reference row, paired by split, on val hard AU-PRC and the test hard metrics.

    ``reference``: a row (see ``resolve_arm``); None = the row with the highest mean val hard AU-PRC, the one a
    choice on val would take (no reference, and an empty frame, when no row recorded val)."""
    columns = ["arm", "reference", "n_splits", *(f"{m}_{k}" for m in PAIRED for k in ("diff", "lo", "hi", "p"))]
    if reference is None:
        if summary[SELECTION].isna().all():
            return pd.DataFrame(columns=columns)
        reference = summary.loc[summary[SELECTION].idxmax(), "arm"]
    else:
        reference = resolve_arm(summary, reference)
    rows = []
    for arm in summary["arm"]:
        if arm == reference:
            continue
        row: dict[str, Any] = {"arm": arm, "reference": reference}
        for metric in PAIRED:
            d = paired_difference(runs, arm, reference, metric, confidence)
            row["n_splits"] = max(row.get("n_splits", 0), int(d["n_splits"]))
            row |= {f"{metric}_{key}": d[key] for key in ("diff", "lo", "hi", "p")}
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def paired_markdown(table: pd.DataFrame, chosen: bool) -> str:
    """The paired table under the main one; ``chosen``: the reference was the val-best row, not given."""
    if table.empty:
        return ""
    reference = table["reference"].iloc[0]
    why = "the row with the highest mean val hard AU-PRC" if chosen else "the reference asked for"
    header = ["arm", "splits", *(f"{LABELS[m]} - ref" for m in PAIRED), *(f"p ({LABELS[m]})" for m in PAIRED[1:])]
    lines = [
        f"Paired by split against **{reference}** ({why}): each row minus the reference on the splits both ran.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for _, r in table.iterrows():
        diffs = [_fmt_diff(r, m) for m in PAIRED]
        ps = ["n/a" if pd.isna(r[f"{m}_p"]) else f"{r[f'{m}_p']:.3f}" for m in PAIRED[1:]]
        lines.append("| " + " | ".join([r["arm"], str(r["n_splits"]), *diffs, *ps]) + " |")
    lines += [
        "",
        "Cells: mean difference [95% t-interval over the shared splits]; p: paired t-test. An interval that excludes "
        "0 is a difference these splits can tell from noise; the rows' own intervals above can overlap while it "
        "does, since a split that is hard for one arm is hard for all.",
    ]
    return "\n".join(lines) + "\n"


def _fmt_diff(row: pd.Series, metric: str) -> str:
    if pd.isna(row[f"{metric}_diff"]):
        return "n/a"
    if pd.isna(row[f"{metric}_lo"]):
        return f"{row[f'{metric}_diff']:+.3f}"
    return f"{row[f'{metric}_diff']:+.3f} [{row[f'{metric}_lo']:+.3f}, {row[f'{metric}_hi']:+.3f}]"


def _fmt_cost(metric: str, value: float) -> str:
    if pd.isna(value):
        return "n/a"
    if metric == "trainable_params":
        return f"{value / 1e6:.2f}M" if value >= 1e5 else f"{value:,.0f}"
    if metric == "forgetting":
        return f"{value:+.3f}"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def to_markdown(summary: pd.DataFrame) -> str:
    """The table a student pastes into a report."""
    header = ["arm", "seeds", LABELS[SELECTION], *(LABELS[m] for m in QUALITY), *(LABELS[m] for m in COST)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, r in summary.iterrows():
        quality = [f"{r[m]:.3f} [{r[f'{m}_lo']:.3f}, {r[f'{m}_hi']:.3f}]" for m in QUALITY]
        cost = [_fmt_cost(m, r[m]) for m in COST]
        selection = "n/a" if pd.isna(r[SELECTION]) else f"{r[SELECTION]:.3f}"
        lines.append("| " + " | ".join([r["arm"], str(r["n_seeds"]), selection, *quality, *cost]) + " |")
    sources = sorted(set(summary["ci"]))
    note = {
        "seeds": "t-interval over seeds (over splits when seeds share a data_seed), clipped to [0, 1]",
        "bootstrap": "stratified bootstrap of the test set (one seed)",
    }
    lines.append("")
    lines.append(
        "Cells: mean [95% CI]; CI = " + "; ".join(note[s] for s in sources) + ". val hard AU-PRC: mean over seeds, "
        "what a choice between arms may look at (test only after choosing)."
    )
    return "\n".join(lines) + "\n"


def plot(summary: pd.DataFrame, path: Path) -> None:
    """Grouped bars, easy vs hard, for AUROC and AU-PRC, with CI error bars."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    x = np.arange(len(summary))
    for ax, metric in zip(axes, ("auroc", "auprc")):
        for offset, kind, color in ((-0.2, "easy", "#4c9be8"), (0.2, "hard", "#e8744c")):
            col = f"test_{kind}_{metric}"
            err = np.vstack([summary[col] - summary[f"{col}_lo"], summary[f"{col}_hi"] - summary[col]])
            ax.bar(x + offset, summary[col], 0.4, yerr=err, capsize=3, color=color, label=f"{kind} negatives")
        ax.set_xticks(x, summary["arm"], rotation=25, ha="right")
        ax.set_title("AUROC" if metric == "auroc" else "AU-PRC")
        ax.set_ylim(0, 1.05)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("test score (mean, 95% CI)")
    axes[0].legend(loc="lower left")
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def comparison_markdown(runs: pd.DataFrame, summary: pd.DataFrame, reference: str | None = None) -> str:
    """comparison.md: the table, then every row paired by split against the reference (see ``paired``)."""
    return _markdown(summary, paired(runs, summary, reference), reference is None)


def _markdown(summary: pd.DataFrame, pairs: pd.DataFrame, chosen: bool) -> str:
    return to_markdown(summary) + ("\n" + paired_markdown(pairs, chosen) if not pairs.empty else "")


def write_comparison(
    paths: Iterable[Path | str],
    out_dir: Path | str,
    wandb_project: str | None = "delbind",
    reference: str | None = None,
) -> pd.DataFrame:
    """Write comparison.md / .csv / .png and comparison_paired.csv to ``out_dir``; log the table to wandb if the
    runs used it (and ``wandb_project`` is given). ``reference``: the row the others are paired against (None:
    the val-best row)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = load_runs(paths)
    summary = summarize(runs)
    pairs = paired(runs, summary, reference)
    write_text(out_dir / "comparison.md", _markdown(summary, pairs, reference is None))
    with atomic_write(out_dir / "comparison.csv") as tmp:
        summary.to_csv(tmp, index=False)
    with atomic_write(out_dir / "comparison_paired.csv") as tmp:
        pairs.to_csv(tmp, index=False)
    plot(summary, out_dir / "comparison.png")
    if wandb_project and logged_to_wandb(runs["run_dir"]):
        log_comparison(summary, out_dir, wandb_project, {"comparison_plot": out_dir / "comparison.png"})
    return summary


class WriteComparison(Callback):
    """Hydra callback: refresh the sweep's comparison after every job (so a sweep cut short or with a
    failed job still has one); when the sweep ends, write the course report beside it and log both to wandb.
    ``reference``: the row the paired table subtracts (``hydra.callbacks.comparison.reference=ecfp_rf``); None =
    the val-best row, which is also used, with a warning, while the reference has no run yet."""

    def __init__(self, reference: str | None = None) -> None:
        self.reference = reference

    def _write(self, sweep_dir: Path) -> str | None:
        """Write the comparison; returns the reference used."""
        try:
            write_comparison([sweep_dir], sweep_dir, wandb_project=None, reference=self.reference)
            return self.reference
        except ConfigError as e:
            log.warning("comparison: %s; paired against the val-best row instead", e)
            write_comparison([sweep_dir], sweep_dir, wandb_project=None)
            return None

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        try:
            self._write(Path(config.hydra.sweep.dir))
        except FileNotFoundError:  # no job has finished yet
            return

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from delbind.report import write_report  # the report reads runs through this module

        sweep_dir = Path(config.hydra.sweep.dir)
        reference = self._write(sweep_dir)
        # One wandb run for the sweep: the table, comparison.png, the cost-vs-quality chart and the report files.
        project = config.logger.get("wandb", {}).get("project", "delbind")
        write_report([sweep_dir], sweep_dir, project, reference=reference)
        print(f"comparison: {sweep_dir / 'comparison.md'}; report: {sweep_dir / 'report.html'}")
