"""What the report reads from a run dir: the newest log history, the held-out Kd joined to the scores, and which run
of each arm its curves are drawn from."""

import json
from pathlib import Path

import pandas as pd

from delbind.report import load_report
from delbind.report.data import heldout_kd, where
from delbind.report.figures import heldout_kd_scatter, roc_pr_curves
from delbind.report.sections import heldout_kd as heldout_section
from delbind.report.sections import roc_pr
from delbind.rundirs import log_history
from tests.unit.report.fake_runs import write_arm, write_old_run


def _kindel_run(root, with_kd: bool = True):
    run = root / "0"
    (run / "dataset" / "external").mkdir(parents=True)
    metrics = {"arm": "frozen", "mode": "frozen", "model": "m", "seed": 0, "heldout_ondna_all_spearman": 0.5}
    for kind in ("easy", "hard"):
        for metric in ("auroc", "auprc"):
            metrics |= {f"test_{kind}_{metric}": 0.7, f"test_{kind}_{metric}_ci95": [0.6, 0.8]}
    (run / "metrics.json").write_text(json.dumps(metrics))
    held = pd.DataFrame({"smiles": ["C", "CC", "CCC", "CCCC"], "label": [1, 1, 0, 0], "kind": "heldout"})
    preds = held.assign(eval_set="heldout_ondna_all", score=[0.9, 0.7, 0.4, 0.1])
    preds.to_parquet(run / "predictions.parquet", index=False)
    if with_kd:
        held.assign(kd=[10.0, 100.0, 5000.0, 20000.0]).to_parquet(run / "dataset/external/heldout_ondna_all.parquet")
    return run


def test_heldout_kd_is_joined_by_row_and_drawn(tmp_path):
    run = _kindel_run(tmp_path)
    frame = heldout_kd(run)
    assert list(frame["kd"]) == [10.0, 100.0, 5000.0, 20000.0] and list(frame["score"]) == [0.9, 0.7, 0.4, 0.1]
    fig = heldout_kd_scatter(load_report([tmp_path]))
    assert "rho 1.00, n 4" in fig.axes[0].get_legend().get_texts()[0].get_text()  # score falls as Kd rises


def test_without_kd_on_disk_the_section_says_what_is_available(tmp_path):
    _kindel_run(tmp_path, with_kd=False)
    (block,) = heldout_section(load_report([tmp_path]))
    assert "no run kept the Kd values" in block and "heldout_ondna_all_spearman 0.500" in block


def test_log_history_comes_from_the_newest_checkpoint(tmp_path):
    for step in (2, 10):  # numeric order: checkpoint-10 is newer than checkpoint-2
        ckpt = tmp_path / "checkpoints" / f"checkpoint-{step}"
        ckpt.mkdir(parents=True)
        (ckpt / "trainer_state.json").write_text(json.dumps({"log_history": [{"step": step, "loss": 1.0}]}))
    assert log_history(tmp_path) == [{"step": 10, "loss": 1.0}]
    assert log_history(tmp_path / "nothing") == []


def test_first_runs_draw_every_arm_on_one_matched_fold(tmp_path):
    write_arm(tmp_path, "frozen", hard=0.5, val=0.6)  # repeat 0/0, folds 0-2
    write_arm(tmp_path, "frozen", hard=0.5, val=0.6, data_seed=1)  # repeat 1/0, folds 0-2
    write_arm(tmp_path, "finetune", hard=1.0, val=0.7, ran=(1, 2))
    write_arm(tmp_path, "finetune", hard=1.0, val=0.7, data_seed=1, ran=(0,))
    write_arm(tmp_path, "ecfp_rf", hard=1.0, val=0.5, ran=(2,))
    write_arm(tmp_path, "ecfp_rf", hard=1.0, val=0.5, data_seed=1, ran=(0,))
    report = load_report([tmp_path])
    assert report.matched_unit() == ("0/0", "2")  # shared by all: (0/0, 2) and (1/0, 0); the first, sorted
    first = report.first_runs()
    assert list(first.index) == list(report.summary["arm"])
    assert set(first["repeat"]) == {"0/0"} and set(first["unit"]) == {"2"}
    assert all(d.endswith("-0-0-2") for d in first["run_dir"])  # data_seed 0, seed 0, fold 2 of every arm
    titles = [ax.get_title() for ax in roc_pr_curves(report).axes if ax.get_title().endswith(")")]
    assert titles and all(t.endswith("ROC (fold 2, repeat 0/0)") for t in titles)
    assert roc_pr(report)[0].startswith("Every arm's run of one matched fold (fold 2, repeat 0/0)")


def test_first_runs_fall_back_to_each_arms_first_run_without_a_shared_fold(tmp_path):
    write_arm(tmp_path, "frozen", hard=0.5, val=0.6, ran=(1, 2))
    write_arm(tmp_path, "finetune", hard=1.0, val=0.7, ran=(0,))
    write_old_run(tmp_path, "ecfp_rf", seed=3)  # a re-split run from before cross-validation
    write_old_run(tmp_path, "ecfp_rf", seed=1)
    report = load_report([tmp_path])
    assert report.matched_unit() is None
    first = report.first_runs()
    assert where(first.loc["frozen (m)"]) == "fold 1, repeat 0/0"  # its first fold
    assert where(first.loc["finetune (m)"]) == "fold 0, repeat 0/0"
    assert where(first.loc["ecfp_rf (m)"]) == "split seed 1"  # its lowest split seed
    assert roc_pr(report)[0].startswith("No fold was run by every arm, so each arm's first run is drawn")


def test_loss_curves_draw_the_kept_logs_and_name_the_arms_without_one(tmp_path):
    from delbind.report.sections import loss_curves
    from delbind.rundirs import LOG_HISTORY, write_log_history

    history = [{"loss": 0.7 - 0.01 * s, "step": s} for s in range(1, 30)] + [{"eval_val_hard_loss": 0.5, "step": 29}]
    for run in write_arm(tmp_path, "finetune", hard=1.0, val=0.7):
        write_log_history(history, run / LOG_HISTORY)
    write_arm(tmp_path, "lora", hard=1.0, val=0.6)  # kept before logs were kept
    write_arm(tmp_path, "ecfp_rf", hard=1.0, val=0.5, fit_s=3.0)  # a baseline: fitted, not trained in steps
    note, fig = loss_curves(load_report([tmp_path]))
    assert [ax.get_title().split("\n")[0] for ax in fig.axes if ax.get_visible()] == ["finetune"]
    assert (
        "No curve for ecfp_rf (m): a baseline" in note and "No training log for lora (m): their runs were kept" in note
    )
    (only_baselines := tmp_path / "b").mkdir()
    write_arm(only_baselines, "ecfp_rf", hard=1.0, fit_s=3.0)
    assert loss_curves(load_report([only_baselines])) == ["No curve for ecfp_rf (m): a baseline is fitted at once, "
                                                          "not trained in steps."]  # fmt: skip


def test_the_setup_of_runs_kept_without_their_config_is_read_from_their_metrics(tmp_path):
    from delbind.report.data import setup_rows

    write_arm(tmp_path, "frozen", hard=1.0, val=0.6, split="scaffold", trainable_params=257, total_params=6608897,
              learning_rate=0.03, batch_size=32)  # fmt: skip
    write_arm(tmp_path, "finetune", hard=1.0, val=0.7, split="scaffold", trainable_params=6608897,
              total_params=6608897)  # fmt: skip
    write_arm(tmp_path, "lp_ft", hard=1.0, val=0.7, probe_runtime_s=4.0)
    write_arm(tmp_path, "ecfp_rf", hard=1.0, val=0.5, fit_s=3.0)
    rows = setup_rows(load_report([tmp_path])).set_index("arm")
    assert rows.loc["frozen (m)", "what trains"] == "head only (trunk frozen)"
    assert rows.loc["frozen (m)", "data"].endswith("(scaffold split)")
    assert (rows.loc["frozen (m)", "learning rate"], rows.loc["frozen (m)", "batch"]) == (0.03, 32)
    assert rows.loc["finetune (m)", "what trains"] == "all layers + head" and rows.loc["finetune (m)", "batch"] == "n/a"
    assert rows.loc["lp_ft (m)", "what trains"] == "head on frozen embeddings, then every weight"
    assert rows.loc["ecfp_rf (m)", "what trains"] == "a classical model on fixed features (no trunk)"


def test_an_arm_whose_matched_run_kept_no_log_draws_its_first_run_that_did(tmp_path):
    from delbind.report.sections import loss_curves
    from delbind.rundirs import LOG_HISTORY, write_log_history

    history = [{"loss": 0.7 - 0.01 * s, "step": s} for s in range(1, 30)]
    write_arm(tmp_path, "frozen", hard=1.0, val=0.6)  # repeat 0: kept before logs were kept
    for run in write_arm(tmp_path, "frozen", hard=1.0, val=0.6, data_seed=1, seed=1):  # repeat 1: with logs
        write_log_history(history, run / LOG_HISTORY)
    write_arm(tmp_path, "ecfp_rf", hard=1.0, val=0.5, fit_s=3.0)
    report = load_report([tmp_path])
    assert report.logged_runs().loc["frozen (m)", "repeat"] == "1/1"
    note, fig = loss_curves(report)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert len(titles) == 1 and "fold 0, repeat 1/1" in titles[0]
    assert "frozen (m): that fold's run kept no log, so its panel is the arm's first run that did" in note


def test_the_report_shows_run_dirs_inside_the_working_dir_relative_to_it(tmp_path, monkeypatch):
    write_arm(tmp_path / "results" / "runs", "frozen", hard=1.0)
    monkeypatch.chdir(tmp_path)
    report = load_report([(tmp_path / "results" / "runs").resolve()])
    assert report.shown_dirs == [str(Path("results") / "runs")]
    monkeypatch.chdir(tmp_path / "results")
    assert load_report([tmp_path / "results" / "runs"]).shown_dirs == ["runs"]


def test_a_saved_config_is_read_resolved_where_it_can_be(tmp_path):
    """Hydra saves interpolations as written: LoRA's targets point at the model's attention modules, and a path at
    Hydra's runtime, which cannot resolve outside the run."""
    from delbind.report.data import run_config, what_trains

    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text(
        "model: {attention_modules: [q_proj, k_proj, v_proj]}\n"
        "mode: {name: lora, lora: {r: 8, target_modules: '${model.attention_modules}'}}\n"
        "paths: {output_dir: '${hydra:runtime.output_dir}'}\n"
        "sweep: [{r: '${mode.lora.r}'}]\n"
    )
    cfg = run_config(tmp_path)
    assert what_trains(cfg) == "LoRA r=8 on q_proj, k_proj, v_proj + head"
    assert cfg["paths"]["output_dir"] == "${hydra:runtime.output_dir}"
    assert cfg["sweep"] == [{"r": 8}]  # inside a list too
