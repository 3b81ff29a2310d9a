"""End-to-end: the real config, the real pipeline, the tiny model, a small slice of the real data."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoModel

from delbind import profiling
from delbind.data import build_dataset
from delbind.data.corpus import CORPUS_FILE, check_trunk_corpus
from delbind.errors import DataError
from delbind.tasks import train
from delbind.training import BinderTrainer
from tests.helpers import assert_saved_model_scores_as_the_run, check_run_dir, compose_cfg


def _trunk_changed(before: dict, model_dir: Path) -> list[bool]:
    after = AutoModel.from_pretrained(model_dir).state_dict()
    return [not torch.equal(before[k], after[k]) for k in before if k.startswith("trunk.")]


def test_frozen_smoke_trains_only_the_head(make_cfg, initial_weights):
    cfg = make_cfg("mode=frozen")
    metrics = train.run(cfg)
    run_dir = Path(cfg.paths.output_dir)
    check_run_dir(run_dir, metrics)
    assert not any(_trunk_changed(initial_weights, run_dir / "model"))  # bit-identical trunk
    after = AutoModel.from_pretrained(run_dir / "model").state_dict()
    assert not torch.equal(initial_weights["head.weight"], after["head.weight"])
    assert metrics["trainable_params"] == after["head.weight"].numel() + 1 < metrics["total_params"]
    assert metrics["mode"] == "frozen"
    assert not (run_dir / "model" / CORPUS_FILE).exists()  # its trunk saw no molecule of the run


def test_a_run_records_the_commit_it_started_on_not_head_when_it_ended(make_cfg, monkeypatch):
    head = {"now": "aaa1111"}
    monkeypatch.setattr(train, "commit", lambda: head["now"])
    build = train.build_dataset

    def build_then_commit(*args, **kwargs):  # someone commits while the run trains
        built = build(*args, **kwargs)
        head["now"] = "bbb2222"
        return built

    monkeypatch.setattr(train, "build_dataset", build_then_commit)
    assert train.run(make_cfg("mode=frozen"))["commit"] == "aaa1111"


def test_finetune_smoke_trains_the_trunk(make_cfg, initial_weights):
    cfg = make_cfg("logger=tensorboard")
    metrics = train.run(cfg)
    run_dir = Path(cfg.paths.output_dir)
    check_run_dir(run_dir, metrics)
    assert all(_trunk_changed(initial_weights, run_dir / "model"))
    assert metrics["trainable_params"] == metrics["total_params"]
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    # Its trunk has seen the training molecules: a run on it as a trunk with another split (a val / test molecule
    # among them) is refused, one on the same split is not.
    df, _ = build_dataset(cfg.data, cfg.data_seed)
    trained_on = (run_dir / "model" / CORPUS_FILE).read_text().split()
    assert trained_on == df.loc[df["split"] == "train", "smiles"].tolist()
    check_trunk_corpus(str(run_dir / "model"), df)
    other, _ = build_dataset(cfg.data, 1)
    assert set(trained_on) & set(other.loc[other["split"] != "train", "smiles"])
    with pytest.raises(DataError, match="val / test molecules of this run are, or share a molecule group with"):
        check_trunk_corpus(str(run_dir / "model"), other)


def test_length_grouped_training_scores_each_molecule_as_the_saved_model_does(make_cfg):
    cfg = make_cfg("trainer.train_sampling_strategy=group_by_length")
    train.run(cfg)
    assert_saved_model_scores_as_the_run(Path(cfg.paths.output_dir))


def test_a_run_never_overwrites_another(make_cfg):
    cfg = make_cfg()
    train.run(cfg)
    with pytest.raises(FileExistsError, match="already holds a run"):
        train.run(cfg)


class Crash(Exception):
    pass


def test_resume_continues_from_the_checkpoint_step(make_cfg, monkeypatch):
    every_4 = ["trainer.save_strategy=steps", "trainer.save_steps=4", "trainer.eval_strategy=steps",
               "trainer.eval_steps=4"]  # fmt: skip
    real_step = BinderTrainer.training_step
    steps_run, crash_at = [], [6]

    def crashing_step(self, *args, **kwargs):
        if self.state.global_step in crash_at:
            raise Crash
        steps_run.append(self.state.global_step)
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(BinderTrainer, "training_step", crashing_step)
    first = make_cfg(*every_4, run="first")
    with pytest.raises(Crash):
        train.run(first)
    assert steps_run == [0, 1, 2, 3, 4, 5]
    first_dir = Path(first.paths.output_dir)
    assert not (first_dir / "metrics.json").exists()

    steps_run.clear()
    crash_at.clear()
    second = make_cfg(*every_4, f"resume={first_dir}", run="second")
    metrics = train.run(second)
    assert metrics["resumed_from"] == str(first_dir / "checkpoints" / "checkpoint-4")
    assert steps_run == list(range(4, metrics["global_step"]))  # continues at the checkpoint's step
    steps_per_epoch = -(-metrics["n_train"] // second.trainer.per_device_train_batch_size)
    assert metrics["global_step"] == 2 * steps_per_epoch  # as many as an uninterrupted run: 2 epochs
    check_run_dir(Path(second.paths.output_dir), metrics)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="peak RSS reset is Linux-only")
def test_peak_memory_is_the_runs_own_not_an_earlier_jobs():
    big = np.ones(50_000_000)  # 400 MB, touched: an earlier multirun job's peak in this process
    before = profiling.peak_rss_mb()
    del big
    assert profiling.reset_peak_memory()
    measured = profiling.peak_memory(window_reset=True)
    assert measured["peak_memory_kind"] == "cpu_peak_rss" or torch.cuda.is_available()
    assert measured["peak_rss_mb"] < before - 300


@pytest.mark.slow
def test_default_pretrained_model_smoke_run(tmp_path):
    """The default path with the real rxnfp BERT (not the tiny one): conversion, tokenizer, training, run dir."""
    cfg = compose_cfg(tmp_path / "run", ["debug=smoke", "logger=none", "trainer.num_train_epochs=1"])
    assert cfg.model.name == "rxnfp_bert" and cfg.mode.name == "finetune"
    metrics = train.run(cfg)
    check_run_dir(tmp_path / "run", metrics)
    # 12 layers x hidden 256 without the pooler or the MLM / NSP heads, plus the 257-weight head
    assert metrics["trainable_params"] == metrics["total_params"] == 6_608_640 + 257
    assert metrics["activation_checkpointing"] is torch.cuda.is_available()


def test_data_seed_holds_the_split_while_seed_varies_and_the_ensemble_script_averages_them(make_cfg, tmp_path):
    import json
    import subprocess
    import sys

    import pandas as pd

    from tests.helpers import ROOT

    runs = {"s0": ["data_seed=0", "seed=0"], "s1": ["data_seed=0", "seed=1"], "other": ["data_seed=1", "seed=1"]}
    for name, overrides in runs.items():
        metrics = train.run(make_cfg("mode=frozen", *overrides, run=f"runs/{name}"))
        assert metrics["data_seed"] == int(overrides[0][-1])
    preds = {name: pd.read_parquet(tmp_path / "runs" / name / "predictions.parquet") for name in runs}
    assert preds["s0"]["smiles"].tolist() == preds["s1"]["smiles"].tolist()  # one split, two initializations
    assert not np.allclose(preds["s0"]["score"], preds["s1"]["score"])
    assert set(preds["other"]["smiles"]) != set(preds["s0"]["smiles"])  # another data_seed deals other folds
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "ensemble.py"), str(tmp_path / "runs"), "--out", str(tmp_path / "ens")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    [ens] = list((tmp_path / "ens").iterdir())  # `other` has no partner on its folds
    mean = pd.read_parquet(ens / "predictions.parquet")["score"]
    np.testing.assert_allclose(mean, (preds["s0"]["score"] + preds["s1"]["score"]) / 2)
    assert json.loads((ens / "metrics.json").read_text())["ensemble_seeds"] == [0, 1]
    again = subprocess.run(  # the same ensemble again: refused in one line, nothing overwritten
        [sys.executable, str(ROOT / "scripts" / "ensemble.py"), str(tmp_path / "runs"), "--out", str(tmp_path / "ens")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert again.returncode == 2 and "RunDirExistsError" in again.stderr and "Traceback" not in again.stderr


def test_a_test_fold_changes_nothing_the_folds_model_is_trained_or_chosen_with(make_cfg, tmp_path):
    """Flip every test label and scramble the test molecules' kinds: training rows, the training history, val scores
    and the chosen checkpoint stay bit-identical; only the test figures move."""
    from delbind.data.prepared import write_dataset

    df, stats = build_dataset(make_cfg().data, seed=0)
    assert stats["cv"] == "kfold" and stats["folds"] == 5 and stats["fold"] == 0
    flipped = df.copy()
    test = flipped["split"] == "test"
    flipped.loc[test, "label"] = 1 - flipped.loc[test, "label"]
    negative = test & (flipped["label"] == 0)  # the former binders: half hard, half easy negatives now
    flipped.loc[test, "kind"] = "binder"
    flipped.loc[negative, "kind"] = np.resize(["hard", "easy"], int(negative.sum()))
    outs = []
    for name, frame in (("real", df), ("flipped", flipped)):
        write_dataset(tmp_path / name, frame, stats, {})
        cfg = make_cfg("arm=finetune", f"data.prepared={tmp_path / name}", run=f"run-{name}")
        metrics = train.run(cfg)
        run_dir = Path(cfg.paths.output_dir)
        preds = pd.read_parquet(run_dir / "predictions.parquet")
        weights = AutoModel.from_pretrained(run_dir / "model").state_dict()
        outs.append((metrics, preds, weights))
    (m_real, p_real, w_real), (m_flip, p_flip, w_flip) = outs
    assert all(torch.equal(w_real[k], w_flip[k]) for k in w_real)  # same model chosen and trained
    assert m_real["val_hard_auprc"] == m_flip["val_hard_auprc"] and m_real["n_train"] == m_flip["n_train"]
    val = p_real["eval_set"].str.startswith("val")
    pd.testing.assert_frame_equal(p_real[val], p_flip[p_flip["eval_set"].str.startswith("val")])
    assert m_real["test_hard_auroc"] != m_flip["test_hard_auroc"]  # the test fold did change: only its figures


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["finetune", "frozen"])
def test_annalog_smoke_run(tmp_path, mode):
    """The molecule-domain trunk end to end: conversion from its wheel, its tokenizer, training, the run dir."""
    cfg = compose_cfg(tmp_path / "run", ["model=annalog", f"mode={mode}", "debug=smoke", "logger=none"])
    metrics = train.run(cfg)
    check_run_dir(tmp_path / "run", metrics)
    assert metrics["total_params"] == 1_622_528 + 257 and metrics["mlm_loss_before"] is None
    assert metrics["trainable_params"] == (257 if mode == "frozen" else metrics["total_params"])
    assert metrics["representation_drift"] > 0 if mode == "finetune" else metrics["representation_drift"] == 0
