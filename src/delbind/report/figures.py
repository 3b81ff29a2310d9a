"""The report's figures, each a matplotlib Figure built from the run files (None when there is nothing to draw)."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402
from scipy import stats  # noqa: E402
from sklearn.metrics import precision_recall_curve, roc_curve  # noqa: E402

from delbind.evaluation import binary_metrics, draw_loss_curve  # noqa: E402
from delbind.report.data import Report, heldout_kd, predictions, short_labels, where  # noqa: E402
from delbind.rundirs import log_history  # noqa: E402

KIND_COLORS = {"easy": "#4c9be8", "hard": "#e8744c"}  # as comparison.png
MARKERS = "osD^vP*Xh<>p"
TITLE_WIDTH = 34  # characters a panel title is wrapped at (panels are ~3.3-4.6 inches wide)


def wrapped(text: str, width: int = TITLE_WIDTH) -> str:
    """Each line of ``text`` wrapped at ``width`` characters (long row labels in panel titles)."""
    return "\n".join(textwrap.fill(line, width) for line in text.split("\n"))


def _grid(n: int, ncols: int, size: tuple[float, float]) -> tuple[Figure, np.ndarray]:
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes


def loss_curves(report: Report) -> Figure | None:
    """One panel per arm with a Trainer history (its run of the matched fold, else its first run with a log:
    Report.logged_runs), side by side; each panel names the fold and repeat it is."""
    first = report.logged_runs()
    histories = {arm: log_history(run["run_dir"]) for arm, run in first.iterrows()}
    if not histories:
        return None
    short, _ = short_labels(list(report.summary["arm"]))  # named as every other chart names the arms
    fig, axes = _grid(len(histories), min(3, len(histories)), (4.6, 3.6))
    for ax, (arm, history) in zip(axes.flat, histories.items()):
        draw_loss_curve(ax, history, wrapped(f"{short[arm]}\n{where(first.loc[arm])}"))
        ax.title.set_fontsize(9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def roc_pr_curves(report: Report) -> Figure | None:
    """Per arm (its run of the matched fold: Report.first_runs), ROC and PR curves on the test sets, easy and hard
    negatives overlaid."""
    first = report.first_runs()
    first = first[[(Path(d) / "predictions.parquet").is_file() for d in first["run_dir"]]]
    if first.empty:
        return None
    short, _ = short_labels(list(first.index))
    fig, axes = _grid(2 * len(first), 4, (3.3, 3.3))
    for i, (arm, run) in enumerate(first.iterrows()):
        roc_ax, pr_ax = axes.flat[2 * i], axes.flat[2 * i + 1]
        preds = predictions(run["run_dir"])
        for kind, color in KIND_COLORS.items():
            part = preds[preds["eval_set"] == f"test_{kind}"]
            y, s = part["label"].to_numpy(), part["score"].to_numpy()
            scores = binary_metrics(y, s)
            fpr, tpr, _ = roc_curve(y, s)
            roc_ax.plot(fpr, tpr, color=color, label=f"{kind} {scores['auroc']:.3f}")
            precision, recall, _ = precision_recall_curve(y, s)
            pr_ax.step(recall, precision, where="post", color=color, label=f"{kind} {scores['auprc']:.3f}")
            pr_ax.axhline(y.mean(), color=color, lw=0.8, ls=":")  # a random ranking's AU-PRC: the prevalence
        roc_ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
        _axes(roc_ax, wrapped(f"{short[arm]}\nROC ({where(run)})"), "false positive rate", "true positive rate",
              "AUROC")  # fmt: skip
        _axes(pr_ax, wrapped(f"{short[arm]}\nprecision-recall"), "recall", "precision", "AU-PRC")
    fig.tight_layout()
    return fig


def _axes(ax: plt.Axes, title: str, xlabel: str, ylabel: str, legend: str) -> None:
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel, xlim=(0, 1), ylim=(0, 1.02))
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend(title=legend, fontsize=8, title_fontsize=8, loc="lower right")


def cost_quality(summary: pd.DataFrame) -> Figure:
    """Train time (log x) against test hard AUROC with its 95% CI, one marker per arm, named in a legend beside it."""
    fig, ax = plt.subplots(figsize=(8.6, 4.6), layout="constrained")
    ok = summary[summary["train_runtime_s"] > 0]
    short, common = short_labels(list(ok["arm"]))
    colors = plt.get_cmap("tab10")
    for i, (_, r) in enumerate(ok.iterrows()):
        y = r["test_hard_auroc"]
        err = [[y - r["test_hard_auroc_lo"]], [r["test_hard_auroc_hi"] - y]]
        ax.errorbar(r["train_runtime_s"], y, yerr=err, fmt=MARKERS[i % len(MARKERS)], capsize=3, ms=6,
                    color=colors(i % 10), label=short[r["arm"]])  # fmt: skip
    ax.axhline(0.5, color="grey", lw=0.8, ls=":", label="random ranking")
    ax.set_xscale("log")
    lo, hi = ok["train_runtime_s"].min(), ok["train_runtime_s"].max()
    ax.set_xlim(lo / 1.5, hi * 1.5)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))  # 1, 2, 5, 10, 20, 50 ... s
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # 2, 30, 300 s rather than 2x10^0
    ax.xaxis.set_minor_formatter(NullFormatter())  # minor ticks unlabelled: their labels collide
    ax.set(xlabel="train time (s, log scale; mean over seeds)", ylabel="test hard AUROC (mean, 95% CI)")
    ax.set_title("Cost vs quality on hard negatives")
    ax.grid(alpha=0.3, which="both")
    legend_title = wrapped(f"arm (unless shown: {common})", 30) if common else "arm"
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, title=legend_title, title_fontsize=8)
    return fig


def forgetting(report: Report) -> Figure | None:
    """MLM loss after - before fine-tuning per arm, each seed a dot; None when no run measured it."""
    if "forgetting" not in report.runs or report.runs["forgetting"].isna().all():
        return None
    measured = report.runs.dropna(subset=["forgetting"])
    arms = list(dict.fromkeys(measured["arm"]))
    short, _ = short_labels(arms)
    fig, ax = plt.subplots(figsize=(6.4, 1.2 + 0.42 * len(arms)), layout="constrained")
    means = [measured.loc[measured["arm"] == a, "forgetting"].mean() for a in arms]
    ax.barh(range(len(arms)), means, color="#999", alpha=0.6)  # one row per arm: its name never collides
    for i, arm in enumerate(arms):
        values = measured.loc[measured["arm"] == arm, "forgetting"]
        ax.plot(values, [i] * len(values), "o", color="black", ms=4)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(range(len(arms)), [short[a] for a in arms], fontsize=8)
    ax.invert_yaxis()  # the comparison's row order, top down
    ax.set(xlabel="MLM loss after - before (dots: seeds / folds)", title="Forgetting: masked-token loss after - before")
    ax.grid(axis="x", alpha=0.3)
    return fig


def heldout_kd_scatter(report: Report) -> Figure | None:
    """Per arm (its run of the matched fold): held-out score vs -log10 Kd with the Spearman rho; None without Kd."""
    frames = {arm: heldout_kd(run["run_dir"]) for arm, run in report.first_runs().iterrows()}
    frames = {arm: f[f["eval_set"].str.endswith("_all") & (f["kd"] > 0)] for arm, f in frames.items() if len(f)}
    frames = {arm: f for arm, f in frames.items() if len(f)}
    if not frames:
        return None
    short, _ = short_labels(list(frames))
    fig, axes = _grid(len(frames), min(3, len(frames)), (4.4, 3.6))
    for ax, (arm, frame) in zip(axes.flat, frames.items()):
        for eval_set, part in frame.groupby("eval_set"):
            x = -np.log10(part["kd"].to_numpy(float))
            rho = stats.spearmanr(part["score"], x).statistic
            label = f"{eval_set.removeprefix('heldout_').removesuffix('_all')} (rho {rho:.2f}, n {len(part)})"
            ax.scatter(x, part["score"], s=12, alpha=0.7, label=label)
        ax.set(xlabel="-log10 Kd (nM)", ylabel="P(binder)", title=wrapped(short[arm]))
        ax.title.set_fontsize(9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
