"""The five answers follow the paired verdicts: change the runs and the conclusions change; none chooses by test."""

import pytest

from delbind.report import load_report
from delbind.report.answers import QUESTIONS, answers, best_arm
from tests.unit.report.fake_runs import write_arm, write_old_run


def _answers(root) -> dict[str, str]:
    return dict(answers(load_report([root])))


def _row(text: str, label: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"| {label} |"))


def test_a_clear_gain_quotes_the_paired_verdicts_and_is_worth_it(tmp_path):
    write_arm(tmp_path, "frozen", hard=0.5, easy=1.0, val=0.6)
    write_arm(tmp_path, "finetune", hard=2.5, easy=3.0, val=0.8, time=300.0)
    write_arm(tmp_path, "ecfp_rf", hard=1.0, val=0.5)
    report = load_report([tmp_path])
    pairs = report.pairs_against("frozen (m)")  # the verdict table the answers quote, paired against frozen
    ft = pairs.set_index("arm").loc["finetune (m)"]
    a = dict(answers(report))
    q1, q2, q3 = a[QUESTIONS[0]], a[QUESTIONS[1]], a[QUESTIONS[2]]
    diff = f"{ft['test_hard_auroc_diff']:+.3f}"
    assert q1.startswith("On hard negatives fine-tuning moved hard AUROC ") and f", {diff} (**better**)" in q1
    assert q1.splitlines()[0].endswith("From one repeat, these verdicts judge these fitted models, not the recipes.")
    hard = _row(q1, "hard AUROC")
    assert f"| {diff} [{ft['test_hard_auroc_lo']:+.3f}, {ft['test_hard_auroc_hi']:+.3f}] | < 0.001 (Holm) |" in hard
    assert hard.endswith("| **better** (these models) |")
    assert "(Holm)" not in _row(q1, "easy AUROC") and "**better**" in _row(q1, "easy AUROC")  # this pair alone
    assert "Tests: DeLong (AUROC) / paired bootstrap (AU-PRC) pooled out-of-fold over 3 folds" in q1
    assert "p (Holm): adjusted over the 2 arms paired against frozen, other p: this pair alone." in q1
    assert "(that arm minus it): 2 worse (these models: one repeat)." in q1
    assert "30.0x the frozen trunk's training time" in q2 and f"It bought {diff} hard AUROC (**better**)" in q2
    assert (
        "worth it for these models where hard negatives matter" in q2 and "| train time a repeat, 3 folds (s) |" in q2
    )
    assert "In all, one job at a time: fine-tuning 900 s over 1 repeat" in q2
    assert q3.startswith("Fine-tuning helped more on hard negatives: AUROC")
    assert "Settled by paired tests: hard AUROC, hard AU-PRC, easy AUROC, easy AU-PRC." in q3
    assert "(**better** (these models))" in _row(q3, "AUROC")


def test_the_same_scores_are_equivalent_not_a_gain(tmp_path):
    write_arm(tmp_path, "frozen", hard=1.0, val=0.6)
    write_arm(tmp_path, "finetune", hard=1.0, val=0.6, time=300.0, noise="frozen")  # frozen's very scores
    a = _answers(tmp_path)
    assert "hard AUROC" in a[QUESTIONS[0]] and "+0.000 (**equivalent**)" in a[QUESTIONS[0]]
    assert "| +0.000 [+0.000, +0.000] | 1.000 (Holm) |" in _row(a[QUESTIONS[0]], "hard AUROC")
    assert "within the practical margin +-0.02: nothing of practical size" in a[QUESTIONS[1]]
    assert "Settled by paired tests: none;" in a[QUESTIONS[2]]


def test_incomplete_folds_use_the_corrected_t_and_one_fold_its_own_molecules(tmp_path):
    write_arm(tmp_path / "three", "frozen", hard=0.5, val=0.6, folds=5, ran=(0, 1, 2))  # not complete: not pooled
    write_arm(tmp_path / "three", "finetune", hard=0.6, val=0.7, folds=5, ran=(0, 1, 2))
    a = _answers(tmp_path / "three")
    assert "Tests: corrected resampled t over 3 shared folds or splits" in a[QUESTIONS[0]]
    assert "(Holm)" not in _row(a[QUESTIONS[0]], "easy AU-PRC")
    write_arm(tmp_path / "one", "frozen", hard=0.5, val=0.6, ran=(0,))
    write_arm(tmp_path / "one", "finetune", hard=3.0, val=0.7, ran=(0,))
    b = _answers(tmp_path / "one")  # one shared fold: the paired tests run on its molecules
    assert "no paired test" not in b[QUESTIONS[0]]
    assert "Tests: DeLong (AUROC) / paired bootstrap (AU-PRC) on the one fold both ran" in b[QUESTIONS[0]]


def test_best_arm_follows_val_not_test(tmp_path):
    write_arm(tmp_path, "frozen", hard=0.5, val=0.9)  # best on val, worst on test
    write_arm(tmp_path, "finetune", hard=1.0, val=0.7)
    write_arm(tmp_path, "ecfp_rf", hard=4.0, val=0.5)  # best on test, worst on val
    report = load_report([tmp_path])
    assert report.summary.loc[report.summary["test_hard_auroc"].idxmax(), "arm"] == "ecfp_rf (m)"
    text = best_arm(report)
    frozen = report.summary.set_index("arm").loc["frozen (m)"]
    assert text.startswith("Chosen on validation, the best arm is frozen (m) (the highest mean val hard AU-PRC, 0.900)")
    assert f"its test hard AUROC is {frozen['test_hard_auroc']:.3f}" in text
    assert "ecfp_rf" not in text and "2 better" in text  # the test-best arm is not named; the tally says it beat it
    assert text in dict(answers(report))[QUESTIONS[0]]


def test_without_a_val_metric_no_arm_is_named(tmp_path):
    write_old_run(tmp_path, "frozen", 0)
    report = load_report([tmp_path])
    report.summary["val_hard_auprc"] = float("nan")
    assert "no arm is named best: the report never chooses by test" in best_arm(report)


def test_a_contrastive_row_is_paired_against_finetuning(tmp_path):
    write_arm(tmp_path, "frozen", hard=0.5, val=0.6)
    write_arm(tmp_path, "finetune", hard=1.0, val=0.7)
    write_arm(tmp_path, "contrastive", hard=3.0, val=0.8)
    a = _answers(tmp_path)[QUESTIONS[4]]
    assert a.startswith("Yes, for these models: against fine-tuning, the contrastive term changed hard AUROC by +")
    assert "(Holm) | **better** (these models) |" in _row(a, "hard AUROC")
    assert "| | contrastive | finetune | difference [95% CI] | p | verdict |" in a  # labels without shared parts


def test_the_contrastive_term_is_judged_against_its_twin_not_repeated_elsewhere(tmp_path):
    """With lp_ft in the runs the term's row pairs against lp_ft (the same recipe without it); the third answer is
    about fine-tuning alone, and no answer is rendered as running text (a list or table needs a blank line)."""
    write_arm(tmp_path, "frozen", hard=0.5, easy=2.0, val=0.6)
    write_arm(tmp_path, "finetune", hard=1.0, easy=2.5, val=0.7)
    write_arm(tmp_path, "lp_ft", hard=1.0, easy=2.5, val=0.7, noise="finetune")
    write_arm(tmp_path, "contrastive", hard=3.0, easy=2.5, val=0.8, noise="finetune")  # the term moves hard only
    a = _answers(tmp_path)
    fifth = a[QUESTIONS[4]]
    assert fifth.startswith("Yes, for these models: against lp_ft, the same recipe without the term, the contrastive")
    assert "**better**" in _row(fifth, "hard AUROC") and "(Holm)" in _row(fifth, "hard AUROC")
    easy = _row(fifth, "easy AUROC")
    assert "+0.000 [+0.000, +0.000]" in easy and "**equivalent**" in easy  # the same easy scores as its twin
    assert "contrastive" not in a[QUESTIONS[2]]  # answer 3 no longer repeats answer 5
    for text in a.values():  # markdown renders a list or table as running text unless a blank line precedes it
        lines = text.splitlines()
        for before, line in zip(lines, lines[1:]):
            for mark in ("- ", "|"):
                assert not line.startswith(mark) or before.startswith(mark) or before == "", (before, line)


def test_without_contrastive_the_gap_is_labelled_not_paired(tmp_path):
    write_arm(tmp_path, "frozen", hard=0.5, easy=3.0, val=0.6)
    write_arm(tmp_path, "finetune", hard=1.0, easy=4.0, val=0.7)
    a = _answers(tmp_path)[QUESTIONS[4]]
    assert a.startswith("Not measured (no contrastive arm).") and "not a paired test), with intervals that do not" in a


@pytest.mark.parametrize("forgot", [None, 0.42])
def test_forgetting_is_reported_when_measured_and_said_missing_when_not(tmp_path, forgot):
    extra = {} if forgot is None else {"forgetting": forgot}
    write_arm(tmp_path, "frozen", hard=0.5, val=0.6)
    write_arm(tmp_path, "finetune", hard=1.0, val=0.7, **extra)
    a = _answers(tmp_path)[QUESTIONS[3]]
    if forgot is None:
        assert a.startswith("Not measured in these runs") and "200 training molecules" in a
    else:
        assert "finetune (m) raised the trunk's masked-token loss by +0.420, the most of any arm" in a
        assert "| finetune (m) | +0.420 | 3 |" in a


def test_a_missing_arm_is_named_not_guessed(tmp_path):
    write_arm(tmp_path, "ecfp_rf", hard=2.0, val=0.9)
    write_arm(tmp_path, "frozen", hard=0.5, val=0.6)
    a = _answers(tmp_path)
    no_ft = "These runs have no finetune arm, so fine-tuning cannot be compared with the frozen trunk."
    assert a[QUESTIONS[0]] == no_ft and a[QUESTIONS[4]] == no_ft


def test_with_repeats_the_answers_speak_of_the_arms(tmp_path):
    for r in (0, 1, 2):  # repeat r: its own deal of the folds and init seed
        write_arm(tmp_path, "frozen", hard=0.5, easy=1.0, val=0.6, data_seed=r, seed=r)
        write_arm(tmp_path, "finetune", hard=2.5, easy=3.0, val=0.8, time=300.0, data_seed=r, seed=r)
    a = _answers(tmp_path)
    q1, q2 = a[QUESTIONS[0]], a[QUESTIONS[1]]
    assert (
        "Tests: DeLong (AUROC) / paired bootstrap (AU-PRC) per repeat, pooled out-of-fold, plus the spread over 3" in q1
    )
    assert "Over 3 repeats, these verdicts speak of the recipes." in q1
    assert "(these models)" not in q1 + q2 + a[QUESTIONS[2]]
    assert "worth it where hard negatives matter" in q2
    assert "Every other arm paired against it on hard AUROC (that arm minus it): 1 worse." in q1  # about the arms


def test_a_trunk_without_an_mlm_head_still_reports_its_representation_drift(tmp_path):
    write_arm(tmp_path, "frozen", hard=0.5, val=0.6, representation_drift=0.0)
    write_arm(tmp_path, "finetune", hard=1.0, val=0.7, representation_drift=0.31)  # no `forgetting`: no MLM head
    a = _answers(tmp_path)[QUESTIONS[3]]
    assert a.startswith("Its embeddings of the same held-out molecules moved most for finetune (m) (drift 0.310")
    assert "| arm | drift (1 - CKA) | runs |" in a and "| frozen (m) | 0.000 | 3 |" in a and "MLM loss" not in a


def test_drift_recorded_only_by_frozen_trunks_is_not_called_the_most_and_the_runs_without_it_are_named(tmp_path):
    write_arm(tmp_path, "frozen", hard=0.5, val=0.6, representation_drift=0.0, forgetting=0.0)
    write_arm(tmp_path, "finetune", hard=1.0, val=0.7, forgetting=1.2)  # kept before drift was measured
    a = _answers(tmp_path)[QUESTIONS[3]]
    assert "moved most" not in a
    assert "is 0 for every arm that recorded it: their trunks stayed frozen; the runs of finetune (m) were kept " in a


def test_the_cost_per_repeat_compares_arms_that_ran_different_numbers_of_repeats(tmp_path):
    for r in (0, 1, 2):
        write_arm(tmp_path, "frozen", hard=0.5, val=0.6, time=10.0, data_seed=r, seed=r)
    write_arm(tmp_path, "finetune", hard=2.5, val=0.8, time=300.0)  # one repeat
    q2 = _answers(tmp_path)[QUESTIONS[1]]
    assert "| train time a repeat, 3 folds (s) | 900 | 30 | 30.0x |" in q2  # not 900 against 90 (every run summed)
    assert "fine-tuning 900 s over 1 repeat, the frozen trunk 90 s over 3 repeats." in q2


def test_gains_no_paired_test_tells_from_noise_are_not_called_help(tmp_path):
    write_arm(tmp_path, "frozen", hard=1.0, easy=1.0, val=0.6)
    write_arm(tmp_path, "finetune", hard=1.15, easy=1.05, val=0.7, time=300.0)
    q3 = _answers(tmp_path)[QUESTIONS[2]]
    assert "**better**" not in q3 and "**worse**" not in q3  # the premise: every change is left unsettled
    assert q3.startswith("Not shown by these runs: the point estimates lean to hard negatives (AUROC +")
    assert "helped more" not in q3 and "Settled by paired tests" not in q3


def test_a_mean_over_fewer_runs_than_the_arm_has_says_how_many(tmp_path):
    write_arm(tmp_path, "frozen", hard=0.5, val=0.6, representation_drift=0.0)
    write_arm(tmp_path, "finetune", hard=1.0, val=0.7, forgetting=1.2)  # repeat 0 kept before drift was measured
    write_arm(tmp_path, "finetune", hard=1.0, val=0.7, forgetting=1.0, representation_drift=0.4, data_seed=1, seed=1)
    a = _answers(tmp_path)[QUESTIONS[3]]
    assert "| finetune (m) | +1.100 | 0.400 (3 of 6 runs) | 6 |" in a
    assert "| frozen (m) | n/a | 0.000 | 3 |" in a  # every run recorded it: no count
