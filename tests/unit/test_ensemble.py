"""Seed ensembles (src/delbind/ensemble.py) on hand-made run dirs: mean scores, grouping, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from sklearn.metrics import average_precision_score, roc_auc_score

from delbind.comparison import load_runs, summarize
from delbind.ensemble import write_ensembles
from delbind.errors import DataError, NoRunsError, RunDirExistsError

SETS = ("val_easy", "val_hard", "test_easy", "test_hard")


def molecules(data_seed: int) -> pd.DataFrame:
    """The eval rows a split puts in predictions.parquet: 10 binders + 10 negatives per set, molecules by split."""
    rows = []
    for name in SETS:
        for i in range(20):
            label = int(i < 10)
            kind = "binder" if label else name.split("_")[1]
            rows.append({"smiles": f"C{'C' * i}N{data_seed}{name}", "label": label, "kind": kind, "eval_set": name})
    return pd.DataFrame(rows)


def fake_run(
    root: Path, name: str, seed: int, data_seed: int | None = 0, arm: str = "frozen", config: dict | None = None
) -> pd.DataFrame:
    """A finished run dir: metrics.json and predictions.parquet with seeded random scores (and ``config`` as its
    .hydra/config.yaml); returns the predictions."""
    run_dir = root / name
    run_dir.mkdir(parents=True)
    if config is not None:
        (run_dir / ".hydra").mkdir()
        OmegaConf.save(OmegaConf.create(config), run_dir / ".hydra" / "config.yaml")
    preds = molecules(seed if data_seed is None else data_seed)
    rng = np.random.default_rng(seed)
    preds["score"] = np.clip(0.3 * preds["label"] + rng.random(len(preds)) * 0.8, 0, 1)
    preds.to_parquet(run_dir / "predictions.parquet", index=False)
    metrics = {"arm": arm, "mode": arm, "model": "tiny", "pooling": "mean", "data": "chembl_kinase",
               "target": "CHEMBL262", "split": "scaffold", "seed": seed, "n_train": 100,
               "train_runtime_s": 10.0 + seed, "peak_memory_mb": 500.0 + seed, "trainable_params": 1000,
               "test_hard_auroc": 0.5, "test_hard_auroc_ci95": [0.4, 0.6]}  # fmt: skip
    if data_seed is not None:
        metrics["data_seed"] = data_seed
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    return preds


def test_an_ensemble_scores_the_mean_of_its_members(tmp_path):
    members = [fake_run(tmp_path / "sweep", str(s), seed=s) for s in (0, 1, 2)]
    [out] = write_ensembles([tmp_path / "sweep"], tmp_path / "ens", n_bootstrap=200)
    preds = pd.read_parquet(out / "predictions.parquet")
    mean = np.mean([m["score"] for m in members], axis=0)
    np.testing.assert_allclose(preds["score"], mean)
    assert preds["smiles"].tolist() == members[0]["smiles"].tolist()
    metrics = json.loads((out / "metrics.json").read_text())
    for name in ("val_hard", "test_hard", "test_easy"):
        part = preds["eval_set"] == name
        assert metrics[f"{name}_auroc"] == pytest.approx(roc_auc_score(preds["label"][part], mean[part]))
        assert metrics[f"{name}_auprc"] == pytest.approx(average_precision_score(preds["label"][part], mean[part]))
    lo, hi = metrics["test_hard_auroc_ci95"]
    assert lo <= metrics["test_hard_auroc"] <= hi
    assert metrics["ensemble_size"] == 3 and metrics["ensemble_seeds"] == [0, 1, 2]
    assert metrics["seed"] == 0 and metrics["data_seed"] == 0
    assert metrics["train_runtime_s"] == 33.0 and metrics["peak_memory_mb"] == 502.0
    assert metrics["trainable_params"] == 3000
    assert out.name == "ensemble-frozen-tiny-mean-chembl_kinase-CHEMBL262-d0"


def test_members_group_by_recipe_and_split_and_ensembles_are_never_members(tmp_path):
    sweep = tmp_path / "sweep"
    for d in (0, 1):
        for s in (0, 1):
            fake_run(sweep, f"d{d}s{s}", seed=s, data_seed=d)
    fake_run(sweep, "lone", seed=0, arm="finetune")  # no second seed: left out, not an ensemble of one
    fake_run(sweep, "again", seed=1, data_seed=1)  # a repeated seed: counted once
    (sweep / "pretrain").mkdir()
    (sweep / "pretrain" / "metrics.json").write_text(json.dumps({"seed": 0}))  # no predictions: not a member
    written = write_ensembles([sweep], sweep)
    assert sorted(d.name[-2:] for d in written) == ["d0", "d1"]
    assert all(json.loads((d / "metrics.json").read_text())["ensemble_size"] == 2 for d in written)
    with pytest.raises(RunDirExistsError):  # the ensembles now in the sweep dir are not read as members
        write_ensembles([sweep], sweep)
    runs = load_runs([d / "metrics.json" for d in written])
    [row] = summarize(runs).to_dict("records")
    assert row["arm"] == "frozen (tiny, mean pooling, ensemble of 2)" and row["n_seeds"] == 2


def test_runs_of_one_sweep_with_other_hyperparameters_are_never_averaged_together(tmp_path):
    sweep, scores = tmp_path / "sweep", {}
    for job, (lr, s) in enumerate([(1e-5, 0), (1e-5, 1), (3e-5, 0), (3e-5, 1)]):
        config = {"seed": s, "data_seed": "${seed}", "run_name": f"frozen-s{s}", "threads": 1 + job,
                  "paths": {"output_dir": f"/runs/{job}"}, "trainer": {"learning_rate": lr}}  # fmt: skip
        scores.setdefault(lr, []).append(fake_run(sweep, str(job), seed=s, config=config)["score"])
    written = write_ensembles([sweep], tmp_path / "ens")
    assert len(written) == 2 and len({d.name for d in written}) == 2  # one name each, told apart by a digest
    means = sorted(pd.read_parquet(d / "predictions.parquet")["score"].mean() for d in written)
    assert means == pytest.approx(sorted(np.mean(scores[lr], axis=0).mean() for lr in scores))
    for d in written:  # each holds one learning rate's two seeds, whatever seed, threads or paths said
        members = json.loads((d / "metrics.json").read_text())["ensemble_members"]
        lrs = {OmegaConf.load(Path(m) / ".hydra" / "config.yaml").trainer.learning_rate for m in members}
        assert len(members) == 2 and len(lrs) == 1


def test_an_embedding_cache_the_members_share_is_paid_once(tmp_path):
    for s in (0, 1, 2):
        fake_run(tmp_path / "sweep", str(s), seed=s)  # train_runtime_s 10 + seed, each counting 4 s of embedding
        path = tmp_path / "sweep" / str(s) / "metrics.json"
        path.write_text(json.dumps(json.loads(path.read_text()) | {"embedding_cache": "a.npy", "embedding_s": 4.0}))
    [out] = write_ensembles([tmp_path / "sweep"], tmp_path / "ens", n_bootstrap=50)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train_runtime_s"] == 33.0 - 2 * 4.0 and metrics["embedding_s"] == 4.0


def test_members_that_scored_other_molecules_are_refused(tmp_path):
    fake_run(tmp_path, "a", seed=0)
    preds = fake_run(tmp_path, "b", seed=1)
    preds.loc[3, "smiles"] = "CCO"
    preds.to_parquet(tmp_path / "b" / "predictions.parquet", index=False)
    with pytest.raises(DataError, match="other molecules"):
        write_ensembles([tmp_path], tmp_path / "ens")


def test_runs_before_data_seed_split_by_their_seed_so_form_no_ensemble(tmp_path):
    for s in (0, 1):
        fake_run(tmp_path / "old", str(s), seed=s, data_seed=None)
    with pytest.raises(NoRunsError, match="data_seed"):
        write_ensembles([tmp_path / "old"], tmp_path / "ens")
    assert not (tmp_path / "ens").exists()
