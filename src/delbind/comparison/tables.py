"""The comparison as a reader sees it: the summary table, the paired verdicts, and the easy-vs-hard bar chart."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from delbind.comparison.runs import COST, COST_WHERE_MEASURED, LABELS, QUALITY, SELECTION, VERDICT  # noqa: E402
from delbind.comparison.verdicts import METHODS  # noqa: E402
from delbind.io import atomic_write  # noqa: E402

CI_NOTE = {
    "pooled": "stratified bootstrap over the molecules of the pooled out-of-fold predictions (each molecule once)",
    "splits": "t-interval over splits, clipped to [0, 1]",
    "bootstrap": "stratified bootstrap of the one test set",
}


def _fmt_cost(metric: str, value: float) -> str:
    if pd.isna(value):
        return "n/a"
    if metric == "trainable_params":
        return f"{value / 1e6:.2f}M" if value >= 1e5 else f"{value:,.0f}"
    if metric == "forgetting":
        return f"{value:+.3f}"
    if metric == "representation_drift":
        return f"{value:.3f}"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def _cell(r: pd.Series, m: str) -> str:
    if pd.isna(r[m]):
        return "n/a"
    return f"{r[m]:.3f}" if pd.isna(r[f"{m}_lo"]) else f"{r[m]:.3f} [{r[f'{m}_lo']:.3f}, {r[f'{m}_hi']:.3f}]"


def _size(r: pd.Series) -> str:
    n_pos, n_neg = r.get("n_test_hard_binders"), r.get("n_test_hard_negatives")
    return "n/a" if n_pos is None or pd.isna(n_pos) else f"{int(n_pos)} / {int(n_neg)}"


def to_markdown(summary: pd.DataFrame) -> str:
    """The table a student pastes into a report."""
    cost = COST + [m for m in COST_WHERE_MEASURED if m in summary and summary[m].notna().any()]
    header = ["arm", "evaluation", LABELS[SELECTION], *(LABELS[m] for m in QUALITY), "hard set (binders / negatives)"]
    header += [LABELS[m] for m in cost]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, r in summary.iterrows():
        how = f"{r['design']}: {int(r.get('units_per_repeat', r['n_units']))} x {int(r['n_repeats'])}"
        selection = "n/a" if pd.isna(r[SELECTION]) else f"{r[SELECTION]:.3f}"
        cells = [
            r["arm"],
            how,
            selection,
            *(_cell(r, m) for m in QUALITY),
            _size(r),
            *(_fmt_cost(m, r[m]) for m in cost),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    notes = "; ".join(CI_NOTE[s] for s in sorted(set(summary["ci"])))
    repeated = (summary["ci"] == "pooled") & (summary["n_repeats"] > 1)
    if repeated.any():  # the interval of one fit, averaged: the paired table's repeats test is what counts retraining
        notes += (
            "; with several repeats, each repeat's pooled figure and interval averaged over the repeats (molecule "
            "sampling only: the paired verdicts below add the spread between repeats)"
        )
    lines += [
        "",
        f"Cells: figure [95% CI]; CI = {notes}. evaluation: how test molecules were drawn (folds or splits x "
        "repeats). val hard AU-PRC: mean over folds, what a choice between arms may look at (test only after "
        "choosing)."
        + (
            " drift (1 - CKA): 1 - linear CKA between the trunk's pooled embeddings of fixed held-out molecules "
            "before and after training, any trunk, averaged over the runs that measured it (0: unchanged; n/a: no "
            "trunk, or runs kept before it was measured; the report's forgetting answer counts them); forgetting "
            "(MLM loss) needs an MLM head."
            if "representation_drift" in cost
            else ""
        ),
    ]
    return "\n".join(lines) + "\n"


def _diff(r: pd.Series, m: str) -> str:
    if pd.isna(r[f"{m}_diff"]):
        return "n/a"
    if pd.isna(r[f"{m}_lo"]):
        return f"{r[f'{m}_diff']:+.3f}"
    return f"{r[f'{m}_diff']:+.3f} [{r[f'{m}_lo']:+.3f}, {r[f'{m}_hi']:+.3f}]"


def _p(value: float) -> str:
    return "n/a" if pd.isna(value) else "<0.001" if value < 0.001 else f"{value:.3f}"


# The paired table's "test" cell: which test a row's verdicts come from (the legend under the table says more).
TEST_CELL = {"repeats": "repeats", "pooled": "pooled, 1 repeat", "one_fold": "one fold", "corrected_t": "corrected t"}
TEST_NOTE = {
    "repeats": "*repeats*: DeLong (AUROC) / paired bootstrap (AU-PRC) on each repeat's pooled out-of-fold molecules, "
    "plus the spread of that difference between repeats (retrained models), so the verdict is about the arms",
    "pooled": "*pooled, 1 repeat*: DeLong / paired bootstrap on the one repeat's pooled out-of-fold molecules; it "
    "counts molecule sampling only, so its verdict is about these fitted models, not the arms (another init seed "
    "can move it by more than its interval)",
    "one_fold": "*one fold*: DeLong / paired bootstrap on one shared fold's molecules, about these fitted models",
    "corrected_t": "*corrected t*: Nadeau-Bengio corrected resampled t over the shared folds or splits",
}


def verdict_cell(r: pd.Series, metric: str, margin: float) -> str:
    """``**better**``, with "(these models)" when it judges one pair of fitted models, and a real difference inside
    the margin said as such (``**equivalent**, higher but inside +-0.02``)."""
    cell = f"**{r[f'{metric}_verdict']}**"
    if r[f"{metric}_verdict"] == "equivalent" and bool(r.get(f"{metric}_significant", False)):
        cell += f", {'higher' if r[f'{metric}_diff'] > 0 else 'lower'} but inside +-{margin}"
    return cell + (" (these models)" if r.get("scope") == "these models" else "")


def paired_markdown(
    pairs: pd.DataFrame, chosen: bool, margin: float, alpha: float, resolvable: float, twins: str | None = None
) -> str:
    """The verdict table under the main one; ``chosen``: the reference was the val-best row, not given; ``twins``:
    each row was paired with the same recipe on that model."""
    if pairs.empty:
        return ""
    reference = pairs["reference"].iloc[0]
    why = "the row with the highest mean val hard AU-PRC" if chosen else "the reference asked for"
    heading = (
        f"Each row paired against its twin on **{twins}** (ref: the same arm, pooling and checkpoint rule on that "
        "trunk), on the same molecules."
        if twins
        else f"Paired against **{reference}** ({why}), on the same molecules."
    )
    header = ["arm", "test", "repeats x units"]
    for m in VERDICT:
        header += [f"{LABELS[m]} - ref", "p (Holm)", "verdict"]
    header.append(f"{LABELS[SELECTION]} - ref")
    lines = [
        heading,
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    methods = {text: key for key, text in METHODS.items()}
    for _, r in pairs.iterrows():
        repeats = int(r["n_repeats"]) if pd.notna(r.get("n_repeats")) else 1
        cells = [r["arm"], TEST_CELL[methods[r["method"]]], f"{repeats} x {int(r['n_units'])}"]
        for m in VERDICT:
            cells += [_diff(r, m), _p(r[f"{m}_p_holm"]), verdict_cell(r, m, margin)]
        cells.append(_diff(r, SELECTION))
        lines.append("| " + " | ".join(cells) + " |")
    resolves = "n/a" if np.isnan(resolvable) else f"{resolvable:.3f}"
    rows = "the 1 row (Holm changes nothing)" if len(pairs) == 1 else f"the {len(pairs)} rows"
    tests = "; ".join(TEST_NOTE[methods[m]] for m in dict.fromkeys(pairs["method"]))
    lines += [
        "",
        f"Cells: difference [{1 - alpha:.0%} CI]; p: two-sided, Holm-adjusted over {rows}. Verdict: "
        f"*equivalent* when two one-sided tests put the difference within +-{margin} (Holm-adjusted p < {alpha}); "
        f"else *better* / *worse* when the adjusted p < {alpha}; else *can't tell* at this size. At this size a "
        f"hard-AUROC difference of {resolves} is found with 80% power (the median over rows of each test's own se "
        f"and df, at Holm's alpha / {len(pairs)}). Tests: {tests}. "
        "val hard AU-PRC - ref: mean over the shared folds [corrected t interval], what a choice between rows reads.",
    ]
    return "\n".join(lines) + "\n"


def plot(summary: pd.DataFrame, path: Path) -> None:
    """Grouped bars, easy vs hard, for AUROC and AU-PRC, with CI error bars."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    x = np.arange(len(summary))
    for ax, metric in zip(axes, ("auroc", "auprc")):
        for offset, kind, color in ((-0.2, "easy", "#4c9be8"), (0.2, "hard", "#e8744c")):
            col = f"test_{kind}_{metric}"
            lo, hi = summary[f"{col}_lo"].fillna(summary[col]), summary[f"{col}_hi"].fillna(summary[col])
            err = np.vstack([summary[col] - lo, hi - summary[col]])
            ax.bar(x + offset, summary[col], 0.4, yerr=err, capsize=3, color=color, label=f"{kind} negatives")
        ax.set_xticks(x, summary["arm"], rotation=25, ha="right")
        ax.set_title("AUROC" if metric == "auroc" else "AU-PRC")
        ax.set_ylim(0, 1.05)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("test score (95% CI)")
    axes[0].legend(loc="lower left")
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
