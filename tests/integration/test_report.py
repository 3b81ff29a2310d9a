"""The course report on real smoke runs: report.html self-contained and true to the run files, report.ipynb
executing top to bottom, wandb getting the table, the chart and the report."""

import base64
import json
import re
import shutil
import subprocess

import nbformat
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_curve

from delbind.comparison import load_runs, summarize
from delbind.report import figures, load_report, write_report
from delbind.report.sections import SECTIONS
from delbind.tasks import train
from tests.helpers import compose_cfg, tiny_arm_label

ARMS = ["frozen", "finetune", "ecfp_rf"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """Three smoke runs laid out as a sweep (jobs 0-2), logged to wandb (offline: tests/conftest.py)."""
    root = tmp_path_factory.mktemp("sweep")
    for job, arm in enumerate(ARMS):
        train.run(compose_cfg(root / str(job), ["model=tiny", "debug=smoke", "logger=wandb", f"arm={arm}"]))
    write_report([root], root, wandb_project="delbind")
    return root


def _cell(row: pd.Series, metric: str) -> str:
    return f"{row[metric]:.3f} [{row[f'{metric}_lo']:.3f}, {row[f'{metric}_hi']:.3f}]"


def test_html_is_self_contained_and_carries_the_runs_numbers(sweep):
    html = (sweep / "report.html").read_text()
    assert "<script" not in html and "<link" not in html and 'src="http' not in html
    sources = re.findall(r'<img[^>]* src="([^"]+)"', html)
    assert len(sources) == 3  # loss curves, ROC/PR, cost vs quality; no forgetting or Kd in these runs
    for src in sources:
        assert base64.b64decode(src.removeprefix("data:image/png;base64,"))[:4] == b"\x89PNG"
    assert all(f">{title}</h2>" in html for title, _ in SECTIONS)
    summary = summarize(load_runs([sweep])).set_index("arm")
    for arm in summary.index:  # the comparison table, as comparison.py renders it
        assert all(_cell(summary.loc[arm], m) in html for m in ("test_hard_auroc", "test_easy_auprc"))
    frozen = json.loads((sweep / "0" / "metrics.json").read_text())
    assert f"{frozen['trainable_params']} / {frozen['total_params']:,}" in html  # the setup table
    ft, fz = summary.loc["finetune (tiny, mean pooling)"], summary.loc["frozen (tiny, mean pooling)"]
    cells = ("hard AUROC", _cell(ft, "test_hard_auroc"), _cell(fz, "test_hard_auroc"))  # the answer's evidence table
    assert "\n".join(f"<td>{c}</td>" for c in cells) in html
    assert f"{ft['train_runtime_s'] / fz['train_runtime_s']:.1f}x the frozen trunk's training time" in html
    best = summary["val_hard_auprc"].idxmax()  # the report names the val-best row, whatever test says
    assert f"Chosen on validation, the best arm is {best} (the highest mean val hard AU-PRC" in html
    assert f"Paired against <strong>{best}</strong> (the row with the highest mean val hard AU-PRC)" in html
    # one fold of each arm: the paired tests run on that fold's molecules, and the answers say so
    assert "paired bootstrap (AU-PRC) on the one fold both ran" in html and "no paired test" not in html
    assert "No run measured forgetting" in html and "No held-out Kd sets" in html
    answers = (sweep / "answers.md").read_text()  # the five answers alone, as markdown
    assert answers.startswith("**1. Did fine-tuning improve AUROC and AU-PRC") and "**5. Will contrastive" in answers
    assert f"| hard AUROC | {_cell(ft, 'test_hard_auroc')} | {_cell(fz, 'test_hard_auroc')} |" in answers


def test_figures_are_drawn_from_the_run_files(sweep):
    report = load_report([sweep])
    roc = figures.roc_pr_curves(report)
    preds = pd.read_parquet(sweep / "0" / "predictions.parquet").query("eval_set == 'test_hard'")
    fpr, tpr, _ = roc_curve(preds["label"], preds["score"])
    hard = roc.axes[0].lines[1]  # frozen's ROC panel: easy, hard, diagonal
    fold = json.loads((sweep / "0" / "metrics.json").read_text())["fold"]
    titles = [ax.get_title() for ax in roc.axes if "ROC" in ax.get_title()]
    assert len(titles) == 3 and all(t.endswith(f"ROC (fold {fold}, repeat 0/0)") for t in titles)  # one matched fold
    np.testing.assert_array_equal(hard.get_xdata(), fpr)
    np.testing.assert_array_equal(hard.get_ydata(), tpr)
    cost = figures.cost_quality(report.summary).axes[0]
    assert cost.get_xscale() == "log"
    points = np.vstack([c.lines[0].get_xydata() for c in cost.containers])  # an errorbar per arm, in row order
    np.testing.assert_allclose(points[:, 0], report.summary["train_runtime_s"])
    np.testing.assert_allclose(points[:, 1], report.summary["test_hard_auroc"])
    loss = [ax for ax in figures.loss_curves(report).axes if ax.get_visible()]
    assert len(loss) == 2  # the two transformer arms; ecfp_rf has no Trainer history
    metrics = json.loads((sweep / "1" / "metrics.json").read_text())
    assert len(loss[1].lines[0].get_xdata()) == metrics["global_step"]  # train loss at every step


def test_notebook_runs_top_to_bottom_offline_and_agrees_with_the_page(sweep, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    moved = tmp_path / "elsewhere"  # the runs and the notebook copied to another place: it rebuilds there
    shutil.copytree(sweep, moved, ignore=shutil.ignore_patterns("wandb", "model"))
    saved = nbformat.read(moved / "report.ipynb", as_version=4)
    executed = nbformat.read(moved / "report.ipynb", as_version=4)
    assert str(sweep) not in executed.cells[1].source  # run dirs relative to the notebook, not absolute
    NotebookClient(executed, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(moved)}}).execute()
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 3

    def texts(nb):
        return [o["data"]["text/markdown"] for c in nb.cells if c.cell_type == "code" for o in c.outputs
                if "text/markdown" in o.get("data", {})]  # fmt: skip

    def figures(nb):  # the setup sentence names the dirs as given (absolute at build, relative in the notebook)
        return [re.sub(r"runs read from (`[^`]*`(, )?)+", "runs read from DIRS", t, count=1) for t in texts(nb)]

    assert figures(executed) == figures(saved)  # the notebook recomputes what the page shows


def test_wandb_gets_the_table_the_chart_and_the_report(sweep, tmp_path):
    runs = list((sweep / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    media = runs[0] / "files" / "media"
    table = json.loads(next((media / "table").glob("comparison_*.table.json")).read_text())
    assert sorted(row[0] for row in table["data"]) == sorted(tiny_arm_label(a, tmp_path) for a in ARMS)
    assert next((media / "images").glob("cost_quality_*.png")).read_bytes()[:4] == b"\x89PNG"
    log = next(runs[0].glob("*.wandb")).read_bytes()
    assert b"report.html" in log and b"report.ipynb" in log  # the artifact's manifest


@pytest.mark.slow
def test_report_renders_in_headless_chromium(sweep, tmp_path):
    """What a reader of report.html sees at 1300 px: ink down the page, every figure drawn, every table fitting or
    scrolling in its own box with the row names in view, no raw markdown (tests/browser.py)."""
    from tests.browser import chromium, problems, seen

    shot = tmp_path / "report.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
             f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars", "--window-size=1300,4000"]  # fmt: skip
    subprocess.run(
        [chromium(), *flags, f"--screenshot={shot}", (sweep / "report.html").as_uri()], timeout=120, check=True
    )
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (4000, 1300)
    rows_with_ink = (pixels < 200).any(axis=1).mean()
    assert rows_with_ink > 0.3  # text, tables and figures drawn down the page, not a blank or error page
    view = seen(sweep / "report.html", tmp_path / "profile-measure", width=1300)
    assert len(view["images"]) == 3 and len(view["tables"]) >= 5  # loss curves, ROC / PR, cost; setup, comparison..
    assert problems(view) == []
