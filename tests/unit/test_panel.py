import pandas as pd
import pytest

from delbind.comparison import compare
from delbind.comparison.panel import panel, write_panel
from delbind.errors import NoRunsError
from tests.helpers import write_cv_sweep


@pytest.fixture
def panel_dir(tmp_path):
    """Three targets x two arms x 5 folds: 'strong' clearly beats 'ecfp_rf' on T1 and T2, ties it on DEV."""
    for seed, (target, signal) in enumerate([("DEV", 1.0), ("T1", 3.0), ("T2", 3.0)]):
        arms = {"ecfp_rf": (1.0, 0.7), "strong": (signal, 0.8)}
        write_cv_sweep(tmp_path / target, arms, n=80, seed=seed, target=target)
    return tmp_path


def test_panel_rows_are_each_targets_own_comparison_and_the_development_target_is_not_counted(panel_dir):
    table, tally = panel([panel_dir], development="DEV", reference="ecfp_rf")
    assert set(table["target"]) == {"DEV", "T1", "T2"} and set(table["role"]) == {"development", "reporting"}
    strong = table.set_index(["target", "arm"]).loc[("T1", "strong (m)")]
    alone = compare([panel_dir / "T1"], reference="ecfp_rf").pairs.iloc[0]  # the same figures as T1 alone
    assert strong["diff"] == pytest.approx(alone["test_hard_auroc_diff"])
    assert strong["verdict"] == alone["test_hard_auroc_verdict"] == "better"
    row = tally.set_index("arm").loc["strong (m)"]
    assert row["targets"] == 2 and row["better"] == 2  # DEV's verdict is shown but never counted
    t = table[(table["role"] == "reporting") & (table["arm"] == "strong (m)")]
    assert row["mean_diff"] == pytest.approx(t["diff"].mean()) and row["lo"] < row["mean_diff"] < row["hi"]


def test_write_panel_writes_its_files(panel_dir):
    write_panel([panel_dir], panel_dir, "DEV", "ecfp_rf")
    md = (panel_dir / "panel.md").read_text()
    assert "| DEV | development | strong (m) | 1 |" in md and "Across the reporting targets" in md  # 1 repeat
    assert len(pd.read_csv(panel_dir / "panel.csv")) == 6
    assert pd.read_csv(panel_dir / "panel_tally.csv")["better"].tolist() == [2]
    assert "| strong (m) | these models | 2 | 2 |" in md  # one repeat a target: the tally speaks of those models


def test_the_tally_says_per_arm_whether_its_verdicts_speak_of_the_arm(tmp_path):
    from tests.helpers import write_seed_runs

    for target in ("DEV", "T1", "T2"):
        for r in (0, 1, 2):  # repeats of both arms on every target
            write_seed_runs(tmp_path / target, "ecfp_rf", [r], data_seed=r, target=target)
            write_seed_runs(tmp_path / target, "strong", [r], signal=3.0, data_seed=r, target=target)
        write_seed_runs(tmp_path / target, "once", [0], data_seed=0, target=target)  # one repeat only
    write_panel([tmp_path], tmp_path, "DEV", "ecfp_rf")
    md = (tmp_path / "panel.md").read_text()
    assert "| strong (m) | arms | 2 |" in md and "| once (m) | these models | 2 |" in md
    assert "| T1 | reporting | strong (m) | 3 |" in md and "| T1 | reporting | once (m) | 1 |" in md


def test_a_twin_panel_pairs_each_row_with_its_recipe_on_the_other_trunk_per_target(tmp_path):
    from tests.helpers import write_seed_runs

    for target in ("DEV", "T1", "T2"):
        for r in (0, 1, 2):  # a recipe on trunk "m" and on trunk "t" (better on T1 only), and a fingerprint arm
            write_seed_runs(tmp_path / target, "frozen", [r], data_seed=r, target=target)
            write_seed_runs(tmp_path / target, "frozen", [r + 5], signal=3.0 if target == "T1" else 1.0, data_seed=r,
                            target=target, model="t")  # fmt: skip
            write_seed_runs(tmp_path / target, "ecfp_rf", [r], data_seed=r, target=target, model="ecfp4")
    write_seed_runs(tmp_path / "ALONE", "frozen", [0], target="ALONE")  # one trunk only: nothing to pair
    write_seed_runs(tmp_path / "ALONE", "ecfp_rf", [0], target="ALONE", model="ecfp4")  # nor with a fingerprint
    table, tally = panel([tmp_path], development="DEV", reference="ecfp_rf", twins="m")
    assert set(table["target"]) == {"DEV", "T1", "T2"}  # ALONE left out
    assert set(table["arm"]) == {"frozen (m)", "frozen (t)"}  # ecfp_rf has no twin: not shown
    rows = table.set_index(["target", "arm"])
    assert (
        rows.loc[("T1", "frozen (t)"), "reference"] == "frozen (m)"
        and rows.loc[("T1", "frozen (t)"), "verdict"] == "better"
    )
    assert rows.loc[("T2", "frozen (t)"), "verdict"] not in ("better", "worse")  # one recipe, seed noise alone
    alone = compare([tmp_path / "T1"], twins="m").pairs.set_index("arm").loc["frozen (t)"]
    assert rows.loc[("T1", "frozen (t)"), "diff"] == pytest.approx(alone["test_hard_auroc_diff"])
    assert tally.set_index("arm").loc["frozen (t)", "targets"] == 2  # DEV never counted
    write_panel([tmp_path], tmp_path / "out", "DEV", "ecfp_rf", twins="m")
    md = (tmp_path / "out" / "panel.md").read_text()
    assert "the verdict against its twin on **m**" in md and "| T1 | reporting | frozen (m) | 3 |" in md
    with pytest.raises(NoRunsError, match="has a row with a twin on 'x'"):
        panel([tmp_path], development="DEV", reference="ecfp_rf", twins="x")
