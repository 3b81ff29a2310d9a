"""Defaults against the seed spread: a CV val margin is called separated only beyond what retraining moves."""

import numpy as np
import pandas as pd
import pytest

from delbind.comparison import spread_check
from delbind.errors import DataError

SPREAD = pd.DataFrame(
    {
        "recipe": [
            "finetune (rxnfp_bert, mean pooling)",
            "frozen_ecfp (x)",
            "frozen_ecfp (x, chosen on val_hard_loss)",
        ],
        "val_hard_auprc_sd": [0.01, 0.002, 0.004],
    }
)


def comparison(rows: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame({"arm": list(rows), "val_hard_auprc": list(rows.values())})


def test_a_margin_inside_the_band_of_two_fits_is_not_separated_and_one_beyond_it_is():
    rows = ["finetune (rxnfp_bert, lr2e-4)", "finetune (rxnfp_bert, lr1e-4)", "finetune (rxnfp_bert, lr2e-5)"]
    out = spread_check.check(SPREAD, {"defaults_finetune": comparison(dict(zip(rows, [0.89, 0.90, 0.80])))})
    assert out["row"].tolist() == [rows[1], rows[0], rows[2]]  # ranked
    band = 1.96 * np.sqrt(2) * 0.01
    assert out["band"].iloc[1:].tolist() == pytest.approx([band, band])
    assert out["separated"].iloc[1:].tolist() == [False, True]
    assert pd.isna(out["below_top"].iloc[0])  # the top row has no margin
    md = spread_check.to_markdown(out, "aa_spread.csv")
    assert "| defaults_finetune | **finetune (rxnfp_bert, lr1e-4)** | 0.900 | top |" in md
    assert md.count("| **no** |") == 1 and "borrow" not in md


def test_an_arm_without_a_spread_borrows_its_proxys_and_says_so():
    out = spread_check.check(SPREAD, {"defaults_lora": comparison({"lora (a)": 0.91, "lora (b)": 0.905})})
    assert set(out["spread_of"]) == {"finetune (rxnfp_bert)"} and not out["separated"].iloc[1]
    md = spread_check.to_markdown(out, "x")
    assert (
        "Rows without a measured spread of their own borrow one (lora (a) <- finetune (rxnfp_bert); lora (b) <-" in md
    )


def test_a_row_on_another_trunk_borrows_its_arms_spread_and_keeps_its_own_once_measured():
    rows = comparison({"finetune (annalog, lr3e-4)": 0.90, "finetune (annalog, lr1e-4)": 0.88})
    out = spread_check.check(SPREAD, {"defaults_annalog_finetune": rows})
    assert set(out["spread_of"]) == {"finetune (rxnfp_bert)"}
    assert "(finetune (annalog) <- finetune (rxnfp_bert))" in spread_check.to_markdown(out, "x")
    measured = pd.concat(
        [SPREAD, pd.DataFrame({"recipe": ["finetune (annalog, mean pooling)"], "val_hard_auprc_sd": [0.003]})]
    )
    out = spread_check.check(measured, {"defaults_annalog_finetune": rows})
    assert set(out["spread_of"]) == {"finetune (annalog)"} and out["separated"].iloc[1]  # 0.02 > 1.96 x 0.0042


def test_an_arm_measured_under_two_checkpoint_rules_keeps_the_larger_sd():
    assert spread_check.arm_spreads(SPREAD)["frozen_ecfp (x)"] == 0.004


def test_an_arm_with_neither_a_spread_nor_a_proxy_and_a_one_row_choice_are_refused():
    with pytest.raises(DataError, match="no seed spread measured for ecfp_xgb"):
        spread_check.check(SPREAD, {"c": comparison({"ecfp_xgb (ecfp4)": 0.9, "finetune (a)": 0.8})})
    with pytest.raises(DataError, match="needs two rows"):
        spread_check.check(SPREAD, {"c": comparison({"finetune (a)": 0.9})})
