"""The course's five questions, answered from the summary table: every claim is a number with its interval."""

from __future__ import annotations

import numpy as np
import pandas as pd

from delbind.comparison import LABELS, paired_difference

QUESTIONS = (
    "Did fine-tuning improve AUROC and AU-PRC, and by how much?",
    "How much longer did fine-tuning take, and was it worth it?",
    "Did fine-tuning help more on easy or on hard negatives?",
    "What might a model fine-tuned on small data forget?",
    "Will contrastive learning beat fine-tuning?",
)
QUALITY_ORDER = ("test_hard_auroc", "test_hard_auprc", "test_easy_auroc", "test_easy_auprc")


def arm_row(summary: pd.DataFrame, name: str) -> pd.Series | None:
    """The first summary row of arm ``name`` (rows are named "<arm> (<model>)")."""
    rows = summary[summary["arm"].str.split(" (", regex=False).str[0] == name]
    return None if rows.empty else rows.iloc[0]


def cell(row: pd.Series, metric: str) -> str:
    return f"{row[metric]:.3f} [{row[f'{metric}_lo']:.3f}, {row[f'{metric}_hi']:.3f}]"


def overlap(a: pd.Series, b: pd.Series, metric: str) -> bool:
    """Whether the two 95% intervals share any value (then the difference is not established)."""
    return bool(a[f"{metric}_lo"] <= b[f"{metric}_hi"] and b[f"{metric}_lo"] <= a[f"{metric}_hi"])


def _ci_note(*rows: pd.Series) -> str:
    kinds = {"seeds": "t-intervals over seeds", "bootstrap": "bootstrap intervals of one seed's test set"}
    seeds = "/".join(str(int(r["n_seeds"])) for r in rows)
    return f"(95% {', '.join(sorted({kinds[r['ci']] for r in rows}))}; seeds: {seeds})"


def paired_by_split(runs: pd.DataFrame, a: pd.Series, b: pd.Series, metric: str) -> dict[str, float] | None:
    """Row ``a`` minus row ``b`` on ``metric``, paired by split (comparison.paired_difference); None when the runs
    do not hold two splits both rows ran (then only the rows' own intervals can be compared)."""
    if not {"arm", "seed", metric} <= set(runs.columns):
        return None
    d = paired_difference(runs, a["arm"], b["arm"], metric)
    return None if np.isnan(d["lo"]) else d


def _verdict(ft: pd.Series, fz: pd.Series, metric: str, pair: dict[str, float] | None) -> int:
    """+1 / -1: fine-tuning is settled better / worse on ``metric``; 0: not told from noise. Paired by split when
    the runs allow (a split hard for one arm is hard for both, so pairing removes that swing), else by whether the
    two rows' intervals overlap."""
    if pair is not None:
        return 0 if pair["lo"] <= 0 <= pair["hi"] else (1 if pair["diff"] > 0 else -1)
    return 0 if overlap(ft, fz, metric) else (1 if ft[metric] > fz[metric] else -1)


def improvement(ft: pd.Series, fz: pd.Series, runs: pd.DataFrame | None = None) -> str:
    lines, clear = [], []
    for m in QUALITY_ORDER:
        pair = None if runs is None else paired_by_split(runs, ft, fz, m)
        sign = _verdict(ft, fz, m, pair)
        if pair is None:
            basis = "the intervals overlap" if sign == 0 else "the intervals do not overlap"
        else:
            n, p = int(pair["n_splits"]), pair["p"]
            basis = f"paired by split ({n}) {pair['diff']:+.3f} [{pair['lo']:+.3f}, {pair['hi']:+.3f}], p = {p:.3f}"
        outcome = {1: "a real gain", -1: "a real loss", 0: "not a difference these runs can tell from noise"}[sign]
        diff = f"{ft[m] - fz[m]:+.3f}"
        lines.append(f"- {LABELS[m]}: {cell(ft, m)} fine-tuned vs {cell(fz, m)} frozen, {diff}; {basis}: {outcome}.")
        if sign > 0:
            clear.append(LABELS[m])
    head = f"Fine-tuning clearly improved {', '.join(clear)}." if clear else "No clear improvement on any of the four."
    return f"{head} {_ci_note(ft, fz)}\n\n" + "\n".join(lines)


def best_arm(summary: pd.DataFrame, metric: str = "test_hard_auroc") -> str:
    best = summary.loc[summary[metric].idxmax()]
    tied = [r["arm"] for _, r in summary.iterrows() if r["arm"] != best["arm"] and overlap(best, r, metric)]
    others = f"; its interval overlaps those of {', '.join(tied)}" if tied else "; no other arm's interval overlaps it"
    return f"Across all arms the highest {LABELS[metric]} is {best['arm']}'s, {cell(best, metric)}{others}."


def cost(ft: pd.Series, fz: pd.Series, runs: pd.DataFrame | None = None) -> str:
    ratio = ft["train_runtime_s"] / fz["train_runtime_s"]
    mem = ft["peak_memory_mb"] / fz["peak_memory_mb"]
    text = (
        f"Fine-tuning trained for {ft['train_runtime_s']:,.1f} s against {fz['train_runtime_s']:,.1f} s frozen "
        f"({ratio:.1f}x the time, {ft['train_runtime_s'] - fz['train_runtime_s']:+,.1f} s), at {mem:.1f}x the peak "
        f"memory, training {ft['trainable_params']:,.0f} parameters instead of {fz['trainable_params']:,.0f}. "
    )
    m, gain = "test_hard_auroc", ft["test_hard_auroc"] - fz["test_hard_auroc"]
    pair = None if runs is None else paired_by_split(runs, ft, fz, m)
    sign = _verdict(ft, fz, m, pair)
    if pair is not None:
        gain = pair["diff"]
    noise = "the paired interval over splits" if pair is not None else "overlapping intervals"
    if sign > 0:
        return text + f"It bought {gain:+.3f} hard AUROC, outside the noise: worth it where hard negatives matter."
    if sign < 0:
        return text + f"Hard AUROC fell by {-gain:.3f}, outside the noise: by these numbers it was not worth it."
    return text + (
        f"The hard-AUROC difference ({gain:+.3f}) is inside {noise}, so by these numbers the extra "
        "time bought nothing measurable; more seeds or data could narrow the intervals and change that."
    )


def easy_or_hard(ft: pd.Series, fz: pd.Series, runs: pd.DataFrame | None = None) -> str:
    lines = []
    for metric in ("auroc", "auprc"):
        easy, hard = (f"test_{k}_{metric}" for k in ("easy", "hard"))
        g_easy, g_hard = ft[easy] - fz[easy], ft[hard] - fz[hard]
        better = "hard" if g_hard > g_easy else "easy"
        helped = max(g_easy, g_hard) > 0
        which = f"it helped more on {better}" if helped else f"it helped on neither, {better} lost less"
        pairs = {
            k: None if runs is None else paired_by_split(runs, ft, fz, m) for k, m in (("easy", easy), ("hard", hard))
        }
        noisy = [k for k, m in (("easy", easy), ("hard", hard)) if _verdict(ft, fz, m, pairs[k]) == 0]
        within = "the noise paired by split" if any(p is not None for p in pairs.values()) else "overlapping intervals"
        caveat = (
            f"but the {' and '.join(noisy)} gain{'s lie' if len(noisy) == 2 else ' lies'} within {within}, "
            "so the difference between them is not settled by these runs"
            if noisy
            else "and both gains are outside the noise"
        )
        name = "AUROC" if metric == "auroc" else "AU-PRC"
        lines.append(
            f"- {name}: {g_easy:+.3f} on easy, {g_hard:+.3f} on hard negatives: {which} "
            f"(by {abs(g_hard - g_easy):.3f}), {caveat}."
        )
    return "\n".join(lines) + "\n\nThe two AU-PRCs share one prevalence (as many easy as hard negatives per split)."


def forgetting(summary: pd.DataFrame, runs: pd.DataFrame) -> str:
    measured = summary.dropna(subset=["forgetting"]) if "forgetting" in summary else summary.iloc[:0]
    n_train = int(runs["n_train"].median()) if "n_train" in runs else None
    small = f"{n_train:,} training molecules" if n_train else "the training set"
    if measured.empty:
        return (
            "Not measured in these runs: no run recorded `forgetting` (the MLM loss of the trunk after minus before "
            "training; it needs a trunk with an MLM head). What is at risk when every weight fits "
            f"{small}: the pretrained trunk's general chemistry, i.e. how well it still predicts masked tokens."
        )
    lines = [
        f"- {r['arm']}: {r['forgetting']:+.3f} MLM loss (mean over {int(r['n_seeds'])} seed(s))"
        for _, r in measured.iterrows()
    ]
    worst = measured.loc[measured["forgetting"].idxmax()]
    return (
        f"Forgetting = the trunk's MLM loss after - before training (metrics.json); > 0 means it got worse at "
        f"predicting masked tokens while fitting {small}. Most: {worst['arm']} ({worst['forgetting']:+.3f}).\n\n"
        + "\n".join(lines)
    )


def contrastive(summary: pd.DataFrame, ft: pd.Series, fz: pd.Series | None) -> str:
    rival = next((r for _, r in summary.iterrows() if r["arm"].startswith("contrastive")), None)
    if rival is not None:
        m = "test_hard_auroc"
        verdict = "the intervals overlap" if overlap(rival, ft, m) else "the intervals do not overlap"
        return f"Measured: {rival['arm']} {cell(rival, m)} vs fine-tuning {cell(ft, m)} hard AUROC; {verdict}."
    gap = ft["test_easy_auroc"] - ft["test_hard_auroc"]
    split = ft["test_easy_auroc_lo"] > ft["test_hard_auroc_hi"]
    text = (
        f"Not measured (no contrastive arm). Fine-tuned, easy AUROC {cell(ft, 'test_easy_auroc')} vs hard "
        f"{cell(ft, 'test_hard_auroc')}: a gap of {gap:+.3f}, "
    )
    if split and gap > 0:
        text += (
            "with intervals that do not overlap. Telling binders from look-alikes is where the model is weak; a "
            "contrastive objective on binder / hard-negative pairs targets exactly that, so it has room to beat "
            "fine-tuning on hard negatives (room, not evidence: it has to be run)."
        )
    else:
        text += (
            "within overlapping intervals. These runs give no evidence that hard negatives are the bottleneck, "
            "so they offer no particular reason to expect a contrastive objective to beat fine-tuning."
        )
    if fz is not None:
        fz_gap = fz["test_easy_auroc"] - fz["test_hard_auroc"]
        text += f" For comparison, the frozen trunk's easy-hard gap is {fz_gap:+.3f}."
    return text


def answers(summary: pd.DataFrame, runs: pd.DataFrame) -> list[tuple[str, str]]:
    """(question, answer in markdown) for the five questions; an answer says what is missing when an arm is."""
    ft, fz = arm_row(summary, "finetune"), arm_row(summary, "frozen")
    if ft is None or fz is None:
        missing = " and ".join(n for n, r in (("finetune", ft), ("frozen", fz)) if r is None)
        text = f"These runs have no {missing} arm, so fine-tuning cannot be compared with the frozen trunk."
        return [(q, text) for q in QUESTIONS[:3]] + [
            (QUESTIONS[3], forgetting(summary, runs)),
            (QUESTIONS[4], text if ft is None else contrastive(summary, ft, fz)),
        ]
    return [
        (QUESTIONS[0], improvement(ft, fz, runs) + "\n\n" + best_arm(summary)),
        (QUESTIONS[1], cost(ft, fz, runs)),
        (QUESTIONS[2], easy_or_hard(ft, fz, runs)),
        (QUESTIONS[3], forgetting(summary, runs)),
        (QUESTIONS[4], contrastive(summary, ft, fz)),
    ]
