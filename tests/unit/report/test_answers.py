"""The five answers follow the numbers: change the numbers and the conclusions change."""

import pandas as pd

from delbind.comparison import QUALITY
from delbind.report.answers import QUESTIONS, answers


def _row(arm: str, value: float, half: float, hard: float | None = None, time: float = 10.0, forgetting=None) -> dict:
    row = {"arm": f"{arm} (m)", "n_seeds": 3, "ci": "seeds", "train_runtime_s": time, "peak_memory_mb": 100.0,
           "trainable_params": 1000.0, "forgetting": forgetting}  # fmt: skip
    for metric in QUALITY:
        v = hard if hard is not None and "hard" in metric else value
        row |= {metric: v, f"{metric}_lo": v - half, f"{metric}_hi": v + half}
    return row


def _answers(*rows: dict) -> dict[str, str]:
    summary = pd.DataFrame(rows)
    return dict(answers(summary, pd.DataFrame({"n_train": [500]})))


def test_clear_gain_is_called_clear_and_worth_it():
    a = _answers(_row("frozen", 0.70, 0.02), _row("finetune", 0.85, 0.02, time=300.0))
    assert "Fine-tuning clearly improved hard AUROC, hard AU-PRC, easy AUROC, easy AU-PRC" in a[QUESTIONS[0]]
    assert "+0.150; the intervals do not overlap: a real gain" in a[QUESTIONS[0]]
    assert "30.0x the time" in a[QUESTIONS[1]] and "worth it where hard negatives matter" in a[QUESTIONS[1]]


def test_overlapping_intervals_are_no_clear_difference():
    a = _answers(_row("frozen", 0.70, 0.10), _row("finetune", 0.75, 0.10, time=300.0))
    assert a[QUESTIONS[0]].startswith("No clear improvement on any of the four.")
    assert "the intervals overlap" in a[QUESTIONS[0]]
    assert "bought nothing measurable" in a[QUESTIONS[1]]


def test_easy_or_hard_and_the_contrastive_gap():
    # fine-tuning lifts hard negatives most; easy stays far above hard: room for a contrastive objective
    a = _answers(_row("frozen", 0.95, 0.01, hard=0.60), _row("finetune", 0.96, 0.01, hard=0.75))
    assert "+0.010 on easy, +0.150 on hard negatives: it helped more on hard (by 0.140)" in a[QUESTIONS[2]]
    assert "a gap of +0.210, with intervals that do not overlap" in a[QUESTIONS[4]]
    assert "frozen trunk's easy-hard gap is +0.350" in a[QUESTIONS[4]]
    b = _answers(_row("frozen", 0.80, 0.10), _row("finetune", 0.80, 0.10))
    assert "within overlapping intervals" in b[QUESTIONS[4]] and "no particular reason" in b[QUESTIONS[4]]


def test_forgetting_is_reported_when_measured_and_said_missing_when_not():
    a = _answers(_row("frozen", 0.7, 0.1, forgetting=0.0), _row("finetune", 0.7, 0.1, forgetting=0.42))
    assert "Most: finetune (m) (+0.420)" in a[QUESTIONS[3]] and "500 training molecules" in a[QUESTIONS[3]]
    b = _answers(_row("frozen", 0.7, 0.1), _row("finetune", 0.7, 0.1))
    assert b[QUESTIONS[3]].startswith("Not measured in these runs")


def test_a_missing_arm_is_named_not_guessed():
    a = _answers(_row("ecfp_rf", 0.9, 0.05), _row("frozen", 0.7, 0.1))
    assert (
        a[QUESTIONS[0]] == "These runs have no finetune arm, so fine-tuning cannot be compared with the frozen trunk."
    )


def test_with_per_split_runs_the_verdict_is_paired_by_split():
    # The rows' intervals overlap (+/- 0.10), but fine-tuning is ahead on every split by 0.02-0.04: the split's
    # swing (0.6 to 0.9) is shared, and pairing by split takes it out.
    summary = pd.DataFrame([_row("frozen", 0.733, 0.10), _row("finetune", 0.763, 0.10)])
    per_split = {"frozen (m)": [0.60, 0.90, 0.70], "finetune (m)": [0.62, 0.93, 0.74]}
    runs = pd.DataFrame(
        [{"arm": arm, "seed": seed, "n_train": 500, **dict.fromkeys(QUALITY, v)}
         for arm, values in per_split.items() for seed, v in enumerate(values)]
    )  # fmt: skip
    a = dict(answers(summary, runs))[QUESTIONS[0]]
    assert a.startswith("Fine-tuning clearly improved hard AUROC, hard AU-PRC, easy AUROC, easy AU-PRC.")
    assert "paired by split (3) +0.030 [+0.005, +0.055], p = 0.035: a real gain" in a
    worth = dict(answers(summary, runs))[QUESTIONS[1]]
    assert "It bought +0.030 hard AUROC, outside the noise" in worth
    assert "both gains are outside the noise" in dict(answers(summary, runs))[QUESTIONS[2]]  # the rows overlap
    flat = runs.assign(**{m: runs[m].where(runs["seed"] != 2, 0.70) for m in QUALITY})  # split 2: no difference
    b = dict(answers(summary, flat))[QUESTIONS[0]]
    assert b.startswith("No clear improvement") and "not a difference these runs can tell from noise" in b
    assert "inside the paired interval over splits" in dict(answers(summary, flat))[QUESTIONS[1]]
    assert "gains lie within the noise paired by split" in dict(answers(summary, flat))[QUESTIONS[2]]
