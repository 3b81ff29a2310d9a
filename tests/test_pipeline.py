"""End-to-end: the real config, the real pipeline, the tiny model, a small slice of the real data."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.special import expit
from transformers import AutoModel, AutoTokenizer

from delbind import pipeline
from delbind.data import tokenize
from delbind.training import BinderTrainer

from .conftest import ROOT, compose_cfg

RUN_FILES = [
    "metrics.json",
    "loss_curve.png",
    "predictions.parquet",
    "model/model.safetensors",
    "model/config.json",
    "model/tokenizer.json",
    "dataset/stats.json",
]
REQUIRED_METRICS = [
    "test_easy_auroc", "test_easy_auprc", "test_hard_auroc", "test_hard_auprc", "val_hard_auprc", "mode", "model",
    "data", "seed", "n_train", "n_test_easy", "n_test_hard", "train_runtime_s", "train_samples_per_s",
    "trainable_params", "total_params", "peak_memory_mb",
]  # fmt: skip


@pytest.fixture
def initial_weights(monkeypatch):
    """The model's weights as built, before any training step."""
    captured = {}
    real = pipeline.load_tokenizer_and_model

    def capture(cfg):
        tok, model = real(cfg)
        captured.update({k: v.detach().clone() for k, v in model.state_dict().items()})
        return tok, model

    monkeypatch.setattr(pipeline, "load_tokenizer_and_model", capture)
    return captured


def check_run_dir(run_dir: Path, metrics: dict) -> None:
    for name in RUN_FILES:
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "checkpoints").glob("checkpoint-*"))
    on_disk = json.loads((run_dir / "metrics.json").read_text())
    assert set(REQUIRED_METRICS) <= set(on_disk)
    for key in ("test_easy_auroc", "test_easy_auprc", "test_hard_auroc", "test_hard_auprc", "val_hard_auprc"):
        assert 0.0 <= on_disk[key] <= 1.0, key
        if key.startswith("test"):
            lo, hi = on_disk[f"{key}_ci95"]
            assert 0.0 <= lo <= on_disk[key] <= hi <= 1.0, key
    assert on_disk["n_test_easy"] == on_disk["n_test_hard"]  # balanced: one prevalence for both
    preds = pd.read_parquet(run_dir / "predictions.parquet")
    assert list(preds.columns) == ["smiles", "label", "kind", "eval_set", "score"]
    assert preds["score"].between(0, 1).all()
    assert (preds["eval_set"] == "test_hard").sum() == metrics["n_test_hard"]
    assert (run_dir / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"


def _trunk_changed(before: dict, model_dir: Path) -> list[bool]:
    after = AutoModel.from_pretrained(model_dir).state_dict()
    return [not torch.equal(before[k], after[k]) for k in before if k.startswith("trunk.")]


def test_frozen_smoke_trains_only_the_head(make_cfg, initial_weights):
    cfg = make_cfg("mode=frozen")
    metrics = pipeline.run_experiment(cfg)
    run_dir = Path(cfg.paths.output_dir)
    check_run_dir(run_dir, metrics)
    assert not any(_trunk_changed(initial_weights, run_dir / "model"))  # bit-identical trunk
    after = AutoModel.from_pretrained(run_dir / "model").state_dict()
    assert not torch.equal(initial_weights["head.weight"], after["head.weight"])
    assert metrics["trainable_params"] == after["head.weight"].numel() + 1 < metrics["total_params"]
    assert metrics["mode"] == "frozen"


def test_finetune_smoke_trains_the_trunk(make_cfg, initial_weights):
    cfg = make_cfg("logger=tensorboard")
    metrics = pipeline.run_experiment(cfg)
    run_dir = Path(cfg.paths.output_dir)
    check_run_dir(run_dir, metrics)
    assert all(_trunk_changed(initial_weights, run_dir / "model"))
    assert metrics["trainable_params"] == metrics["total_params"]
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))


def test_length_grouped_training_scores_each_molecule_as_the_saved_model_does(make_cfg):
    cfg = make_cfg("trainer.train_sampling_strategy=group_by_length")
    pipeline.run_experiment(cfg)
    run_dir = Path(cfg.paths.output_dir)
    preds = pd.read_parquet(run_dir / "predictions.parquet").query("eval_set == 'test_hard'")
    tok, model = AutoTokenizer.from_pretrained(run_dir / "model"), AutoModel.from_pretrained(run_dir / "model")
    tokens = tokenize(preds, tok, model.config.trunk["max_position_embeddings"])
    with torch.no_grad():
        logits = [model(torch.tensor([ids])).logits.item() for ids in tokens["input_ids"]]
    np.testing.assert_allclose(preds["score"], expit(logits), atol=1e-5)


def test_a_run_never_overwrites_another(make_cfg):
    cfg = make_cfg()
    pipeline.run_experiment(cfg)
    with pytest.raises(FileExistsError, match="already holds a run"):
        pipeline.run_experiment(cfg)


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
        pipeline.run_experiment(first)
    assert steps_run == [0, 1, 2, 3, 4, 5]
    first_dir = Path(first.paths.output_dir)
    assert not (first_dir / "metrics.json").exists()

    steps_run.clear()
    crash_at.clear()
    second = make_cfg(*every_4, f"resume={first_dir}", run="second")
    metrics = pipeline.run_experiment(second)
    assert metrics["resumed_from"] == str(first_dir / "checkpoints" / "checkpoint-4")
    assert steps_run == list(range(4, metrics["global_step"]))  # continues at the checkpoint's step
    assert metrics["global_step"] == 20  # as many as an uninterrupted run: 2 epochs x 10 steps
    check_run_dir(Path(second.paths.output_dir), metrics)


def _cli(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), "model=tiny", "debug=smoke", *args,
         f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip


def test_cli_finetune_with_wandb_writes_every_file(tmp_path):
    proc = _cli("mode=finetune", "logger=wandb", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = tmp_path / "run"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    check_run_dir(run_dir, metrics)
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    offline_runs = list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(offline_runs) == 1
    assert "test_hard" in proc.stdout and f"run dir: {run_dir}" in proc.stdout


def test_cli_bad_input_is_one_line_not_a_traceback(tmp_path):
    proc = _cli("logger=none", "data.target=CHEMBL999", tmp_path=tmp_path)
    assert proc.returncode == 2
    assert "DataError: data.target=CHEMBL999 is not in MoleculeACE" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="peak RSS reset is Linux-only")
def test_peak_memory_is_the_runs_own_not_an_earlier_jobs():
    big = np.ones(50_000_000)  # 400 MB, touched: an earlier multirun job's peak in this process
    before = pipeline.peak_rss_mb()
    del big
    assert pipeline.reset_peak_memory()
    measured = pipeline.peak_memory(window_reset=True)
    assert measured["peak_memory_kind"] == "cpu_peak_rss" or torch.cuda.is_available()
    assert measured["peak_rss_mb"] < before - 300


@pytest.mark.slow
def test_default_pretrained_model_smoke_run(tmp_path):
    """The default path with the real rxnfp BERT (not the tiny one): conversion, tokenizer, training, run dir."""
    cfg = compose_cfg(tmp_path / "run", ["debug=smoke", "logger=none", "trainer.num_train_epochs=1"])
    assert cfg.model.name == "rxnfp_bert" and cfg.mode.name == "finetune"
    metrics = pipeline.run_experiment(cfg)
    check_run_dir(tmp_path / "run", metrics)
    # 12 layers x hidden 256 without the pooler or the MLM / NSP heads, plus the 257-weight head
    assert metrics["trainable_params"] == metrics["total_params"] == 6_608_640 + 257
    assert metrics["activation_checkpointing"] is torch.cuda.is_available()
