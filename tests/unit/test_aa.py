import pandas as pd
import pytest

from delbind.comparison.aa import recipe_runs, study, write_aa
from delbind.errors import DataError
from tests.helpers import write_seed_runs


def test_the_aa_study_counts_false_verdicts_of_one_repeat_and_of_the_repeats_test(tmp_path):
    write_seed_runs(tmp_path, "lp_ft", range(6), fit_sd=0.4)
    write_seed_runs(tmp_path, "ecfp_rf", range(6), fit_sd=0.02)
    result = write_aa([tmp_path], tmp_path / "out", reference="ecfp_rf", n_sim=200)
    for name in ("aa.md", "aa_spread.csv", "aa_pairs.csv", "aa_splits.csv", "aa_power.csv"):
        assert (tmp_path / "out" / name).is_file(), name
    spread = result["spread"].set_index("recipe")
    lp_ft, rf = spread.loc["lp_ft (m)"], spread.loc["ecfp_rf (m)"]
    assert (lp_ft["seeds"], lp_ft["pairs"], lp_ft["splits"], lp_ft["split_repeats"]) == (6, 15, 10, 3)
    assert lp_ft["hard_auroc_sd"] > 5 * rf["hard_auroc_sd"] and lp_ft["r"] > 2 > rf["r"]
    assert lp_ft["pairs_false_test_hard_auroc"] > 0  # one repeat's DeLong calls seeds of one recipe different
    assert (spread[["splits_false_test_hard_auroc", "splits_false_test_hard_auprc"]] == 0).all().all()
    splits = result["splits"]
    assert (splits["test_hard_auroc_df"] == 2).all() and not splits["test_hard_auroc_verdict"].isin(
        ["better", "worse"]
    ).any()
    power = result["power"].set_index("recipe").loc["lp_ft (m)"]
    assert power["k5_d0"] <= 0.05 and power["k5_d0.05"] >= power["k3_d0.05"]  # more repeats, more power
    text = (tmp_path / "out" / "aa.md").read_text()
    assert "| lp_ft (m) | 6 |" in text and "0 / 0 of 10 splits (3 v 3) |" in text and "| 50 |" in text


def test_a_recipe_kept_under_two_labels_is_one_recipe_but_two_runs_of_one_seed_and_fold_are_refused(tmp_path):
    write_seed_runs(tmp_path / "a", "frozen", [0], label="default")
    write_seed_runs(tmp_path / "b", "frozen", [1, 2])
    runs = recipe_runs([tmp_path / "a", tmp_path / "b"])
    assert set(runs["recipe"]) == {"frozen (m)"} and runs["seed"].nunique() == 3
    result = study(runs, reference=None)
    assert len(result["pairs"]) == 3 and result["splits"].empty and result["power"].empty
    write_seed_runs(tmp_path / "c", "frozen", [2], label="lr2e-5")  # seed 2 again: another recipe under one name
    with pytest.raises(DataError, match="two runs of frozen"):
        recipe_runs([tmp_path / "a", tmp_path / "b", tmp_path / "c"])


def test_seeds_on_other_folds_are_not_an_aa_pair(tmp_path):
    write_seed_runs(tmp_path, "frozen", [0])
    write_seed_runs(tmp_path, "frozen", [1], data_seed=1)
    pairs = study(recipe_runs([tmp_path]), reference=None)["pairs"]
    assert isinstance(pairs, pd.DataFrame) and pairs.empty


def test_the_cv_val_figure_a_checkpoint_rule_is_chosen_on_is_per_seed_mean_and_sd(tmp_path):
    for seed, val in ((0, 0.80), (1, 0.90), (2, 0.85)):
        write_seed_runs(tmp_path / "a", "frozen", [seed], val_hard_auroc=val)
    write_seed_runs(tmp_path / "b", "ecfp_rf", [0, 1])  # older runs without the key
    result = write_aa([tmp_path], tmp_path / "out", reference=None, n_sim=10)
    spread = result["spread"].set_index("recipe")
    assert spread.loc["frozen (m)", "val_hard_auroc_mean"] == pytest.approx(0.85)
    assert spread.loc["frozen (m)", "val_hard_auroc_sd"] == pytest.approx(0.05)
    text = (tmp_path / "out" / "aa.md").read_text()
    assert "| 0.850 (0.050) |" in text and text.count("| n/a |") == 1
