import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from delbind.comparison import QUALITY, load_runs, summarize, to_markdown, write_comparison
from delbind.errors import ConfigError


def _write_run(root, name, mode, seed, auroc, cost=10.0, **extra):
    d = root / name
    d.mkdir(parents=True)
    metrics = {"mode": mode, "model": "m", "seed": seed, "train_runtime_s": cost, "train_samples_per_s": 5.0,
               "peak_memory_mb": 100.0, "trainable_params": 33, **extra}  # fmt: skip
    for m in QUALITY:
        metrics[m] = auroc
        metrics[f"{m}_ci95"] = [auroc - 0.1, auroc + 0.05]
    (d / "metrics.json").write_text(json.dumps(metrics))


@pytest.fixture
def sweep(tmp_path):
    for seed, value in enumerate([0.7, 0.8, 0.9]):
        _write_run(tmp_path, f"ft{seed}", "finetune", seed, value, cost=100.0 + seed)
    _write_run(tmp_path, "frozen0", "frozen", 0, 0.6)
    return tmp_path


def test_runs_that_share_a_split_are_one_replicate_of_the_interval(tmp_path):
    for data_seed, values in enumerate([(0.6, 0.7), (0.8, 0.9), (0.7, 0.7)]):
        for seed, value in enumerate(values):
            _write_run(tmp_path, f"d{data_seed}s{seed}", "frozen", seed, value, data_seed=data_seed)
    row = summarize(load_runs([tmp_path])).iloc[0]
    per_split = [0.65, 0.85, 0.7]  # the 6 runs are 3 splits: the interval is a t-interval over 3 values
    lo, hi = stats.t.interval(0.95, 2, loc=np.mean(per_split), scale=stats.sem(per_split))
    assert row["test_hard_auroc"] == pytest.approx(np.mean(per_split))
    assert (row["test_hard_auroc_lo"], row["test_hard_auroc_hi"]) == pytest.approx((max(lo, 0.0), min(hi, 1.0)))


def test_mean_and_t_interval_over_seeds(sweep):
    summary = summarize(load_runs([sweep])).set_index("arm")
    ft = summary.loc["finetune (m)"]
    assert ft["n_seeds"] == 3 and ft["ci"] == "seeds"
    assert ft["test_hard_auroc"] == pytest.approx(0.8)
    lo, hi = stats.t.interval(0.95, 2, loc=0.8, scale=stats.sem([0.7, 0.8, 0.9]))
    assert hi > 1  # three seeds give a wide interval: it is clipped to where AUROC can be
    assert (ft["test_hard_auroc_lo"], ft["test_hard_auroc_hi"]) == pytest.approx((lo, 1.0))
    assert ft["train_runtime_s"] == pytest.approx(101.0)


def test_single_seed_uses_the_runs_bootstrap_ci(sweep):
    frozen = summarize(load_runs([sweep])).set_index("arm").loc["frozen (m)"]
    assert frozen["ci"] == "bootstrap"
    assert (frozen["test_easy_auprc_lo"], frozen["test_easy_auprc_hi"]) == pytest.approx((0.5, 0.65))


def test_files_and_columns(sweep):
    write_comparison([sweep], sweep)
    table = pd.read_csv(sweep / "comparison.csv")
    for m in QUALITY:
        assert {m, f"{m}_lo", f"{m}_hi"} <= set(table.columns)
    assert {"train_runtime_s", "train_samples_per_s", "peak_memory_mb", "trainable_params"} <= set(table.columns)
    md = (sweep / "comparison.md").read_text()
    assert md.count("\n| ") == 2 and "| finetune (m) | 3 | n/a | 0.800 [" in md
    assert (sweep / "comparison.png").read_bytes()[:4] == b"\x89PNG"


def test_markdown_marks_missing_costs():
    runs = pd.DataFrame([{"arm": "a", "seed": 0, **{m: 0.5 for m in QUALITY},
                          **{f"{m}_ci95": [0.4, 0.6] for m in QUALITY}, "train_runtime_s": 1.0,
                          "train_samples_per_s": 1.0, "peak_memory_mb": 1.0, "trainable_params": np.nan}])  # fmt: skip
    assert "| n/a |" in to_markdown(summarize(runs))


def test_no_metrics_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no metrics.json"):
        load_runs([tmp_path])


def test_rows_follow_the_sweep_order_not_the_alphabet(tmp_path):
    for job, mode in [(2, "frozen"), (10, "finetune"), (1, "ecfp_rf")]:
        _write_run(tmp_path, str(job), mode, 0, 0.7)
    assert list(summarize(load_runs([tmp_path]))["arm"]) == ["ecfp_rf (m)", "frozen (m)", "finetune (m)"]


def test_forgetting_is_a_column_averaged_over_seeds_and_n_a_without_an_mlm_head(tmp_path):
    for seed, forgot in enumerate([0.1, 0.3]):
        _write_run(tmp_path, f"ft{seed}", "finetune", seed, 0.8)
        metrics = json.loads((tmp_path / f"ft{seed}" / "metrics.json").read_text())
        (tmp_path / f"ft{seed}" / "metrics.json").write_text(json.dumps({**metrics, "forgetting": forgot}))
    _write_run(tmp_path, "rf0", "ecfp_rf", 0, 0.8)  # no MLM head: no forgetting key
    summary = summarize(load_runs([tmp_path])).set_index("arm")
    assert summary.loc["finetune (m)", "forgetting"] == pytest.approx(0.2)
    table = to_markdown(summary.reset_index())
    assert "forgetting (MLM loss)" in table and "| +0.200 |" in table
    assert table.splitlines()[3].endswith("| n/a |")  # the ecfp_rf row


def test_pooling_recipes_of_one_arm_are_rows_apart_with_their_val_selection_metric(tmp_path):
    for seed, (pooling, val) in enumerate([("cls", 0.6), ("cls", 0.8), ("mean", 0.9)]):
        _write_run(tmp_path, f"ft{seed}", "finetune", seed, 0.7)
        metrics = json.loads((tmp_path / f"ft{seed}" / "metrics.json").read_text())
        metrics |= {"pooling": pooling, "val_hard_auprc": val}
        (tmp_path / f"ft{seed}" / "metrics.json").write_text(json.dumps(metrics))
    _write_run(tmp_path, "rf0", "ecfp_rf", 0, 0.8)  # no pooling, no val metric recorded
    summary = summarize(load_runs([tmp_path])).set_index("arm")
    assert list(summary.index) == ["finetune (m, cls pooling)", "finetune (m, mean pooling)", "ecfp_rf (m)"]
    assert summary.loc["finetune (m, cls pooling)", "n_seeds"] == 2
    assert summary.loc["finetune (m, cls pooling)", "val_hard_auprc"] == pytest.approx(0.7)
    table = to_markdown(summary.reset_index())
    assert "| arm | seeds | val hard AU-PRC | easy AUROC |" in table
    assert "| finetune (m, mean pooling) | 1 | 0.900 |" in table and "| ecfp_rf (m) | 1 | n/a |" in table


def _paired_sweep(root):
    """Two arms on splits 0-2 (b also on split 3) whose per-split scores swing together: b - a = 0.02, 0.03, 0.04."""
    for seed, (a, b) in enumerate([(0.60, 0.62), (0.90, 0.93), (0.70, 0.74)]):
        _write_run(root, f"a{seed}", "frozen", seed, a, val_hard_auprc=0.80)
        _write_run(root, f"b{seed}", "finetune", seed, b, val_hard_auprc=0.85)
    _write_run(root, "b3", "finetune", 3, 0.99, val_hard_auprc=0.85)  # a never ran split 3: not paired
    return load_runs([root])


def test_paired_difference_is_over_the_shared_splits_with_a_t_interval_and_a_paired_p(tmp_path):
    from delbind.comparison import paired_difference

    runs = _paired_sweep(tmp_path)
    d = paired_difference(runs, "finetune (m)", "frozen (m)", "test_hard_auroc")
    diffs = [0.02, 0.03, 0.04]
    lo, hi = stats.t.interval(0.95, 2, loc=0.03, scale=stats.sem(diffs))
    assert d["n_splits"] == 3 and d["diff"] == pytest.approx(0.03)
    assert (d["lo"], d["hi"]) == pytest.approx((lo, hi)) and lo > 0  # the pairing settles what the rows cannot:
    summary = summarize(runs).set_index("arm")  # the rows' own intervals overlap widely
    assert summary.loc["finetune (m)", "test_hard_auroc_lo"] < summary.loc["frozen (m)", "test_hard_auroc"]
    assert d["p"] == pytest.approx(stats.ttest_rel([0.62, 0.93, 0.74], [0.60, 0.90, 0.70]).pvalue)
    assert d["p"] < 0.05


def test_paired_table_defaults_to_the_val_best_row_and_takes_a_named_reference(tmp_path):
    from delbind.comparison import paired

    runs = _paired_sweep(tmp_path)
    summary = summarize(runs)
    chosen = paired(runs, summary)  # finetune has the higher val: the reference
    assert list(chosen["arm"]) == ["frozen (m)"] and chosen["reference"].iloc[0] == "finetune (m)"
    assert chosen["test_hard_auroc_diff"].iloc[0] == pytest.approx(-0.03)
    assert chosen["val_hard_auprc_diff"].iloc[0] == pytest.approx(-0.05) and np.isnan(chosen["val_hard_auprc_lo"]).all()
    named = paired(runs, summary, reference="frozen")  # an arm name one row has
    assert named["reference"].iloc[0] == "frozen (m)" and named["test_hard_auroc_diff"].iloc[0] == pytest.approx(0.03)
    for bad, why in [("ecfp_rf", "matches no row"), ("finetune (x)", "matches no row")]:
        with pytest.raises(ConfigError, match=why):
            paired(runs, summary, reference=bad)


def test_an_arm_name_two_rows_share_is_an_ambiguous_reference(tmp_path):
    from delbind.comparison import paired

    for seed, pooling in enumerate(["cls", "mean"]):
        _write_run(tmp_path, f"ft{seed}", "finetune", seed, 0.7, pooling=pooling, val_hard_auprc=0.8)
    runs = load_runs([tmp_path])
    with pytest.raises(ConfigError, match="matches several rows"):
        paired(runs, summarize(runs), reference="finetune")


def test_comparison_md_and_csv_carry_the_paired_table(tmp_path):
    _paired_sweep(tmp_path)
    write_comparison([tmp_path], tmp_path, wandb_project=None, reference="frozen")
    md = (tmp_path / "comparison.md").read_text()
    assert "Paired by split against **frozen (m)** (the reference asked for)" in md
    assert "| finetune (m) | 3 | +0.050 | +0.030 [" in md  # val is constant per arm: a difference, no interval
    table = pd.read_csv(tmp_path / "comparison_paired.csv")
    assert list(table["arm"]) == ["finetune (m)"] and table["n_splits"].iloc[0] == 3


def test_without_val_metrics_there_is_no_reference_and_no_paired_table(sweep):
    write_comparison([sweep], sweep, wandb_project=None)
    assert "Paired by split" not in (sweep / "comparison.md").read_text()
    assert pd.read_csv(sweep / "comparison_paired.csv").empty  # the header only


def test_the_sweep_callback_falls_back_to_the_val_best_row_while_its_reference_has_not_run(tmp_path, caplog):
    from delbind.comparison import WriteComparison

    _paired_sweep(tmp_path)
    callback = WriteComparison(reference="ecfp_rf")
    assert callback._write(tmp_path) is None
    assert "reference 'ecfp_rf' matches no row" in caplog.text
    assert (
        "against **finetune (m)** (the row with the highest mean val hard AU-PRC)"
        in (tmp_path / "comparison.md").read_text()
    )
    assert WriteComparison(reference="frozen")._write(tmp_path) == "frozen"
