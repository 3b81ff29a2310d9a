"""The course's five questions, answered from the comparison: every claim is a paired verdict with its numbers (the
difference, its CI, the p and the verdict word), or says plainly that it is not a paired test."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from delbind.comparison import LABELS, SELECTION, reference_row
from delbind.comparison.verdicts import resolvable_difference
from delbind.report.data import Report, short_labels
from delbind.report.forgetting import forgetting
from delbind.report.paired import Paired, evidence, paired, word

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


def _tests(report: Report, ft: pd.Series, fz: pd.Series) -> dict[str, Paired | None]:
    """Fine-tuned minus frozen on the four test metrics: the verdict table paired against frozen (hard), the same
    tests for this pair alone (easy)."""
    pairs = report.pairs_against(fz["arm"])
    return {m: paired(report, pairs, ft["arm"], fz["arm"], m) for m in QUALITY_ORDER}


def _change(test: Paired | None, a: pd.Series, b: pd.Series, metric: str, marked: bool = False) -> str:
    """``+0.079 (**better**)``, or the rows' own difference marked as no paired test. ``marked``: the verdict says
    ``(these models)`` when it judges one repeat's fits (tables; a sentence has the scope sentence instead)."""
    if test is None:
        return f"{a[metric] - b[metric]:+.3f} (no paired test)"
    return f"{test.diff:+.3f} ({word(test) if marked else f'**{test.verdict}**'})"


def _table(a: pd.Series, b: pd.Series, tests: dict[str, Paired | None], names: tuple[str, str], family: int) -> str:
    """The four paired figures of ``a`` minus ``b``; ``family``: the arms the hard p were Holm-adjusted over."""
    return evidence([(LABELS[m], cell(a, m), cell(b, m), tests[m]) for m in QUALITY_ORDER], names, family)


def _scope(tests: list[Paired | None]) -> str:
    """The sentence that says what the verdicts speak of."""
    found = [t for t in tests if t is not None]
    if found and all(t.scope == "arms" for t in found):
        return f"Over {max(t.repeats for t in found)} repeats, these verdicts speak of the recipes."
    return "From one repeat, these verdicts judge these fitted models, not the recipes."


def improvement(report: Report, ft: pd.Series, fz: pd.Series, tests: dict[str, Paired | None]) -> str:
    hard = [f"{LABELS[m]} {fz[m]:.3f} -> {ft[m]:.3f}, {_change(tests[m], ft, fz, m)}" for m in QUALITY_ORDER[:2]]
    easy = [f"{LABELS[m].split()[1]} {_change(tests[m], ft, fz, m)}" for m in QUALITY_ORDER[2:]]
    short = (
        f"On hard negatives fine-tuning moved {hard[0]}, and {hard[1]}. On easy negatives: {', '.join(easy)}. "
        f"{_scope(list(tests.values()))}"
    )
    return "\n\n".join(
        [short, _table(ft, fz, tests, ("fine-tuned", "frozen"), len(report.pairs_against(fz["arm"]))), best_arm(report)]
    )


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


def _cost_table(report: Report, ft: pd.Series, fz: pd.Series) -> str:
    """Per fold (the rows' means), per repeat (a whole cross-validation: the folds summed, mean over repeats) and in
    all (every run of the arm summed; the arms may have run different numbers of repeats)."""
    total = {r["arm"]: report.runs.loc[report.runs["arm"] == r["arm"], "train_runtime_s"].sum() for r in (ft, fz)}
    repeat = {r["arm"]: total[r["arm"]] / int(r["n_repeats"]) for r in (ft, fz)}
    rows = [
        ("train time a fold (s)", ft["train_runtime_s"], fz["train_runtime_s"], "{:,.1f}"),
        (
            f"train time a repeat, {int(ft['units_per_repeat'])} folds (s)",
            repeat[ft["arm"]],
            repeat[fz["arm"]],
            "{:,.0f}",
        ),
        ("peak memory (MB)", ft["peak_memory_mb"], fz["peak_memory_mb"], "{:,.0f}"),
        ("trainable parameters", ft["trainable_params"], fz["trainable_params"], "{:,.0f}"),
    ]
    lines = ["| | fine-tuned | frozen | ratio |", "|---|---|---|---|"]
    lines += [f"| {name} | {fmt.format(a)} | {fmt.format(b)} | {a / b:,.{1 if a / b < 100 else 0}f}x |"
              for name, a, b, fmt in rows]  # fmt: skip

    def runs(r: pd.Series) -> str:
        n = int(r["n_repeats"])
        return f"{total[r['arm']]:,.0f} s over {n} repeat{'s' * (n != 1)}"

    return "\n".join(lines) + f"\n\nIn all, one job at a time: fine-tuning {runs(ft)}, the frozen trunk {runs(fz)}."


def cost(report: Report, ft: pd.Series, fz: pd.Series, test: Paired | None) -> str:
    ratio, mem = ft["train_runtime_s"] / fz["train_runtime_s"], ft["peak_memory_mb"] / fz["peak_memory_mb"]
    text = (
        f"Fine-tuning took {ratio:.1f}x the frozen trunk's training time ({ft['train_runtime_s']:,.0f} s against "
        f"{fz['train_runtime_s']:,.0f} s a fold) and {mem:.1f}x its peak memory. "
    )
    if test is None:
        verdict = (
            "Hard AUROC has no paired test here (the rows share fewer than two folds and no complete k-fold "
            f"repeat): {unpaired(ft, fz, 'test_hard_auroc')}, so whether the time bought anything is not settled."
        )
    else:
        numbers = f"{test.diff:+.3f} hard AUROC (**{test.verdict}**)"
        whom = "" if test.scope == "arms" else " for these models"
        if test.verdict == "better":
            verdict = f"It bought {numbers}: worth it{whom} where hard negatives matter."
        elif test.verdict == "worse":
            verdict = f"It changed hard AUROC by {test.diff:+.3f} (**worse**): not worth it{whom}."
        elif test.verdict == "equivalent":
            verdict = f"It bought {numbers}, within the practical margin +-{report.margin}: nothing of practical size."
        else:
            resolves = resolvable_difference(report.pairs_against(fz["arm"]), alpha=report.alpha)
            size = "" if np.isnan(resolves) else f" (these runs resolve about {resolves:.3f} with 80% power)"
            verdict = f"It bought {numbers}, not told from noise{size}: nothing measurable by these runs."
    return text + verdict + "\n\n" + _cost_table(report, ft, fz)


def _gain(test: Paired | None, ft: pd.Series, fz: pd.Series, metric: str) -> float:
    return ft[metric] - fz[metric] if test is None else test.diff


def easy_or_hard(ft: pd.Series, fz: pd.Series, tests: dict[str, Paired | None]) -> str:
    """Where fine-tuning moved the figures more, in 2-3 sentences, then the four changes."""
    gains = {m: _gain(tests[m], ft, fz, m) for m in QUALITY_ORDER}
    more = {metric: "hard" if gains[f"test_hard_{metric}"] > gains[f"test_easy_{metric}"] else "easy"
            for metric in ("auroc", "auprc")}  # fmt: skip
    figures = ", ".join(f"{name} {gains[f'test_hard_{k}']:+.3f} on hard vs {gains[f'test_easy_{k}']:+.3f} on easy"
                        for k, name in (("auroc", "AUROC"), ("auprc", "AU-PRC")))  # fmt: skip
    settled = [LABELS[m] for m in QUALITY_ORDER if tests[m] is not None and tests[m].verdict in ("better", "worse")]
    left = [LABELS[m] for m in QUALITY_ORDER if LABELS[m] not in settled]
    which = f"Settled by paired tests: {', '.join(settled) or 'none'}" + (f"; not settled: {', '.join(left)}." if left
                                                                          else ".")  # fmt: skip
    if max(gains.values()) <= 0:
        head = f"Fine-tuning helped on neither: {figures}."
    elif not settled:  # point estimates alone: no ranking of easy and hard to state
        lean = f"lean to {more['auroc']} negatives" if more["auroc"] == more["auprc"] else "are mixed"
        head, which = f"Not shown by these runs: the point estimates {lean} ({figures}), but no paired test tells any "\
                      "of the four changes from noise.", ""  # fmt: skip
    elif more["auroc"] == more["auprc"]:
        head = f"Fine-tuning helped more on {more['auroc']} negatives: {figures}."
    else:
        head = f"Mixed: {figures}."
    rows = [f"| {name} | {_change(tests[f'test_easy_{k}'], ft, fz, f'test_easy_{k}', True)} | "
            f"{_change(tests[f'test_hard_{k}'], ft, fz, f'test_hard_{k}', True)} |"
            for k, name in (("auroc", "AUROC"), ("auprc", "AU-PRC"))]  # fmt: skip
    table = "\n".join(["| fine-tuned minus frozen | easy negatives | hard negatives |", "|---|---|---|", *rows])
    tail = ("The gap between the easy and the hard change is not itself tested (different molecules); the two "
            "AU-PRCs share one prevalence (as many easy as hard negatives per split).")  # fmt: skip
    return " ".join(x for x in (head, which, _scope(list(tests.values()))) if x) + f"\n\n{table}\n\n{tail}"


@dataclass(frozen=True)
class TermEffect:
    """The contrastive row against its twin without the term (lp_ft, else finetune), on the four test metrics."""

    rival: pd.Series
    base: pd.Series
    tests: dict[str, Paired | None]
    family: int  # the arms paired against base: what the hard p were Holm-adjusted over

    @classmethod
    def of(cls, report: Report) -> TermEffect | None:
        rival = next((r for _, r in report.summary.iterrows() if r["arm"].startswith("contrastive")), None)
        base = next((r for name in ("lp_ft", "finetune") if (r := arm_row(report.summary, name)) is not None), None)
        if rival is None or base is None:
            return None
        pairs = report.pairs_against(base["arm"])
        tests = {m: paired(report, pairs, rival["arm"], base["arm"], m) for m in QUALITY_ORDER}
        return cls(rival, base, tests, len(pairs))


def contrastive(effect: TermEffect | None, ft: pd.Series | None, fz: pd.Series | None) -> str:
    """The contrastive row's paired verdicts against its twin; without one, what the fine-tuned row's easy-hard gap
    says about the room for it (``ft`` may be None only when there is an effect)."""
    if effect is not None:
        rival, base, tests = effect.rival, effect.base, effect.tests
        twin = "lp_ft, the same recipe without the term" if base["arm"].startswith("lp_ft") else "fine-tuning"
        hard = tests["test_hard_auroc"]
        opening = {"better": "Yes", "worse": "No", "equivalent": "Not by a practical margin"}.get(
            hard.verdict if hard else "", "Not shown"
        ) + ("" if hard is None or hard.scope == "arms" else ", for these models")
        moves = [f"{LABELS[m]} by {_change(tests[m], rival, base, m)}" for m in QUALITY_ORDER]
        short = (
            f"{opening}: against {twin}, the contrastive term changed {moves[0]} and {moves[1]}; on easy negatives "
            f"{moves[2]} and {moves[3]}. {_scope(list(tests.values()))}"
        )
        names, _ = short_labels([rival["arm"], base["arm"]])
        return short + "\n\n" + _table(rival, base, tests, (names[rival["arm"]], names[base["arm"]]), effect.family)
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
        (QUESTIONS[0], improvement(report, ft, fz, tests)),
        (QUESTIONS[1], cost(report, ft, fz, tests["test_hard_auroc"])),
        (QUESTIONS[2], easy_or_hard(ft, fz, tests)),
        (QUESTIONS[3], forgetting(summary, report.runs)),
        (QUESTIONS[4], contrastive(effect, ft, fz)),
    ]
