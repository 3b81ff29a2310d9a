import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from delbind.comparison import QUALITY, compare, load_runs, summarize, write_comparison
from delbind.comparison.tables import to_markdown
from delbind.errors import ConfigError, DataError
from delbind.evaluation import statistics as st
from tests.helpers import write_cv_sweep as _cv_sweep
from tests.helpers import write_fake_run as _write_run
from tests.helpers import write_seed_runs

# --- old runs: seeds that re-split (no `cv` key) -------------------------------------------------------------------


@pytest.fixture
def sweep(tmp_path):
    for seed, value in enumerate([0.7, 0.8, 0.9]):
        _write_run(tmp_path, f"ft{seed}", "finetune", seed, value, cost=100.0 + seed)
    _write_run(tmp_path, "frozen0", "frozen", 0, 0.6)
    return tmp_path


def test_old_runs_are_re_split_seeds_with_a_t_interval_over_splits(tmp_path):
    for data_seed, values in enumerate([(0.6, 0.7), (0.8, 0.9), (0.7, 0.7)]):
        for seed, value in enumerate(values):
            _write_run(tmp_path, f"d{data_seed}s{seed}", "frozen", seed, value, data_seed=data_seed)
    row = summarize(load_runs([tmp_path])).iloc[0]
    per_split = [0.65, 0.85, 0.7]  # the 6 runs are 3 splits: the interval is a t-interval over 3 values
    lo, hi = stats.t.interval(0.95, 2, loc=np.mean(per_split), scale=stats.sem(per_split))
    assert row["design"] == "re-split seeds (old runs)" and row["ci"] == "splits" and row["n_units"] == 3
    assert row["test_hard_auroc"] == pytest.approx(np.mean(per_split))
    assert (row["test_hard_auroc_lo"], row["test_hard_auroc_hi"]) == pytest.approx((max(lo, 0.0), min(hi, 1.0)))


def test_single_run_uses_its_bootstrap_ci(sweep):
    frozen = summarize(load_runs([sweep])).set_index("arm").loc["frozen (m)"]
    assert frozen["ci"] == "bootstrap"
    assert (frozen["test_easy_auprc_lo"], frozen["test_easy_auprc_hi"]) == pytest.approx((0.5, 0.65))


def test_no_metrics_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no metrics.json"):
        load_runs([tmp_path])


def test_rows_follow_the_sweep_order_not_the_alphabet(tmp_path):
    for job, mode in [(2, "frozen"), (10, "finetune"), (1, "ecfp_rf")]:
        _write_run(tmp_path, str(job), mode, 0, 0.7)
    assert list(summarize(load_runs([tmp_path]))["arm"]) == ["ecfp_rf (m)", "frozen (m)", "finetune (m)"]


def test_forgetting_is_averaged_and_n_a_without_an_mlm_head(tmp_path):
    for seed, forgot in enumerate([0.1, 0.3]):
        _write_run(tmp_path, f"ft{seed}", "finetune", seed, 0.8, forgetting=forgot)
    _write_run(tmp_path, "rf0", "ecfp_rf", 0, 0.8)  # no MLM head: no forgetting key
    summary = summarize(load_runs([tmp_path]))
    assert summary.set_index("arm").loc["finetune (m)", "forgetting"] == pytest.approx(0.2)
    table = to_markdown(summary)
    assert "| +0.200 |" in table and table.splitlines()[3].endswith("| n/a |")  # the ecfp_rf row


def test_drift_is_a_column_only_where_some_row_measured_it(tmp_path):
    for seed, drift in enumerate([0.2, 0.4]):
        _write_run(tmp_path / "new", f"ft{seed}", "finetune", seed, 0.8, representation_drift=drift)
    _write_run(tmp_path / "new", "rf0", "ecfp_rf", 0, 0.8)  # no trunk: no drift key
    table = to_markdown(summarize(load_runs([tmp_path / "new"])))
    header, rows = table.splitlines()[0], table.splitlines()[2:4]
    assert header.endswith("| forgetting (MLM loss) | drift (1 - CKA) |") and "1 - linear CKA" in table
    last = {r.split(" | ")[0]: r.split(" | ")[-1] for r in rows}
    assert last == {"| ecfp_rf (m)": "n/a |", "| finetune (m)": "0.300 |"}
    _write_run(tmp_path / "old", "ft0", "finetune", 0, 0.8)  # kept before drift was measured: no column at all
    old = to_markdown(summarize(load_runs([tmp_path / "old"])))
    assert "drift" not in old and old.splitlines()[0].endswith("| forgetting (MLM loss) |")


def test_corrected_t_pairs_old_runs_by_split_and_is_more_cautious_than_a_plain_t(tmp_path):
    for seed, (a, b) in enumerate([(0.60, 0.62), (0.90, 0.93), (0.70, 0.74)]):
        _write_run(tmp_path, f"a{seed}", "frozen", seed, a, val_hard_auprc=0.80)
        _write_run(tmp_path, f"b{seed}", "finetune", seed, b, val_hard_auprc=0.85)
    _write_run(tmp_path, "b3", "finetune", 3, 0.99, val_hard_auprc=0.85)  # frozen never ran split 3: not paired
    result = compare([tmp_path], reference="frozen")
    row = result.pairs.iloc[0]
    expected = st.corrected_ttest([0.02, 0.03, 0.04], 800, 200)
    assert row["method"] == "corrected t" and row["n_units"] == 3
    assert row["test_hard_auroc_diff"] == pytest.approx(0.03)
    assert row["test_hard_auroc_p"] == pytest.approx(expected.p)
    assert row["test_hard_auroc_p"] > stats.ttest_rel([0.62, 0.93, 0.74], [0.60, 0.90, 0.70]).pvalue
    assert row["val_hard_auprc_diff"] == pytest.approx(0.05)


# --- cross-validation: out-of-fold predictions pooled ---------------------------------------------------------------


def test_complete_folds_are_pooled_and_scored_once_per_molecule(tmp_path):
    labels, _ = _cv_sweep(tmp_path, {"frozen": (1.0, 0.7), "finetune": (2.0, 0.8)})
    result = compare([tmp_path])
    row = result.summary.set_index("arm").loc["finetune (m)"]
    preds = pd.concat(pd.read_parquet(p) for p in sorted(tmp_path.glob("[5-9]/predictions.parquet")))
    hard = preds[preds["eval_set"] == "test_hard"]
    assert row["ci"] == "pooled" and row["design"] == "k-fold CV" and row["n_units"] == 5
    assert row["test_hard_auroc"] == pytest.approx(roc_auc_score(hard["label"], hard["score"]))
    assert (row["n_test_hard_binders"], row["n_test_hard_negatives"]) == (labels.sum(), (labels == 0).sum())
    assert row["test_hard_auroc_lo"] < row["test_hard_auroc"] < row["test_hard_auroc_hi"]


def test_pooled_verdict_is_delong_on_the_shared_molecules_against_the_val_best_row(tmp_path):
    _cv_sweep(tmp_path, {"frozen": (1.0, 0.7), "finetune": (2.5, 0.8), "twin": (2.5, 0.75)})
    result = compare([tmp_path])
    pairs = result.pairs.set_index("arm")
    assert set(pairs["reference"]) == {"finetune (m)"}  # highest val, whatever test says
    preds = {arm: pd.concat(pd.read_parquet(p) for p in sorted(tmp_path.glob(f"{j}/predictions.parquet")))
             for arm, j in (("frozen", "[0-4]"), ("finetune", "[5-9]"))}  # fmt: skip
    a, b = (preds[k].query("eval_set == 'test_hard'").sort_values("smiles") for k in ("frozen", "finetune"))
    expected = st.delong(a["label"].to_numpy(), a["score"].to_numpy(), b["score"].to_numpy())
    frozen = pairs.loc["frozen (m)"]
    assert frozen["method"].startswith("pooled out-of-fold") and frozen["n_units"] == 5
    assert frozen["test_hard_auroc_diff"] == pytest.approx(expected.diff)
    assert frozen["test_hard_auroc_p"] == pytest.approx(expected.p)
    assert frozen["test_hard_auroc_verdict"] == "worse"
    holm = st.holm(result.pairs["test_hard_auroc_p"].to_numpy())
    np.testing.assert_allclose(result.pairs["test_hard_auroc_p_holm"], holm)


def test_identical_recipes_are_equivalent_within_the_margin(tmp_path):
    _cv_sweep(tmp_path, {"a": (2.0, 0.8), "b": (2.0, 0.7)})
    (tmp_path / "5" / "predictions.parquet").write_bytes((tmp_path / "0" / "predictions.parquet").read_bytes())
    for f in range(1, 5):  # b's predictions are a's: the same scores on every molecule
        (tmp_path / str(5 + f) / "predictions.parquet").write_bytes(
            (tmp_path / str(f) / "predictions.parquet").read_bytes()
        )
    row = compare([tmp_path]).pairs.iloc[0]
    assert row["test_hard_auroc_diff"] == 0 and row["test_hard_auroc_verdict"] == "equivalent"


def test_an_unfinished_sweep_is_not_pooled(tmp_path):
    _cv_sweep(tmp_path, {"frozen": (1.0, 0.7), "finetune": (2.0, 0.8)}, skip={("finetune", 4)})
    summary = compare([tmp_path]).summary.set_index("arm")
    assert summary.loc["frozen (m)", "ci"] == "pooled" and summary.loc["finetune (m)", "ci"] == "splits"


def test_reference_by_name_and_bad_references(tmp_path):
    _cv_sweep(tmp_path, {"frozen": (1.0, 0.7), "finetune": (2.0, 0.8)})
    assert compare([tmp_path], reference="frozen").pairs["reference"].iloc[0] == "frozen (m)"
    for bad, why in [("ecfp_rf", "matches no row"), ("finetune (x)", "matches no row")]:
        with pytest.raises(ConfigError, match=why):
            compare([tmp_path], reference=bad)


def test_an_arm_name_two_rows_share_is_an_ambiguous_reference(tmp_path):
    for seed, pooling in enumerate(["cls", "mean"]):
        _write_run(tmp_path, f"ft{seed}", "finetune", seed, 0.7, pooling=pooling, val_hard_auprc=0.8)
    with pytest.raises(ConfigError, match="matches several rows"):
        compare([tmp_path], reference="finetune")


def test_files_written_carry_the_verdicts(tmp_path):
    _cv_sweep(tmp_path, {"frozen": (1.0, 0.7), "finetune": (2.5, 0.8)})
    write_comparison([tmp_path], tmp_path, wandb_project=None, reference="frozen")
    md = (tmp_path / "comparison.md").read_text()
    assert "Paired against **frozen (m)** (the reference asked for)" in md and "**better**" in md
    assert "| finetune (m) | k-fold CV: 5 x 1 |" in md and "found with 80% power" in md
    assert "Holm-adjusted over the 1 row (Holm changes nothing)" in md
    table = pd.read_csv(tmp_path / "comparison_paired.csv")
    assert list(table["arm"]) == ["finetune (m)"] and table["test_hard_auroc_verdict"].iloc[0] == "better"
    assert {m for m in QUALITY} <= set(pd.read_csv(tmp_path / "comparison.csv").columns)
    assert (tmp_path / "comparison.png").read_bytes()[:4] == b"\x89PNG"


def test_without_val_metrics_there_is_no_reference_and_no_paired_table(sweep):
    write_comparison([sweep], sweep, wandb_project=None)
    assert "Paired against" not in (sweep / "comparison.md").read_text()


def test_the_sweep_callback_falls_back_to_the_val_best_row_while_its_reference_has_not_run(tmp_path, caplog):
    from delbind.callbacks import WriteComparison

    _cv_sweep(tmp_path, {"frozen": (1.0, 0.7), "finetune": (2.0, 0.8)})
    callback = WriteComparison(reference="ecfp_rf")
    assert callback._write(tmp_path) is None
    assert "reference 'ecfp_rf' matches no row" in caplog.text
    assert (
        "against **finetune (m)** (the row with the highest mean val hard AU-PRC)"
        in (tmp_path / "comparison.md").read_text()
    )
    assert WriteComparison(reference="frozen")._write(tmp_path) == "frozen"


def test_a_label_makes_a_recipe_a_row_of_its_own(tmp_path):
    _write_run(tmp_path, "a", "frozen", 0, 0.7, label="lr1e-2")
    _write_run(tmp_path, "b", "frozen", 0, 0.8, label="lr3e-2")
    _write_run(tmp_path, "c", "frozen", 0, 0.9)
    assert list(summarize(load_runs([tmp_path]))["arm"]) == ["frozen (m, lr1e-2)", "frozen (m, lr3e-2)", "frozen (m)"]


def test_a_checkpoint_chosen_on_another_val_metric_is_another_recipe(tmp_path):
    _write_run(tmp_path, "a", "frozen", 0, 0.7, selection_metric="val_hard_loss")
    _write_run(tmp_path, "b", "frozen", 0, 0.8, selection_metric="val_hard_auprc")  # the default: no word added
    _write_run(tmp_path, "c", "frozen", 1, 0.9)  # older runs: the default
    rows = summarize(load_runs([tmp_path]))
    assert list(rows["arm"]) == ["frozen (m, chosen on val_hard_loss)", "frozen (m)"]
    assert list(rows["n_seeds"]) == [1, 2]


def test_two_runs_on_one_shared_fold_get_delong_on_its_molecules(tmp_path):
    _cv_sweep(tmp_path, {"frozen": (1.0, 0.7), "finetune": (2.5, 0.8)}, skip={(a, f) for a in ("frozen", "finetune")
                                                                              for f in (1, 2, 3, 4)})  # fmt: skip
    row = compare([tmp_path], reference="frozen").pairs.iloc[0]
    a, b = (pd.read_parquet(tmp_path / j / "predictions.parquet").query("eval_set == 'test_hard'") for j in "50")
    expected = st.delong(a["label"].to_numpy(), a["score"].to_numpy(), b["score"].to_numpy())
    assert row["method"].startswith("one shared fold") and row["n_units"] == 1
    assert row["test_hard_auroc_diff"] == pytest.approx(expected.diff)
    assert row["test_hard_auroc_p"] == pytest.approx(expected.p)


def test_runs_of_two_targets_are_rows_apart(tmp_path):
    _write_run(tmp_path, "a", "frozen", 0, 0.7, target="CHEMBL262")
    _write_run(tmp_path, "b", "frozen", 0, 0.9, target="CHEMBL2147")
    rows = summarize(load_runs([tmp_path])).set_index("arm")["test_hard_auroc"]
    assert rows.to_dict() == {"frozen (m) @ CHEMBL262": 0.7, "frozen (m) @ CHEMBL2147": 0.9}


# --- repeats: verdicts about arms ------------------------------------------------------------------------------------


def _hard(root, pattern):
    preds = pd.concat(pd.read_parquet(p) for p in sorted(root.glob(f"{pattern}/predictions.parquet")))
    return preds.query("eval_set == 'test_hard'").sort_values("smiles")


def test_two_seeds_of_one_recipe_are_paired_on_their_molecules_as_these_models(tmp_path):
    write_seed_runs(tmp_path, "frozen", [0], label="s0")
    write_seed_runs(tmp_path, "frozen", [1], label="s1")
    row = compare([tmp_path], reference="frozen (m, s0)").pairs.iloc[0]
    a, b = _hard(tmp_path, "frozen-d0-s1-*"), _hard(tmp_path, "frozen-d0-s0-*")
    expected = st.delong(a["label"].to_numpy(), a["score"].to_numpy(), b["score"].to_numpy())
    assert row["method"].startswith("pooled out-of-fold") and (row["n_units"], row["n_repeats"]) == (5, 1)
    assert row["test_hard_auroc_diff"] == pytest.approx(expected.diff)  # was "corrected t, 0 units, n/a"
    assert row["scope"] == "these models"
    assert "(these models)" in compare([tmp_path], reference="frozen (m, s0)").markdown()


def test_repeats_pair_on_the_deal_of_the_folds_and_count_the_spread_between_them(tmp_path):
    for data_seed in (0, 1, 2):  # repeat r: data_seed r, init seed r
        write_seed_runs(tmp_path, "finetune", [data_seed], signal=2.0, data_seed=data_seed, val=0.9)
        write_seed_runs(tmp_path, "frozen", [data_seed], signal=1.0, data_seed=data_seed, val=0.7)
    result = compare([tmp_path], reference="frozen")
    row = result.pairs.iloc[0]
    each = []
    for r in (0, 1, 2):
        a, b = _hard(tmp_path, f"finetune-d{r}-s{r}-*"), _hard(tmp_path, f"frozen-d{r}-s{r}-*")
        each.append(st.delong(a["label"].to_numpy(), a["score"].to_numpy(), b["score"].to_numpy()))
    diffs = np.array([t.diff for t in each])
    assert row["method"].startswith("repeats") and (row["n_units"], row["n_repeats"]) == (5, 3)
    assert row["scope"] == "arms" and row["test_hard_auroc_df"] == 2
    assert row["test_hard_auroc_diff"] == pytest.approx(diffs.mean())
    se = np.sqrt(np.mean([t.se**2 for t in each]) + diffs.var(ddof=1) / 3)
    assert row["test_hard_auroc_se"] == pytest.approx(se)
    assert row["test_hard_auroc_verdict"] == "better"
    assert "| repeats | 3 x 5 |" in result.markdown() and "(these models)" not in result.markdown()
    assert "| k-fold CV: 5 x 3 |" in result.markdown()  # folds of one repeat x repeats, not runs x repeats
    assert "averaged over the repeats (molecule sampling only" in result.markdown()


def test_two_groups_of_seeds_of_one_recipe_are_never_called_different(tmp_path):
    """The A/A invariant: seeds 0-4 and 5-9 of one noisy recipe, labelled as two rows, on the same folds."""
    write_seed_runs(tmp_path, "lp_ft", range(5), fit_sd=0.4, label="a")
    write_seed_runs(tmp_path, "lp_ft", range(5, 10), fit_sd=0.4, label="b")
    row = compare([tmp_path], reference="lp_ft (m, a)").pairs.iloc[0]
    assert row["method"].startswith("repeats") and row["n_repeats"] == 5
    assert row["test_hard_auroc_verdict"] not in ("better", "worse")
    assert row["test_hard_auprc_verdict"] not in ("better", "worse")


def test_a_real_difference_inside_the_margin_is_shown_as_both(tmp_path):
    from delbind.comparison.tables import verdict_cell

    row = pd.Series({"test_hard_auroc_verdict": "equivalent", "test_hard_auroc_significant": True,
                     "test_hard_auroc_diff": 0.008, "scope": "arms"})  # fmt: skip
    assert verdict_cell(row, "test_hard_auroc", 0.02) == "**equivalent**, higher but inside +-0.02"
    assert verdict_cell(pd.Series({**row, "scope": "these models"}), "test_hard_auroc", 0.02).endswith("(these models)")


def test_nadeau_bengio_compares_every_test_molecule_with_every_training_row(tmp_path):
    from delbind.comparison.verdicts import _train_test_sizes

    own = pd.DataFrame({"n_train": [800], "n_test_easy": [120], "n_test_hard": [124], "n_test_hard_binders": [60]})
    assert _train_test_sizes(own) == (800, 184)  # binders once, easy and hard negatives
    assert _train_test_sizes(own[["n_train", "n_test_hard"]]) == (800, 124)  # older runs: the hard set alone


def test_without_labels_one_recipe_kept_under_two_labels_pools_its_repeats_and_a_clash_is_refused(tmp_path):
    write_seed_runs(tmp_path / "candidates", "finetune", [0], data_seed=0, label="lr1e-4")  # when it was a candidate
    for r in (1, 2):  # the same recipe as the default, no label
        write_seed_runs(tmp_path / "repeats", "finetune", [r], data_seed=r)
    with_labels = summarize(load_runs([tmp_path]))
    assert list(with_labels["arm"]) == ["finetune (m, lr1e-4)", "finetune (m)"]
    pooled = summarize(load_runs([tmp_path], labels=False))
    assert list(pooled["arm"]) == ["finetune (m)"] and list(pooled["n_repeats"]) == [3]
    write_seed_runs(tmp_path / "other", "finetune", [1], data_seed=1, label="lr2e-4")  # another recipe, same repeat
    with pytest.raises(DataError, match="two recipes under one name"):
        load_runs([tmp_path], labels=False)


def test_a_report_drawn_without_labels_writes_a_notebook_that_loads_the_runs_the_same_way(tmp_path):
    from delbind.report import load_report
    from delbind.report.render import to_notebook

    write_seed_runs(tmp_path / "runs", "finetune", [0], data_seed=0, label="lr1e-4")
    write_seed_runs(tmp_path / "runs", "finetune", [1], data_seed=1)
    report = load_report([tmp_path / "runs"], labels=False)
    setup = to_notebook(report, [], tmp_path).cells[1].source
    assert "labels=False" in setup and list(report.summary["arm"]) == ["finetune (m)"]
    assert "labels=False" not in to_notebook(load_report([tmp_path / "runs"]), [], tmp_path).cells[1].source


# --- twins: each row against the same recipe on another trunk ---------------------------------------------------------


def _two_trunks(root, fit_sd=0.1, signal_t=None):
    """frozen and finetune on trunks "m" and "t" (repeats 0-4, init seeds 0-4 on "m", 5-9 on "t") and an ECFP arm."""
    for r in range(5):
        for arm, signal in (("frozen", 1.0), ("finetune", 2.0)):
            write_seed_runs(root / "m", arm, [r], signal=signal, fit_sd=fit_sd, data_seed=r)
            write_seed_runs(root / "t", arm, [r + 5], signal=signal_t or signal, fit_sd=fit_sd, data_seed=r,
                            model="t")  # fmt: skip
        write_seed_runs(root / "fp", "ecfp_rf", [r], signal=1.5, data_seed=r, model="ecfp4")


def test_twins_pair_each_row_with_the_same_recipe_on_the_other_trunk(tmp_path):
    _two_trunks(tmp_path, signal_t=3.0)
    result = compare([tmp_path], twins="m")
    pairs = result.pairs.set_index("arm")["reference"].to_dict()
    assert pairs == {"frozen (t)": "frozen (m)", "finetune (t)": "finetune (m)"}  # ecfp_rf has no twin: not paired
    alone = compare([tmp_path / "m", tmp_path / "t"], reference="frozen (m)").pairs.set_index("arm")
    row = result.pairs.set_index("arm").loc["frozen (t)"]
    for key in ("test_hard_auroc_diff", "test_hard_auroc_se", "test_hard_auroc_p"):  # the same test; Holm over 2
        assert row[key] == pytest.approx(alone.loc["frozen (t)", key])
    assert row["method"].startswith("repeats") and row["test_hard_auroc_verdict"] == "better"
    assert "Each row paired against its twin on **m**" in result.markdown()
    assert "over the 2 rows" in result.markdown()


def test_one_recipe_on_two_trunks_that_differ_by_seed_noise_alone_is_never_called_different(tmp_path):
    _two_trunks(tmp_path, fit_sd=0.4)
    for _, row in compare([tmp_path], twins="m").pairs.iterrows():
        assert row["test_hard_auroc_verdict"] not in ("better", "worse")
        assert row["test_hard_auprc_verdict"] not in ("better", "worse")


def test_twins_on_a_trunk_no_row_has_is_a_clear_error(tmp_path):
    _two_trunks(tmp_path)
    with pytest.raises(ConfigError, match="no row has a twin on 'rxnfp_bert'"):
        compare([tmp_path], twins="rxnfp_bert")
