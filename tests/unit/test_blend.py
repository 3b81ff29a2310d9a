"""Cross-family blends: val-calibrated ranks, the weight chosen on val only, and the blend as a comparison row."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from delbind.blend import blend_predictions, choose_weight, val_calibrated, write_blends
from delbind.comparison import compare
from delbind.errors import ConfigError, DataError
from delbind.evaluation import binary_metrics
from tests.helpers import ROOT

SETS = ("val_easy", "val_hard", "test_easy", "test_hard")


def _write_run(root: Path, name: str, arm: str, fold: int, scores: dict[str, np.ndarray], labels: dict, **extra):
    d = root / name
    d.mkdir(parents=True)
    frames = [
        pd.DataFrame({"eval_set": s, "smiles": [f"{s[:3]}{fold}_{i}" for i in range(len(labels[s]))],
                      "label": labels[s], "kind": np.where(labels[s] == 1, "binder", s.split("_")[1])})
        .assign(score=scores[s])
        for s in SETS
    ]  # fmt: skip
    pd.concat(frames, ignore_index=True)[["eval_set", "smiles", "label", "kind", "score"]].to_parquet(
        d / "predictions.parquet"
    )
    metrics = {"mode": arm, "arm": arm, "model": "m", "seed": 0, "data_seed": 0, "cv": "kfold", "folds": 5,
               "fold": fold, "data": "chembl_kinase", "target": "T", "split": "scaffold", "train_runtime_s": 10.0,
               "peak_memory_mb": 100.0, "trainable_params": 5, "val_hard_auprc": 0.5, "n_train": 600,
               **extra}  # fmt: skip
    (d / "metrics.json").write_text(json.dumps(metrics))
    return d


def _sweep(root: Path, signal: dict[str, float], folds: int = 5, n: int = 40) -> Path:
    """Two arms scoring the same molecules per fold: ``signal`` per arm, noise of their own."""
    rng = np.random.default_rng(0)
    for fold in range(folds):
        labels = {s: np.tile([1, 0], n // 2) for s in SETS}
        for arm, strength in signal.items():
            scores = {s: 1 / (1 + np.exp(-(labels[s] * strength + rng.normal(size=n)))) for s in SETS}
            _write_run(root, f"{arm}/f{fold}", arm, fold, scores, labels)
    return root


def _cfg(dirs, **kw):
    return OmegaConf.merge(OmegaConf.load(ROOT / "conf/blend.yaml"), {"dirs": [str(d) for d in dirs], **kw})


def test_a_score_is_ranked_against_its_runs_val_scores_only():
    preds = pd.DataFrame(
        {"eval_set": ["val_easy", "val_hard", "val_hard", "val_easy", "test_hard", "test_hard", "test_easy"],
         "smiles": ["a", "a", "b", "c", "x", "y", "z"], "score": [0.2, 0.2, 0.4, 0.1, 0.2, 0.05, 0.9]}
    )  # fmt: skip
    # val molecules a, b, c once each: scores 0.1, 0.2, 0.4; ties count half
    np.testing.assert_allclose(val_calibrated(preds), [0.5, 0.5, 5 / 6, 1 / 6, 0.5, 0.0, 1.0])
    moved = preds.assign(
        score=preds["score"].where(preds["eval_set"] != "test_hard", [0.2, 0.2, 0.2, 0.2, 0.99, 0.3, 0.9])
    )
    # a test score moves its own row only
    changed = val_calibrated(moved) != val_calibrated(preds)
    assert changed.tolist() == [False, False, False, False, True, True, False]


def test_the_weight_is_chosen_on_val_hard_and_a_fixed_weight_is_checked():
    labels = np.tile([1, 0], 20)
    preds = pd.DataFrame({"eval_set": "val_hard", "label": labels})
    perfect = (labels + np.linspace(0, 0.9, 40)) / 2  # binders all above the non-binders
    reversed_, noise = 1 - perfect, np.random.default_rng(0).random(40)
    # w p + (1 - w)(1 - p) ranks perfectly for every w > 0.5 and inverts for w < 0.5: of the tied best, nearest 0.5
    assert choose_weight(perfect, reversed_, preds, "val") == 0.6
    assert choose_weight(reversed_, perfect, preds, "val") == 0.4
    assert choose_weight(perfect, perfect, preds, "val") == 0.5  # every weight ties
    assert choose_weight(perfect, noise, preds, 0.3) == 0.3
    with pytest.raises(ConfigError, match=r"a blend weight is in \[0, 1\]"):
        choose_weight(perfect, noise, preds, 1.5)


def test_blends_are_one_run_per_fold_and_a_row_of_the_comparison(tmp_path):
    sweep = _sweep(tmp_path / "runs", {"lp_ft": 1.5, "ecfp_rf": 1.5})
    written = write_blends(_cfg([sweep], arms=["lp_ft", "ecfp_rf"]), tmp_path / "blends")
    assert len(written) == 5
    m = json.loads((written[0] / "metrics.json").read_text())
    assert m["blend_of"] == ["lp_ft (m)", "ecfp_rf (m)"] and 0 <= m["blend_weight"] <= 1
    assert m["train_runtime_s"] == 20.0 and m["trainable_params"] == 10 and m["cv"] == "kfold" and m["n_train"] == 600
    preds, w = blend_predictions(*m["blend_members"], m["blend_weight"])
    test = preds[preds["eval_set"] == "test_hard"]
    assert m["test_hard_auroc"] == pytest.approx(binary_metrics(test["label"], test["score"])["auroc"])
    result = compare([sweep, tmp_path / "blends"], reference="ecfp_rf", n_bootstrap=200)
    row = "blend (lp_ft (m) + ecfp_rf (m), w chosen on val)"
    assert row in set(result.summary["arm"]) and result.summary.set_index("arm").loc[row, "ci"] == "pooled"
    pair = result.pairs.set_index("arm").loc[row]  # paired against the reference, molecule by molecule
    assert np.isfinite(pair["val_hard_auprc_lo"])  # and on val over the folds (the corrected t reads n_train)
    # two independent noisy views of one signal: the blend ranks better than either on the pooled test set
    pooled = result.summary.set_index("arm")["test_hard_auroc"]
    assert pooled[row] > max(pooled["lp_ft (m)"], pooled["ecfp_rf (m)"])


def test_blending_other_molecules_or_two_runs_of_a_fold_or_three_arms_is_a_clear_error(tmp_path):
    sweep = _sweep(tmp_path / "runs", {"a": 1.0, "b": 1.0}, folds=1)
    other = pd.read_parquet(sweep / "b/f0/predictions.parquet").assign(smiles=lambda f: f["smiles"] + "x")
    other.to_parquet(sweep / "b/f0/predictions.parquet")
    with pytest.raises(DataError, match="scored other molecules"):
        write_blends(_cfg([sweep]), tmp_path / "out1")
    twice = _sweep(tmp_path / "twice", {"a": 1.0, "b": 1.0}, folds=1)
    labels = {s: np.tile([1, 0], 20) for s in SETS}
    _write_run(twice, "a/again", "a", 0, {s: np.random.default_rng(1).random(40) for s in SETS}, labels)
    with pytest.raises(DataError, match="has 2 runs on one fold"):
        write_blends(_cfg([twice]), tmp_path / "out2")
    three = _sweep(tmp_path / "three", {"a": 1.0, "b": 1.0, "c": 1.0}, folds=1)
    with pytest.raises(ConfigError, match="a blend takes two arms; found 3"):
        write_blends(_cfg([three]), tmp_path / "out3")


def test_the_script_blends_with_a_fixed_weight_and_names_its_output(tmp_path):
    import subprocess
    import sys

    sweep = _sweep(tmp_path / "runs", {"lp_ft": 1.0, "ecfp_rf": 1.0}, folds=2)
    cmd = [sys.executable, str(ROOT / "scripts/blend.py"), str(sweep), "--arms", "lp_ft", "ecfp_rf", "--weight", "0.5",
           "--out", str(tmp_path / "b")]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "python scripts/compare.py" in proc.stdout
    metrics = [json.loads(p.read_text()) for p in sorted((tmp_path / "b").glob("*/metrics.json"))]
    assert [m["fold"] for m in metrics] == [0, 1] and {m["label"] for m in metrics} == {"w=0.5"}
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)  # never over another run's output
    assert again.returncode == 2 and "already holds a blend" in again.stderr
