import json
from pathlib import Path

import pytest

from delbind.comparison import load_runs, summarize
from delbind.errors import DataError
from delbind.results import collect, keep, pages, pretrain_summary, render, save_run, stale
from tests.helpers import ROOT, write_cv_sweep


def test_readme_and_docs_results_blocks_are_rendered_from_the_committed_files():
    for page in pages(ROOT):
        assert stale(page, ROOT / "results") == [], page  # else: python scripts/results.py render


def test_collect_then_render_puts_the_file_and_its_provenance_in_the_readme(tmp_path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "comparison.md").write_text("| arm |\n|---|\n| a |\n")
    out = collect(sweep, tmp_path / "results" / "demo", "python scripts/train.py experiment=x", root=ROOT)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["command"] == "python scripts/train.py experiment=x" and meta["commit"] and meta["machine"]
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:demo/comparison -->\nold figures\n<!-- /results -->\nend\n")
    assert stale(readme, tmp_path / "results") == ["demo/comparison"]
    text = render(readme, tmp_path / "results")
    assert "| a |" in text and "old figures" not in text and "python scripts/train.py experiment=x" in text
    page = tmp_path / "page.md"  # a docs page: the provenance collapsed above the figures
    page.write_text("<!-- results:demo/comparison -->\n<!-- /results -->\n")
    shown = render(page, tmp_path / "results")
    assert shown.index('<details markdown="1"><summary>How this was made') < shown.index("experiment=x")
    assert shown.index("experiment=x") < shown.index("</details>") < shown.index("| a |")
    assert "<details" not in text  # README: one line
    readme.write_text(text)
    assert stale(readme, tmp_path / "results") == []
    (out / "comparison.md").write_text("| arm |\n|---|\n| b |\n")  # the file changed: the README is out of date
    assert stale(readme, tmp_path / "results") == ["demo/comparison"]


def test_an_empty_sweep_dir_and_a_missing_results_file_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="holds none of"):
        collect(tmp_path, tmp_path / "out", "cmd")
    readme = tmp_path / "README.md"
    readme.write_text("<!-- results:nope/comparison -->\n<!-- /results -->\n")
    with pytest.raises(DataError, match="results:nope/comparison"):
        render(readme, tmp_path / "results")


def write_run_metrics(run_dir: Path, **extra) -> dict:
    """A finished run's metrics.json: its test figures and cost."""
    metrics = {"arm": "finetune", "fold": 0, "folds": 5, "n_train": 671, "train_runtime_s": 530.2, "threads": 2,
               "peak_memory_mb": 4449.1, "trainable_params": 6608897, **extra}  # fmt: skip
    for name in ("test_easy", "test_hard"):
        for metric, value in (("auroc", 0.9), ("auprc", 0.8)):
            metrics |= {f"{name}_{metric}": value, f"{name}_{metric}_ci95": [value - 0.05, value + 0.05]}
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    return metrics


def test_collect_keeps_a_jobs_printed_table_and_cost(tmp_path):
    sweep = tmp_path / "sweep"
    write_run_metrics(sweep / "5")
    (sweep / "comparison.md").write_text("| arm |\n")
    out = collect(sweep, tmp_path / "results" / "demo", "cmd", root=ROOT, runs=("5",))
    text = (out / "run_5.md").read_text()
    assert "test_hard    0.900 [0.850, 0.950]   0.800 [0.750, 0.850]" in text
    assert "finetune on fold 0 of 5: 671 training molecules, trained 530 s on 2 threads" in text


def test_save_run_keeps_one_runs_printed_table_its_metrics_and_the_commit_it_trained_on(tmp_path):
    metrics = write_run_metrics(tmp_path / "run", commit="abc1234")
    path = save_run(tmp_path / "run", tmp_path / "results" / "make_train", "make train", root=ROOT)
    assert path == tmp_path / "results" / "make_train" / "run.md"
    assert "test_easy    0.900 [0.850, 0.950]   0.800 [0.750, 0.850]" in path.read_text()
    assert json.loads((path.parent / "metrics.json").read_text()) == metrics  # the figures, to check the table by
    meta = json.loads((path.parent / "meta.json").read_text())
    assert meta["command"] == "make train" and meta["run_commits"] == ["abc1234"]
    with pytest.raises(DataError, match="no metrics.json in"):
        save_run(tmp_path / "nothing", tmp_path / "results" / "other", "make train", root=ROOT)


def test_collect_names_the_code_of_the_committed_fold_runs_a_comparison_was_drawn_from(tmp_path):
    tables = tmp_path / "comparison"  # compare.py --out: tables only, no runs below it
    tables.mkdir()
    (tables / "comparison.md").write_text("| arm |\n")
    results = tmp_path / "results" / "demo"
    for row, commit in (("a", "abc1234"), ("b", "def5678+dirty")):
        (results / "runs" / row / "fold0").mkdir(parents=True)
        (results / "runs" / row / "fold0" / "metrics.json").write_text(json.dumps({"commit": commit}))
    meta = json.loads((collect(tables, results, "cmd", root=ROOT) / "meta.json").read_text())
    assert meta["run_commits"] == ["abc1234", "def5678+dirty"] and meta["runs"] == str(results / "runs")
    # tables drawn from runs kept under other results: named, they are the ones recorded
    other = tmp_path / "results" / "other"
    meta = json.loads(
        (collect(tables, other, "cmd", root=ROOT, run_dirs=(results / "runs" / "a",)) / "meta.json").read_text()
    )
    assert meta["run_commits"] == ["abc1234"] and meta["runs"] == str(results / "runs" / "a")
    with pytest.raises(DataError, match="no metrics.json under"):
        collect(tables, other, "cmd", root=ROOT, run_dirs=(tmp_path / "typo",))


def test_a_saved_benchmark_table_renders_under_its_command(tmp_path):
    from delbind.results import save

    path = save(tmp_path / "results" / "bench" / "x", "build", "| stage | s |\n| read | 0.2 |\n", "python b.py", ROOT)
    assert path.read_text().startswith("| stage |")
    assert json.loads((path.parent / "meta.json").read_text())["command"] == "python b.py"
    readme = tmp_path / "README.md"
    readme.write_text("<!-- results:bench/x/build -->\n<!-- /results -->\n")
    assert "`python b.py`" in render(readme, tmp_path / "results") and "| read | 0.2 |" in render(
        readme, tmp_path / "results"
    )


def test_a_pretraining_run_becomes_a_table_of_its_corpus_cost_and_loss(tmp_path):
    metrics = {"n_molecules": 18623, "epochs": 1.0, "global_step": 582, "train_runtime_s": 375.7,
               "train_samples_per_s": 49.56, "peak_memory_mb": 1369.6, "mlm_loss_before": 0.6307,
               "mlm_loss_after": 0.5372}  # fmt: skip
    corpus = {"corpus": "moses=20000", "corpus_rows": 20000, "corpus_invalid_smiles_dropped": 0,
              "corpus_duplicates_dropped": 2, "corpus_forgetting_heldout_dropped": 1,
              "corpus_eval_groups_dropped": 1377}  # fmt: skip
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    (tmp_path / "corpus.json").write_text(json.dumps(corpus))
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in pretrain_summary(tmp_path).splitlines()[2:]]
    rows = dict(cells)
    assert rows["corpus"] == "moses=20000" and rows["molecules pre-trained on"] == "18,623"
    assert rows["dropped: invalid / duplicate / forgetting held-out"] == "0 / 2 / 1"
    assert rows["dropped: a val / test group of the data, any fold"] == "1,377"
    assert rows["train time (s), molecules/s"] == "376, 49.6"
    assert rows["held-out MLM loss before -> after"] == "0.631 -> 0.537"


def test_keep_copies_each_fold_run_once_by_what_tells_the_runs_apart_and_never_overwrites(tmp_path):
    sweep = tmp_path / "sweep"
    write_cv_sweep(sweep, {"frozen": (1.0, 0.7), "finetune": (2.5, 0.8)}, folds=3)
    kept = keep([sweep], tmp_path / "runs")
    assert [str(p.relative_to(tmp_path / "runs")) for p in kept] == [
        f"{arm}/fold{k}" for arm in ("finetune", "frozen") for k in range(3)
    ]  # the arm differs between runs, so it is a level; the target, label and data_seed do not
    for place in kept:
        assert sorted(f.name for f in place.iterdir()) == ["metrics.json", "predictions.parquet"]
    # the kept runs redraw the same pooled comparison as the sweep
    pooled = [summarize(load_runs([d])).set_index("arm")["test_hard_auroc"] for d in (sweep, tmp_path / "runs")]
    assert pooled[0].to_dict() == pooled[1].to_dict()
    with pytest.raises(DataError, match="never overwrites"):
        keep([sweep / "0"], tmp_path / "runs" / "frozen")  # fold0 of that row is kept already
    assert len(list((tmp_path / "runs").rglob("metrics.json"))) == 6


def test_keep_lists_the_kept_folds_in_fold_order(tmp_path):
    write_cv_sweep(tmp_path / "sweep", {"frozen": (1.0, 0.7)}, folds=11, n=110)
    kept = keep([tmp_path / "sweep"], tmp_path / "runs")
    assert [p.name for p in kept] == [f"fold{k}" for k in range(11)]  # fold2 before fold10, as the folds ran


def test_keep_refuses_runs_it_cannot_place_apart_or_redraw(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_cv_sweep(a, {"frozen": (1.0, 0.7)}, folds=2)
    write_cv_sweep(b, {"frozen": (1.0, 0.7)}, folds=2, seed=1)  # the same recipe and folds again
    with pytest.raises(DataError, match="would both be"):
        keep([a, b], tmp_path / "runs")
    (a / "1" / "predictions.parquet").unlink()
    with pytest.raises(DataError, match="not a fold run with predictions"):
        keep([a], tmp_path / "runs")
    assert not (tmp_path / "runs").exists()  # nothing copied when any run is refused


def test_keep_tells_recipes_apart_by_the_keys_a_comparison_rows_them_by(tmp_path):
    for pooling, seed in (("mean", 0), ("cls", 0), ("cls", 1)):  # one arm: two poolings, and cls on two init seeds
        write_cv_sweep(tmp_path / f"{pooling}{seed}", {"lora": (1.0, 0.7)}, folds=2, seed=seed, pooling=pooling)
        for run in (tmp_path / f"{pooling}{seed}").glob("*/metrics.json"):
            run.write_text(json.dumps(json.loads(run.read_text()) | {"seed": seed}))
    kept = keep([tmp_path / d for d in ("mean0", "cls0", "cls1")], tmp_path / "runs")
    assert sorted(str(p.relative_to(tmp_path / "runs")) for p in kept) == [
        f"{pooling}/seed{seed}/fold{k}" for pooling, seed in (("cls", 0), ("cls", 1), ("mean", 0)) for k in range(2)
    ]


def test_kept_runs_carry_their_training_log_and_config_for_the_report(tmp_path):
    from delbind.report.data import run_config
    from delbind.rundirs import log_history

    sweep = tmp_path / "sweep"
    write_cv_sweep(sweep, {"finetune": (2.5, 0.8)}, folds=2)
    history = [{"loss": 0.69, "step": 1, "epoch": 0.5}, {"loss": 0.52, "step": 2, "epoch": 1.0},
               {"eval_val_hard_loss": 0.6, "eval_val_hard_auprc": 0.75, "step": 2, "epoch": 1.0}]  # fmt: skip
    for step in (1, 2):  # the newest checkpoint's state is the whole history
        ckpt = sweep / "0" / "checkpoints" / f"checkpoint-{step}"
        ckpt.mkdir(parents=True)
        (ckpt / "trainer_state.json").write_text(json.dumps({"log_history": history[: step + 1]}))
    (sweep / "0" / ".hydra").mkdir()
    (sweep / "0" / ".hydra" / "config.yaml").write_text("trainer:\n  learning_rate: 0.0001\n")
    fold0, fold1 = keep([sweep], tmp_path / "runs")
    assert log_history(fold0) == history and not (fold0 / "checkpoints").exists()
    assert run_config(fold0) == {"trainer": {"learning_rate": 0.0001}}
    assert sorted(f.name for f in fold1.iterdir()) == ["metrics.json", "predictions.parquet"]  # had neither
    assert log_history(fold1) == [] and run_config(fold1) == {}


def test_a_page_states_a_legend_once_and_a_later_table_keeps_only_its_own_sentences(tmp_path):
    from delbind.results import save

    shared = "Cells: figure [95% CI]; CI = a bootstrap. evaluation: folds x repeats."
    for name, own in (("a", "p: Holm over 3 rows."), ("b", "p: Holm over 4 rows.")):
        save(tmp_path / "results" / name, "t", f"| x |\n|---|\n| 1 |\n\n{shared}\n\nCells: {own} Verdict: by TOST.\n",
             "python c.py", ROOT)  # fmt: skip
    page = tmp_path / "docs" / "p.md"
    page.parent.mkdir()
    page.write_text("".join(f"<!-- results:{n}/t -->\n<!-- /results -->\n" for n in ("a", "b")))
    text = render(page, tmp_path / "results")
    assert text.count("CI = a bootstrap") == 1 and text.count("Verdict: by TOST.") == 1
    assert "Cells: as the first legend on this page." in text  # b's shared legend, said above
    assert "Cells: p: Holm over 4 rows. (the rest as the first legend on this page)" in text  # b's own sentence
    page.write_text(text)
    assert stale(page, tmp_path / "results") == []  # the rendered page is up to date, not stale by its dedupe


@pytest.mark.parametrize(
    "variable", ["COURSE_RUNS", "FP_HEAD_RUNS", "PANEL_RUNS", "ANNALOG_RUNS", "ECFP_RF_RUNS", "PANEL_ECFP_RF_RUNS"]
)
def test_the_runs_the_makefile_draws_committed_tables_from_are_committed(variable):
    """make course-results / panel-results / annalog-results redraw results/ from these dirs: each must hold kept
    fold runs."""
    import shutil
    import subprocess

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    printed = subprocess.run(
        ["make", "--no-print-directory", "--eval", f"print-runs: ; @echo $({variable})", "print-runs"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert len(printed) >= 2
    for d in printed:
        assert list((ROOT / d).glob("**/fold*/metrics.json")), d
