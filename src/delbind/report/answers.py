"""The course's five questions, answered from the comparison: every claim is a paired verdict with its numbers (the
difference, its CI, the p and the verdict word), or says plainly that it is not a paired test."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from delbind.comparison import LABELS, SELECTION, reference_row
from delbind.comparison.verdicts import resolvable_difference
from delbind.report.data import Report
from delbind.report.paired import Paired, claim, p_text, paired, scope_note, word

QUESTIONS = (
    "Did fine-tuning improve AUROC and AU-PRC, and by how much?",
    "How much longer did fine-tuning take, and was it worth it?",
    "Did fine-tuning help more on easy or on hard negatives?",
    "What might a model fine-tuned on small data forget?",
    "Will contrastive learning beat fine-tuning?",
)
QUALITY_ORDER = ("test_hard_auroc", "test_hard_auprc", "test_easy_auroc", "test_easy_auprc")
CI_KINDS = {
    "pooled": "bootstrap intervals over the pooled out-of-fold molecules",
    "splits": "t-intervals over splits",
    "bootstrap": "bootstrap intervals of one run's test set",
}


def arm_row(summary: pd.DataFrame, name: str) -> pd.Series | None:
    """The first summary row of arm ``name`` (rows are named "<arm> (<model>)")."""
    rows = summary[summary["arm"].str.split(" (", regex=False).str[0] == name]
    return None if rows.empty else rows.iloc[0]


def cell(row: pd.Series, metric: str) -> str:
    if pd.isna(row[f"{metric}_lo"]):
        return f"{row[metric]:.3f}"
    return f"{row[metric]:.3f} [{row[f'{metric}_lo']:.3f}, {row[f'{metric}_hi']:.3f}]"


def overlap(a: pd.Series, b: pd.Series, metric: str) -> bool:
    """Whether the two 95% intervals share any value (NaN bounds: they are taken to)."""
    return not bool(a[f"{metric}_lo"] > b[f"{metric}_hi"] or b[f"{metric}_lo"] > a[f"{metric}_hi"])


def unpaired(a: pd.Series, b: pd.Series, metric: str) -> str:
    """The rows' difference with their own intervals, labelled as what it is."""
    how = "the intervals overlap" if overlap(a, b, metric) else "the intervals do not overlap"
    return f"difference {a[metric] - b[metric]:+.3f} of the rows' own figures, not a paired test ({how})"


def _ci_note(ft: pd.Series, fz: pd.Series) -> str:
    kinds = ", ".join(sorted({CI_KINDS[r["ci"]] for r in (ft, fz)}))
    size = ", ".join(
        f"{who} {int(r['n_units'])} x {int(r['n_repeats'])}" for who, r in (("fine-tuned", ft), ("frozen", fz))
    )
    return f"Rows: 95% {kinds}; folds or splits x repeats: {size}."


def _tests(report: Report, ft: pd.Series, fz: pd.Series) -> dict[str, Paired | None]:
    """Fine-tuned minus frozen on the four test metrics: the verdict table paired against frozen (hard), the same
    tests for this pair alone (easy)."""
    pairs = report.pairs_against(fz["arm"])
    return {m: paired(report, pairs, ft["arm"], fz["arm"], m) for m in QUALITY_ORDER}


def improvement(report: Report, ft: pd.Series, fz: pd.Series, tests: dict[str, Paired | None]) -> str:
    lines, by_verdict = [], {}
    for m in QUALITY_ORDER:
        test = tests[m]
        basis = claim(test) if test is not None else unpaired(ft, fz, m)
        lines.append(f"- {LABELS[m]}: {cell(ft, m)} fine-tuned vs {cell(fz, m)} frozen; {basis}.")
        by_verdict.setdefault(test.verdict if test else "no paired test", []).append(LABELS[m])
    order = ("better", "worse", "equivalent", "can't tell", "no paired test")
    found = "; ".join(f"{v} on {', '.join(by_verdict[v])}" for v in order if v in by_verdict)
    n = len(report.pairs_against(fz["arm"]))
    head = (
        f"Paired verdicts, fine-tuned minus frozen: {found}. Hard metrics: the verdict table paired against "
        f"frozen, Holm-adjusted over its {n} row{'s' * (n != 1)}; easy metrics: the same paired tests for this pair. "
        f"Equivalent: within +-{report.margin} (two one-sided tests). {_ci_note(ft, fz)}"
        + scope_note(list(tests.values()))
    )
    return head + "\n\n" + "\n".join(lines)


def best_arm(report: Report) -> str:
    """The arm a choice on validation takes (highest mean val hard AU-PRC); its test figures only follow."""
    summary = report.summary
    chosen = reference_row(summary, None)
    if chosen is None:
        return "No run recorded val hard AU-PRC, so no arm is named best: the report never chooses by test."
    row = summary[summary["arm"] == chosen].iloc[0]
    text = (
        f"Chosen on validation, the best arm is {chosen} (the highest mean {LABELS[SELECTION]}, "
        f"{row[SELECTION]:.3f}); as a consequence of that choice, not a ground for it, its test hard AUROC is "
        f"{cell(row, 'test_hard_auroc')} and hard AU-PRC {cell(row, 'test_hard_auprc')}."
    )
    pairs = report.pairs_against(chosen)
    if pairs.empty:
        return text
    counts = pairs["test_hard_auroc_verdict"].value_counts()
    tally = ", ".join(f"{n} {v}" for v, n in counts.items())
    about = "" if (pairs.get("scope", pd.Series("these models")) == "arms").all() else " (these models: one repeat)"
    return text + f" Every other arm paired against it on hard AUROC (that arm minus it): {tally}{about}."


def cost(report: Report, ft: pd.Series, fz: pd.Series, test: Paired | None) -> str:
    ratio = ft["train_runtime_s"] / fz["train_runtime_s"]
    mem = ft["peak_memory_mb"] / fz["peak_memory_mb"]
    text = (
        f"Fine-tuning trained for {ft['train_runtime_s']:,.1f} s against {fz['train_runtime_s']:,.1f} s frozen "
        f"({ratio:.1f}x the time, {ft['train_runtime_s'] - fz['train_runtime_s']:+,.1f} s), at {mem:.1f}x the peak "
        f"memory, training {ft['trainable_params']:,.0f} parameters instead of {fz['trainable_params']:,.0f}. "
    )
    if test is None:
        return text + (
            "Hard AUROC has no paired test here (the rows share fewer than two folds and no complete k-fold repeat): "
            f"{unpaired(ft, fz, 'test_hard_auroc')}. Whether the extra time bought anything is not settled: a "
            "complete k-fold repeat (or two shared folds) would give a paired test."
        )
    numbers = f"{test.diff:+.3f} [{test.lo:+.3f}, {test.hi:+.3f}] (Holm p {p_text(test.p)}, {word(test)})"
    note, whom = scope_note([test]), "" if test.scope == "arms" else " for these models"
    if test.verdict == "better":
        return text + f"Hard AUROC rose by {numbers}: worth it{whom} where hard negatives matter." + note
    if test.verdict == "worse":
        return text + f"Hard AUROC changed by {numbers}: by these numbers it was not worth it{whom}." + note
    if test.verdict == "equivalent":
        within = f"within the practical margin +-{report.margin}: the extra time bought nothing of practical size."
        return text + f"Hard AUROC changed by {numbers}, {within}" + note
    resolves = resolvable_difference(report.pairs_against(fz["arm"]), alpha=report.alpha)
    size = "" if np.isnan(resolves) else f"; these runs resolve about {resolves:.3f} with 80% power"
    return text + (
        f"Hard AUROC changed by {numbers}, not told from noise{size}: by these numbers the extra time bought "
        "nothing measurable; more folds or repeats could narrow the interval and change that."
    )


def _gain(test: Paired | None, ft: pd.Series, fz: pd.Series, metric: str) -> tuple[float, str]:
    if test is None:
        return ft[metric] - fz[metric], "not a paired test"
    return test.diff, f"paired: {word(test)}"


def easy_or_hard(ft: pd.Series, fz: pd.Series, tests: dict[str, Paired | None]) -> str:
    return "\n".join(_moves(ft, fz, tests)) + (
        "\n\nEach change is tested against zero; the gap between the easy and the hard change is not itself tested "
        "(different molecules). The two AU-PRCs share one prevalence (as many easy as hard negatives per split)."
    )


def _moves(ft: pd.Series, fz: pd.Series, tests: dict[str, Paired | None]) -> list[str]:
    """Per metric, the change (``ft`` minus ``fz``) on easy and on hard negatives, and which one its tests settle."""
    lines = []
    for metric in ("auroc", "auprc"):
        easy, hard = (f"test_{k}_{metric}" for k in ("easy", "hard"))
        (g_easy, v_easy), (g_hard, v_hard) = _gain(tests[easy], ft, fz, easy), _gain(tests[hard], ft, fz, hard)
        better = "hard" if g_hard > g_easy else "easy"
        helped = max(g_easy, g_hard) > 0
        which = f"it helped more on {better}" if helped else f"it helped on neither, {better} lost less"
        pair = (("easy", tests[easy]), ("hard", tests[hard]))
        settled = [k for k, t in pair if t is not None and t.verdict in ("better", "worse")]
        caveat = (
            "both changes are settled by the paired tests"
            if len(settled) == 2
            else f"only the {settled[0]} change is settled by its paired test"
            if settled
            else "neither change is settled by a paired test, so which helped more is not known from these runs"
        )
        name = "AUROC" if metric == "auroc" else "AU-PRC"
        lines.append(
            f"- {name}: {g_easy:+.3f} on easy ({v_easy}), {g_hard:+.3f} on hard negatives ({v_hard}): {which} "
            f"(by {abs(g_hard - g_easy):.3f}); {caveat}."
        )
    return lines


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
        f"- {r['arm']}: {r['forgetting']:+.3f} MLM loss (mean over {int((runs['arm'] == r['arm']).sum())} run(s))"
        for _, r in measured.iterrows()
    ]
    worst = measured.loc[measured["forgetting"].idxmax()]
    return (
        f"Forgetting = the trunk's MLM loss after - before training (metrics.json); > 0 means it got worse at "
        f"predicting masked tokens while fitting {small}. Most: {worst['arm']} ({worst['forgetting']:+.3f}).\n\n"
        + "\n".join(lines)
    )


@dataclass(frozen=True)
class TermEffect:
    """The contrastive row against its twin without the term (lp_ft, else finetune), on the four test metrics."""

    rival: pd.Series
    base: pd.Series
    tests: dict[str, Paired | None]

    @classmethod
    def of(cls, report: Report) -> TermEffect | None:
        rival = next((r for _, r in report.summary.iterrows() if r["arm"].startswith("contrastive")), None)
        base = next((r for name in ("lp_ft", "finetune") if (r := arm_row(report.summary, name)) is not None), None)
        if rival is None or base is None:
            return None
        pairs = report.pairs_against(base["arm"])
        return cls(rival, base, {m: paired(report, pairs, rival["arm"], base["arm"], m) for m in QUALITY_ORDER})

    def moves(self) -> str:
        return f"The contrastive term ({self.rival['arm']} minus {self.base['arm']}):\n\n" + "\n".join(
            _moves(self.rival, self.base, self.tests)
        )


def contrastive(effect: TermEffect | None, ft: pd.Series | None, fz: pd.Series | None) -> str:
    """The contrastive row's paired verdicts against its twin; without one, what the fine-tuned row's easy-hard gap
    says about the room for it (``ft`` may be None only when there is an effect)."""
    if effect is not None:
        rival, base = effect.rival, effect.base
        twin = "lp_ft, the same recipe without the term" if base["arm"].startswith("lp_ft") else "fine-tuning"
        lines = [f"Measured: {rival['arm']} minus {twin} ({base['arm']}), paired against it:", ""]  # a list follows
        for m in QUALITY_ORDER:
            test = effect.tests[m]
            basis = claim(test) if test is not None else unpaired(rival, base, m)
            lines.append(f"- {LABELS[m]}: {cell(rival, m)} vs {cell(base, m)}; {basis}.")
        return "\n".join(lines) + "\n\n" + effect.moves()
    gap = ft["test_easy_auroc"] - ft["test_hard_auroc"]
    split = ft["test_easy_auroc_lo"] > ft["test_hard_auroc_hi"]
    text = (
        f"Not measured (no contrastive arm). Fine-tuned, easy AUROC {cell(ft, 'test_easy_auroc')} vs hard "
        f"{cell(ft, 'test_hard_auroc')}: a gap of {gap:+.3f} (the rows' own intervals, different molecules: not a "
        "paired test), "
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


def answers(report: Report) -> list[tuple[str, str]]:
    """(question, answer in markdown) for the five questions; an answer says what is missing when an arm is."""
    summary = report.summary
    ft, fz = arm_row(summary, "finetune"), arm_row(summary, "frozen")
    effect = TermEffect.of(report)
    if ft is None or fz is None:
        missing = " and ".join(n for n, r in (("finetune", ft), ("frozen", fz)) if r is None)
        text = f"These runs have no {missing} arm, so fine-tuning cannot be compared with the frozen trunk."
        return [(q, text) for q in QUESTIONS[:3]] + [
            (QUESTIONS[3], forgetting(summary, report.runs)),
            (QUESTIONS[4], text if effect is None and ft is None else contrastive(effect, ft, fz)),
        ]
    tests = _tests(report, ft, fz)
    return [
        (QUESTIONS[0], improvement(report, ft, fz, tests) + "\n\n" + best_arm(report)),
        (QUESTIONS[1], cost(report, ft, fz, tests["test_hard_auroc"])),
        (QUESTIONS[2], easy_or_hard(ft, fz, tests) + ("" if effect is None else "\n\n" + effect.moves())),
        (QUESTIONS[3], forgetting(summary, report.runs)),
        (QUESTIONS[4], contrastive(effect, ft, fz)),
    ]
