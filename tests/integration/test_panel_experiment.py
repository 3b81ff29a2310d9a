import os
import subprocess
import sys

import pandas as pd

from tests.helpers import ROOT, tiny_arm_label


def test_kinase_panel_experiment_runs_repeats_x_arms_x_targets_x_folds_into_one_panel(tmp_path):
    sweep = tmp_path / "sweep"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), "experiment=kinase_panel", "model=tiny", "debug=smoke",
         "logger=none", "repeats=2", "data.target=CHEMBL262,CHEMBL2147", "arm=frozen,ecfp_rf", "data.folds=2",
         "data.fold=0,1",
         f"hydra.sweep.dir={sweep}", f"paths.outputs_root={tmp_path}"],
        capture_output=True, text=True, timeout=1200, env={**os.environ, "WANDB_MODE": "offline"},  # 16 jobs
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = pd.read_csv(sweep / "sweep_summary.csv")
    assert list(summary["status"]) == ["COMPLETED"] * 16
    assert (summary["seed"] == summary["data_seed"]).all() and sorted(set(summary["data_seed"])) == [0, 1]
    assert list(summary["data_seed"][:8]) == [0] * 8  # repeat by repeat: a sweep cut short has whole repeats
    frozen, rf = tiny_arm_label("frozen", tmp_path), "ecfp_rf (ecfp4)"
    table = pd.read_csv(sweep / "panel.csv").set_index(["target", "arm"])
    assert sorted(table.index) == sorted((t, a) for t in ("CHEMBL262", "CHEMBL2147") for a in (frozen, rf))
    assert table.loc[("CHEMBL262", frozen), "role"] == "development"  # GSK3B: shown, never counted
    assert table.loc[("CHEMBL2147", frozen), "role"] == "reporting"
    assert (table["design"] == "k-fold CV").all() and (table["n_units"] == 4).all()  # 2 repeats x 2 folds
    assert (table["scope"].dropna() == "arms").all() and (table["n_repeats"].dropna() == 2).all()
    assert (table.loc[[("CHEMBL262", rf), ("CHEMBL2147", rf)], "reference"] == rf).all()
    tally = pd.read_csv(sweep / "panel_tally.csv")
    assert tally["arm"].tolist() == [frozen] and tally["targets"].tolist() == [1]  # the one reporting target
    verdicts = tally[["better", "equivalent", "worse", "can't tell"]].to_numpy()
    assert verdicts.sum() == 1 and table.loc[("CHEMBL2147", frozen), "verdict"] in {"better", "equivalent",
                                                                                    "worse", "can't tell"}  # fmt: skip
    assert "| CHEMBL2147 | reporting |" in (sweep / "panel.md").read_text()
