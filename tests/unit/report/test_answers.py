"""The five answers follow the paired verdicts: change the runs and the conclusions change; none chooses by test."""

import pytest

from delbind.report import load_report
from delbind.report.answers import QUESTIONS, answers, best_arm
from tests.unit.report.fake_runs import write_arm, write_old_run


def _answers(root) -> dict[str, str]:
    return dict(answers(load_report([root])))


def test_a_clear_gain_quotes_the_paired_verdicts_and_is_worth_it(tmp_path):
    write_arm(tmp_path, "frozen", hard=0.5, easy=1.0, val=0.6)
    write_arm(tmp_path, "finetune", hard=2.5, easy=3.0, val=0.8, time=300.0)
    write_arm(tmp_path, "ecfp_rf", hard=1.0, val=0.5)
    report = load_report([tmp_path])
    pairs = report.pairs_against("frozen (m)")  # the verdict table the answers quote, paired against frozen
    ft = pairs.set_index("arm").loc["finetune (m)"]
    a = dict(answers(report))
    q1 = a[QUESTIONS[0]]
    assert q1.startswith("Paired verdicts, fine-tuned minus frozen: better on hard AUROC, hard AU-PRC, easy AUROC")
    assert "Holm-adjusted over its 2 rows" in q1
    hard = f"paired difference {ft['test_hard_auroc_diff']:+.3f} [{ft['test_hard_auroc_lo']:+.3f}, "
    assert hard in q1
    assert "Holm p < 0.001 (DeLong, pooled out-of-fold over 3 folds): **better**" in q1
    assert "(stratified paired bootstrap, pooled out-of-fold over 3 folds): **better**" in q1  # hard AU-PRC
    easy = next(line for line in q1.splitlines() if line.startswith("- easy AUROC"))
    assert "p (this pair alone, not Holm-adjusted) < 0.001 (DeLong, pooled out-of-fold over 3 folds)" in easy
    assert (
        "30.0x the time" in a[QUESTIONS[1]]
        and "worth it for these models where hard negatives matter" in a[QUESTIONS[1]]
    )
    assert "Verdicts marked (these models) come from one repeat" in q1
    assert "(that arm minus it): 2 worse (these models: one repeat)." in q1
    assert f"Hard AUROC rose by {ft['test_hard_auroc_diff']:+.3f}" in a[QUESTIONS[1]]
    assert "(paired: **better** (these models))" in a[QUESTIONS[2]] and "both changes are settled" in a[QUESTIONS[2]]


def test_the_same_scores_are_equivalent_not_a_gain(tmp_path):
    write_arm(tmp_path, "frozen", hard=1.0, val=0.6)
    write_arm(tmp_path, "finetune", hard=1.0, val=0.6, time=300.0, noise="frozen")  # frozen's very scores
    a = _answers(tmp_path)
    assert a[QUESTIONS[0]].startswith("Paired verdicts, fine-tuned minus frozen: equivalent on hard AUROC, hard AU-PRC")
    assert "paired difference +0.000 [+0.000, +0.000], Holm p = 1.000" in a[QUESTIONS[0]]
    assert "within the practical margin +-0.02: the extra time bought nothing of practical size" in a[QUESTIONS[1]]
    assert "neither change is settled" in a[QUESTIONS[2]]


def test_incomplete_folds_use_the_corrected_t_and_one_fold_its_own_molecules(tmp_path):
    write_arm(tmp_path / "three", "frozen", hard=0.5, val=0.6, folds=5, ran=(0, 1, 2))  # not complete: not pooled
    write_arm(tmp_path / "three", "finetune", hard=0.6, val=0.7, folds=5, ran=(0, 1, 2))
    a = _answers(tmp_path / "three")
    assert "corrected resampled t over 3 shared folds or splits" in a[QUESTIONS[0]]
    easy = next(line for line in a[QUESTIONS[0]].splitlines() if line.startswith("- easy AU-PRC"))
    assert "not Holm-adjusted" in easy and "corrected resampled t over 3 shared folds" in easy
    write_arm(tmp_path / "one", "frozen", hard=0.5, val=0.6, ran=(0,))
    write_arm(tmp_path / "one", "finetune", hard=3.0, val=0.7, ran=(0,))
    b = _answers(tmp_path / "one")  # one shared fold: the paired tests run on its molecules
    assert "no paired test" not in b[QUESTIONS[0]] and "DeLong on the one fold both ran" in b[QUESTIONS[0]]
    easy = next(line for line in b[QUESTIONS[0]].splitlines() if line.startswith("- easy AUROC"))
    assert "not Holm-adjusted" in easy and "DeLong on the one fold both ran" in easy


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
    assert a.startswith("Measured: contrastive (m) minus fine-tuning (finetune (m)), paired against it:")
    assert "(DeLong, pooled out-of-fold over 3 folds): **better**" in a and "Holm p" in a


def test_the_contrastive_term_is_judged_against_its_twin_and_where_it_moved(tmp_path):
    """With lp_ft in the runs the term's row pairs against lp_ft (the same recipe without it), and the third answer
    says whether the term moved the hard set more than the easy one."""
    write_arm(tmp_path, "frozen", hard=0.5, easy=2.0, val=0.6)
    write_arm(tmp_path, "finetune", hard=1.0, easy=2.5, val=0.7)
    write_arm(tmp_path, "lp_ft", hard=1.0, easy=2.5, val=0.7, noise="finetune")
    write_arm(tmp_path, "contrastive", hard=3.0, easy=2.5, val=0.8, noise="finetune")  # the term moves hard only
    a = _answers(tmp_path)
    fifth, third = a[QUESTIONS[4]], a[QUESTIONS[2]]
    assert fifth.startswith("Measured: contrastive (m) minus lp_ft, the same recipe without the term (lp_ft (m))")
    hard = next(line for line in fifth.splitlines() if line.startswith("- hard AUROC"))
    assert "**better**" in hard and "Holm p" in hard
    easy = next(line for line in fifth.splitlines() if line.startswith("- easy AUROC"))
    assert "+0.000 [+0.000, +0.000]" in easy and "**equivalent**" in easy  # the same easy scores as its twin
    moved = third[third.index("The contrastive term (contrastive (m) minus lp_ft (m)):") :]
    auroc = moved.splitlines()[2]  # after the blank line that makes it a list
    assert (
        auroc.startswith("- AUROC: +0.000 on easy (paired: **equivalent** (these models))")
        and "it helped more on hard" in auroc
    )
    assert moved in fifth  # the same figures in both answers
    for text in a.values():  # markdown renders a list as running text unless a blank line precedes it
        lines = text.splitlines()
        for before, line in zip(lines, lines[1:]):
            assert not line.startswith("- ") or before.startswith("- ") or before == "", (before, line)


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
        assert "Most: finetune (m) (+0.420)" in a and "(mean over 3 run(s))" in a


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
    assert "(DeLong per repeat, pooled out-of-fold, plus the spread over 3 repeats): **better**" in q1
    assert "(these models)" not in q1 + q2 + a[QUESTIONS[2]]
    assert "worth it where hard negatives matter" in q2
    assert "Every other arm paired against it on hard AUROC (that arm minus it): 1 worse." in q1  # about the arms
