"""The cached frozen arm and the classical baselines, on the tiny model and a small slice of the data."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoModel

from delbind.data import build_dataset
from delbind.models.embeddings import cache_key, cached_embeddings, embed, length_batches
from delbind.models.tokenizers import tokenize
from delbind.tasks import train
from tests.helpers import ROOT, check_run_dir, tiny, tiny_arm_label


def test_cached_frozen_matches_uncached_frozen(make_cfg):
    cached = make_cfg("mode=frozen", run="cached")
    uncached = make_cfg("mode=frozen", "mode.cache_embeddings=false", run="uncached")
    m_cached = train.run(cached)
    m_uncached = train.run(uncached)
    assert m_cached["embedding_cache_hit"] is False and "embedding_cache" not in m_uncached
    heads = [AutoModel.from_pretrained(Path(c.paths.output_dir) / "model").head for c in (cached, uncached)]
    # same seed, same batches, same dropout draws: the head ends where the uncached one ends
    torch.testing.assert_close(heads[0].weight, heads[1].weight, atol=1e-4, rtol=1e-3)
    for key in ("test_easy_auroc", "test_hard_auroc", "test_hard_auprc"):
        assert m_cached[key] == pytest.approx(m_uncached[key], abs=0.02), key
    check_run_dir(Path(cached.paths.output_dir), m_cached)


def test_cache_is_reused_and_invalidated(make_cfg, tmp_path):
    cfg = make_cfg()
    df, _ = build_dataset(cfg.data, 0)
    df = df.head(30)
    tok, model = tiny("mean")
    ds = tokenize(df, tok, 64)
    first, info1 = cached_embeddings(model, ds, tok, tmp_path, "fp32")
    again, info2 = cached_embeddings(model, ds, tok, tmp_path, "fp32")
    assert not info1["embedding_cache_hit"] and info2["embedding_cache_hit"]
    np.testing.assert_array_equal(first, again)
    assert info1["embedding_s"] > 0 and info2["embedding_s"] == info1["embedding_s"]  # a hit reports the real cost
    # the head sees what the trunk gives one molecule at a time, in eval mode
    with torch.no_grad():
        one = tok(df["smiles"].iloc[:1].tolist(), return_tensors="pt")
        np.testing.assert_allclose(first[0], model.eval().embed(one["input_ids"], one["attention_mask"])[0], atol=1e-5)
    model.config.pooling = "cls"
    _, info3 = cached_embeddings(model, ds, tok, tmp_path, "fp32")
    assert not info3["embedding_cache_hit"]
    with torch.no_grad():
        model.trunk.embeddings.word_embeddings.weight.add_(0.01)
    _, info4 = cached_embeddings(model, ds, tok, tmp_path, "fp32")
    assert not info4["embedding_cache_hit"]
    _, info5 = cached_embeddings(model, tokenize(df.head(29), tok, 64), tok, tmp_path, "fp32")
    assert not info5["embedding_cache_hit"]
    assert len(list(tmp_path.glob("*.npy"))) == len(list(tmp_path.glob("*.json"))) == 4
    Path(info5["embedding_cache"]).with_suffix(".json").unlink()  # an entry without its cost is recomputed
    _, info6 = cached_embeddings(model, tokenize(df.head(29), tok, 64), tok, tmp_path, "fp32")
    assert not info6["embedding_cache_hit"]


def test_length_batches_cover_every_row_once_within_the_token_budget():
    lengths = np.array([5, 30, 7, 7, 12, 100, 3])
    batches = length_batches(lengths, max_tokens=32)
    assert [b.tolist() for b in batches] == [[6, 0, 2, 3], [4], [1], [5]]  # padded: 28, 12, 30, 100 (alone)
    assert length_batches(np.array([], dtype=int), 32) == []


def test_embedding_batches_change_nothing_but_speed(make_cfg):
    df, _ = build_dataset(make_cfg().data, 0)
    tok, model = tiny("mean")
    ds = tokenize(df.head(40), tok, 64)
    cpu = torch.device("cpu")
    small, whole = embed(model, ds, tok, "fp32", cpu, max_tokens=64), embed(model, ds, tok, "fp32", cpu, 10**6)
    lengths = np.array([len(ids) for ids in ds["input_ids"]])
    assert len(length_batches(lengths, 64)) > 10  # many batches, each padded differently
    np.testing.assert_allclose(small, whole, atol=1e-5)
    # the key is the selected rows' tokens, not the table under a select
    picked = [5, 1, 30]
    assert cache_key(model, ds.select(picked), "fp32") == cache_key(model, tokenize(df.iloc[picked], tok, 64), "fp32")
    assert cache_key(model, ds.select(picked), "fp32") != cache_key(model, ds.select([5, 1, 31]), "fp32")


@pytest.mark.parametrize("baseline", ["embeddings_logreg", "ecfp_rf", "ecfp_xgb", "ecfp_embeddings_xgb"])
def test_baseline_smoke_writes_valid_metrics(make_cfg, baseline):
    # ecfp_rf also goes through wandb (offline): baselines have no loss curve to log
    logger = "logger=wandb" if baseline == "ecfp_rf" else "logger=none"
    cfg = make_cfg(f"baseline={baseline}", logger, "baseline.estimator.n_jobs=1" if "ecfp" in baseline else "seed=0")
    metrics = train.run(cfg)
    run_dir = Path(cfg.paths.output_dir)
    on_disk = json.loads((run_dir / "metrics.json").read_text())
    assert on_disk["mode"] == baseline
    assert on_disk["model"] == {"embeddings_logreg": "tiny", "ecfp_embeddings_xgb": "ecfp4+tiny"}.get(baseline, "ecfp4")
    for key in ("test_easy_auroc", "test_easy_auprc", "test_hard_auroc", "test_hard_auprc", "val_hard_auprc"):
        assert 0 <= on_disk[key] <= 1
        if key.startswith("test"):
            lo, hi = on_disk[f"{key}_ci95"]
            assert lo <= on_disk[key] <= hi
    assert on_disk["trainable_params"] > 0 and on_disk["train_runtime_s"] > 0
    assert (run_dir / "model" / "estimator.joblib").is_file()
    assert (run_dir / "predictions.parquet").is_file()
    assert metrics["n_test_easy"] == metrics["n_test_hard"]
    assert (run_dir / "wandb").is_dir() == (baseline == "ecfp_rf")


def test_frozen_vs_finetune_experiment_compares_every_arm(tmp_path):

    sweep = tmp_path / "sweep"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), "experiment=frozen_vs_finetune", "model=tiny",
         "debug=smoke", "logger=none", "repeats=1", "data.folds=2", "data.fold=0,1", f"hydra.sweep.dir={sweep}",
         f"paths.outputs_root={tmp_path}"],
        capture_output=True, text=True, timeout=1500, env={**os.environ, "WANDB_MODE": "offline"},  # 22 jobs
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    arms = ["frozen", "finetune", "partial", "lora", "lp_ft", "lp_ft_ecfp", "contrastive", "embeddings_logreg",
            "ecfp_rf", "ecfp_xgb"]  # fmt: skip
    lp_ft = tiny_arm_label("lp_ft", tmp_path)  # lp_ft_ensemble: one job, three lp_ft members on the split
    ensemble_rows = [lp_ft.replace(")", ", ensemble of 3)"), lp_ft.replace(")", ", ensemble member)")]
    table = pd.read_csv(sweep / "comparison.csv")
    assert sorted(table["arm"]) == sorted([*(tiny_arm_label(a, tmp_path) for a in arms), *ensemble_rows])
    assert table.set_index("arm").loc[ensemble_rows, "n_seeds"].tolist() == [1, 3]  # 3 members on one split
    assert set(table.set_index("arm").loc[[tiny_arm_label(a, tmp_path) for a in arms], "ci"]) == {"pooled"}
    md = (sweep / "comparison.md").read_text()
    assert all(f"| {a} (" in md for a in arms) and "Paired against **" in md and "k-fold CV: 2 x 1" in md
    assert "(these models)" in md and "| pooled, 1 repeat | 1 x 2 |" in md  # one repeat: a verdict about its fits
    assert (sweep / "comparison.png").is_file()
    html = (sweep / "report.html").read_text()  # the course report, beside the table
    assert all(f"<td>{a} (" in html for a in arms) and (sweep / "report.ipynb").is_file()
    summary = pd.read_csv(sweep / "sweep_summary.csv")
    assert list(summary["status"]) == ["COMPLETED"] * 2 * (len(arms) + 1)  # every arm on both folds


def test_bench_reports_the_frozen_arms_side_by_side(tmp_path):
    bench = [sys.executable, str(ROOT / "scripts" / "bench.py"), "--out", str(tmp_path), "--", "model=tiny"]
    env = {**os.environ, "DELBIND_ROOT": str(ROOT)}
    out = subprocess.run([*bench, "debug=smoke"], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["frozen_speedup"] == pytest.approx(r["frozen_uncached_s"] / r["frozen_cached_s"], rel=1e-3)
    assert r["frozen_cached_embedding_cache_hit"] is False and r["frozen_cached_rerun_embedding_cache_hit"] is True
    assert r["frozen_cached_rerun_trunk_tokens"] == 0  # the rerun never runs the trunk
    n_molecules = r["frozen_cached_trunk_molecules"]  # each embedded once: train, val and test sets
    assert r["frozen_uncached_trunk_molecules"] > 2 * n_molecules  # two epochs over train + val, then scoring
    ratio = r["frozen_uncached_trunk_tokens"] / r["frozen_cached_trunk_tokens"]
    assert r["frozen_trunk_token_ratio"] == pytest.approx(ratio, rel=1e-3)
    aurocs = [r[f"{arm}_test_hard_auroc"] for arm in ("frozen_cached", "frozen_cached_rerun", "frozen_uncached")]
    assert aurocs[0] == aurocs[1] and aurocs[2] == pytest.approx(aurocs[0], abs=0.02)  # same inputs to the head


def test_bench_reports_the_naive_recipes_side_by_side(tmp_path):
    arms = ["finetune_naive", "finetune", "predict_naive", "predict"]
    bench = [sys.executable, str(ROOT / "scripts" / "bench.py"), "--out", str(tmp_path), "--arms", *arms]
    env = {**os.environ, "DELBIND_ROOT": str(ROOT), "DELBIND_BENCH_PREDICT_MOLECULES": "100"}
    out = subprocess.run([*bench, "--", "model=tiny", "debug=smoke"], capture_output=True, text=True, env=env,
                         timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    speedup = r["finetune_train_samples_per_s"] / r["finetune_naive_train_samples_per_s"]
    assert r["finetune_speedup_vs_naive"] == pytest.approx(speedup, rel=1e-3)
    # The printed times are rounded to 4 decimals: on a fast CPU predict_s is a few hundredths of a second, so the
    # ratio of the printed values carries that rounding (up to 0.5e-4 on each time), not only the printed ratio's.
    naive_s, predict_s = r["predict_naive_s"], r["predict_s"]
    rounding = (naive_s / predict_s) * (0.5e-4 / naive_s + 0.5e-4 / predict_s) + 0.5e-4
    assert r["predict_speedup_vs_naive"] == pytest.approx(naive_s / predict_s, abs=rounding)
    # the same molecules and steps; only the padding differs (every naive batch is padded to max_length)
    assert r["finetune_naive_trunk_real_tokens"] == r["finetune_trunk_real_tokens"]
    assert r["finetune_naive_trunk_tokens"] == 256 * r["finetune_naive_trunk_molecules"]
    assert r["predict_trunk_molecules"] == r["predict_naive_trunk_molecules"] == 100
    assert (
        r["predict_padded_token_fraction"]
        < r["finetune_padded_token_fraction"]
        < r["finetune_naive_padded_token_fraction"]
    )
    assert r["predict_naive_max_abs_score_diff"] < 1e-5  # sorting and padding never change a score
    assert 0 < r["predict_flop_utilization"] < 1 and r["predict_mol_per_s"] > 0


def test_fingerprint_and_embedding_features_are_the_two_side_by_side(make_cfg):
    from delbind.arms.base import ArmInputs
    from delbind.arms.baselines import FEATURES
    from delbind.data import build_dataset

    cfg = make_cfg("arm=ecfp_embeddings_rf")
    df, _ = build_dataset(cfg.data, cfg.data_seed)
    inputs = ArmInputs(cfg, df, {}, Path(cfg.paths.output_dir), "fp32", [], None)
    torch.manual_seed(0)  # the tiny trunk is initialized at random on each load: the same draw for both
    both, facts = FEATURES.get("ecfp4_embeddings")(inputs)
    bits, _ = FEATURES.get("ecfp4")(inputs)
    torch.manual_seed(0)
    vectors, _ = FEATURES.get("embeddings")(inputs)
    assert both.shape == (len(df), 2048 + vectors.shape[1]) and facts["model_name"] == "ecfp4+tiny"
    np.testing.assert_array_equal(both[:, :2048], bits)
    np.testing.assert_allclose(both[:, 2048:], vectors, rtol=1e-6)
    # predict.py rebuilds the same columns from model/ alone (the tiny trunk drawn again with the same seed)
    from sklearn.linear_model import LogisticRegression

    from delbind.arms.baselines import save_estimator
    from delbind.scoring.scorers import load_scorer

    estimator = LogisticRegression(max_iter=2000).fit(both, df["label"])
    save_estimator(Path(cfg.paths.output_dir) / "model", estimator, cfg)
    torch.manual_seed(0)
    scorer = load_scorer(Path(cfg.paths.output_dir) / "model", "fp32", torch.device("cpu"))
    np.testing.assert_allclose(scorer.score(df["smiles"].tolist()), estimator.predict_proba(both)[:, 1], atol=1e-6)


def test_frozen_vs_finetune_with_repeats_prints_verdicts_about_the_arms(tmp_path):
    sweep = tmp_path / "sweep"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), "experiment=frozen_vs_finetune", "model=tiny",
         "debug=smoke", "logger=none", "arm=frozen,ecfp_rf", "repeats=2", "data.folds=2", "data.fold=0,1",
         "hydra.callbacks.comparison.reference=ecfp_rf", f"hydra.sweep.dir={sweep}", f"paths.outputs_root={tmp_path}"],
        capture_output=True, text=True, timeout=900, env={**os.environ, "WANDB_MODE": "offline"},  # 8 jobs
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    pairs = pd.read_csv(sweep / "comparison_paired.csv")
    assert pairs["method"].str.startswith("repeats").all() and (pairs["n_repeats"] == 2).all()
    assert (pairs["scope"] == "arms").all() and (pairs["test_hard_auroc_df"] == 1).all()
    md = (sweep / "comparison.md").read_text()
    assert "| repeats | 2 x 2 |" in md and "(these models)" not in md
    assert "(these models)" not in (sweep / "answers.md").read_text()  # the course report speaks of the arms too
