"""The report's charts as a reader sees them: every text inside the figure, no two texts on top of each other, with
the long row labels a real comparison has (``contrastive (rxnfp_bert, mean pooling, contrastive_w1.0)``)."""

import itertools

import pytest
from matplotlib.text import Text

from delbind.report import load_report
from delbind.report.data import short_labels
from delbind.report.figures import cost_quality, forgetting, loss_curves, roc_pr_curves
from delbind.rundirs import LOG_HISTORY, write_log_history
from tests.unit.report.fake_runs import write_arm

LONG = {"model": "rxnfp_bert", "pooling": "mean"}
ARMS = [  # (arm, label, hard strength, train time): nine rows, as the course comparison has
    ("frozen", None, 0.6, 42.0), ("finetune", "lr1e-4", 1.4, 387.0), ("lp_ft", None, 1.6, 288.0),
    ("contrastive", "contrastive_w1.0", 1.3, 250.0), ("frozen_ecfp", None, 2.0, 56.0), ("lp_ft_ecfp", None, 1.9, 170.0),
    ("embeddings_logreg", None, 0.8, 19.0), ("ecfp_rf", None, 1.8, 2.1), ("ecfp_xgb", None, 1.7, 1.3),
]  # fmt: skip


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    history = [{"loss": 0.7 - 0.004 * s, "step": s} for s in range(1, 60)]
    history += [{"eval_val_easy_loss": 0.5, "eval_val_hard_loss": 0.6, "step": s} for s in (20, 40, 59)]
    for arm, label, hard, time in ARMS:
        baseline = arm.startswith("ecfp")
        extra = {"model": "ecfp4"} if baseline else {**LONG, "forgetting": 0.1 * hard}
        extra |= {"label": label} if label else {}
        for run in write_arm(root, arm, hard=hard, val=hard / 3, time=time, **extra):
            if not baseline:
                write_log_history(history, run / LOG_HISTORY)
    return load_report([root])


def drawn_texts(fig) -> list[Text]:
    """The texts a reader sees: titles, axis labels, the tick labels in view, legends, annotations."""
    texts = list(fig.texts)
    for ax in (a for a in fig.axes if a.get_visible()):
        texts += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label, *ax.texts]
        for axis, i in ((ax.xaxis, 0), (ax.yaxis, 1)):  # tick labels in view (the tick pool holds others)
            lo, hi = sorted(axis.get_view_interval())
            texts += [t for t in axis.get_ticklabels(which="both") if lo <= t.get_position()[i] <= hi]
        if legend := ax.get_legend():
            texts += [legend.get_title(), *legend.get_texts()]
    return [t for t in texts if t.get_visible() and t.get_text().strip()]


def text_problems(fig) -> list[str]:
    """Texts that leave the figure or overlap another text (1 px of slack), as drawn."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in drawn_texts(fig)]
    f = fig.bbox
    problems = [f"outside: {text!r}" for text, b in boxes
                if b.x0 < f.x0 - 1 or b.y0 < f.y0 - 1 or b.x1 > f.x1 + 1 or b.y1 > f.y1 + 1]  # fmt: skip
    for (ta, a), (tb, b) in itertools.combinations(boxes, 2):
        if min(a.x1, b.x1) - max(a.x0, b.x0) > 1 and min(a.y1, b.y1) - max(a.y0, b.y0) > 1:
            problems.append(f"overlap: {ta!r} / {tb!r}")
    return problems


@pytest.mark.parametrize("draw", [cost_quality, forgetting, roc_pr_curves, loss_curves])
def test_every_chart_keeps_its_texts_inside_and_apart(report, draw, tmp_path):
    fig = draw(report.summary if draw is cost_quality else report)
    fig.savefig(tmp_path / f"{draw.__name__}.png", dpi=100)  # as the report writes it
    assert text_problems(fig) == []


def test_the_cost_chart_names_every_arm_by_what_tells_it_apart(report):
    fig = cost_quality(report.summary)
    legend = fig.axes[0].get_legend()
    names = [t.get_text() for t in legend.get_texts()]
    assert {"frozen", "finetune (lr1e-4)", "ecfp_rf (ecfp4)", "random ranking"} <= set(names) and len(names) == 10
    assert "rxnfp_bert, mean pooling" in legend.get_title().get_text().replace("\n", " ")
    lo, hi = fig.axes[0].get_xlim()
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels() if t.get_text() and lo <= t.get_position()[0] <= hi]
    assert ticks and all(float(t) in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) for t in ticks)


def test_short_labels_drop_only_what_most_rows_share_and_never_merge_rows():
    short, common = short_labels(["frozen (m, mean pooling)", "lp_ft (m, mean pooling, lr1)", "ecfp_rf (ecfp4)"])
    assert short == {"frozen (m, mean pooling)": "frozen", "lp_ft (m, mean pooling, lr1)": "lp_ft (lr1)",
                     "ecfp_rf (ecfp4)": "ecfp_rf (ecfp4)"}  # fmt: skip
    assert common == "m, mean pooling"
    two = ["lora (m, cls pooling)", "lora (m, mean pooling)", "frozen (m, mean pooling)"]
    assert short_labels(two)[0] == {a: a for a in two} or len(set(short_labels(two)[0].values())) == 3
