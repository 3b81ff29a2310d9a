"""Shared test helpers: the project root, the real config composed with test overrides, the tiny tokenizer."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf
from transformers import PreTrainedTokenizerFast

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))  # scripts/synthetic_screens.py: test and benchmark data, not the package

SMOKE = ["model=tiny", "debug=smoke", "logger=none"]
TINY = OmegaConf.load(ROOT / "conf/model/tiny.yaml")
SMILES = ["CC(=O)Nc1ccc(O)cc1", "c1ccccc1Br", "C[C@H](N)C(=O)O", "Clc1ccc(cc1)/C=C/C#N"]
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


def compose_cfg(run_dir: Path, overrides: list[str], config_name: str = "train") -> DictConfig:
    """The real config of a task (train.yaml by default), with the run dir and outputs root pointed at ``run_dir``."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(
            config_name,
            overrides=[f"paths.output_dir={run_dir}", f"paths.outputs_root={run_dir.parent}", *overrides],
        )


def tiny_arm_label(arm: str, tmp_path: Path) -> str:
    """The comparison's row name of ``arm`` run with ``model=tiny``: its pooling is the arm's composed default, and
    a checkpoint rule other than the default is named (``frozen_ecfp``: chosen on val_hard_loss)."""
    from delbind.comparison.runs import SELECTION

    if arm.startswith("ecfp"):
        return f"{arm} (ecfp4)"
    cfg = compose_cfg(tmp_path / f"label-{arm}", ["model=tiny", f"arm={arm}"])
    chosen = "" if cfg.selection_metric == SELECTION else f", chosen on {cfg.selection_metric}"
    return f"{arm} (tiny, {cfg.model.pooling} pooling{chosen})"


def tiny_tokenizer(model_max_length: int = 512) -> PreTrainedTokenizerFast:
    """The `tiny` model's tokenizer, from its config (conf/model/tiny.yaml)."""
    from delbind.models.tokenizers import SPECIAL_TOKENS, build_smiles_tokenizer

    vocab = OmegaConf.load(ROOT / "conf/model/tiny.yaml").vocab.split()
    return build_smiles_tokenizer([*SPECIAL_TOKENS.values(), *vocab], model_max_length)


TINY_MODELS = ["tiny", "tiny_annalog"]  # the two architectures (BERT; Marian's encoder, as annalog), random init


def tiny(pooling: str = "mean", dropout: float = 0.1, model: str = "tiny"):
    """A tiny model (``model``: one of TINY_MODELS); ``dropout`` applies to the head and every trunk layer."""
    from delbind.models.loading import load_tokenizer_and_model

    base = TINY if model == "tiny" else compose_cfg(Path("/nonexistent/run"), [f"model={model}"]).model
    OmegaConf.set_struct(base, False)
    if base.config.model_type == "bert":
        trunk = {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout}
    else:
        trunk = {"dropout": dropout, "attention_dropout": dropout, "activation_dropout": dropout}
    return load_tokenizer_and_model(
        OmegaConf.merge(base, {"pooling": pooling, "head_dropout": dropout, "config": trunk})
    )


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
    # how much signal the checkpoint choice had: evaluations of the val metric, at its ceiling, tied with the best
    assert on_disk["val_evals"] >= on_disk["val_best_ties"] >= 1
    assert 0 <= on_disk["val_saturated_evals"] <= on_disk["val_evals"]
    preds = pd.read_parquet(run_dir / "predictions.parquet")
    assert list(preds.columns) == ["smiles", "label", "kind", "eval_set", "score"]
    assert preds["score"].between(0, 1).all()
    assert (preds["eval_set"] == "test_hard").sum() == metrics["n_test_hard"]
    assert (run_dir / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"


def mode_cfg(name: str, **overrides: object) -> DictConfig:
    """The real ``mode`` config of mode ``name`` (conf/mode/<name>.yaml), with keys overridden."""
    cfg = compose_cfg(Path("/nonexistent/run"), [f"mode={name}", *(f"mode.{k}={v}" for k, v in overrides.items())])
    return cfg.mode


def assert_saved_model_scores_as_the_run(run_dir: Path, eval_set: str = "test_hard") -> None:
    """``model/`` alone (AutoModel, no delbind code path but the registration) gives predictions.parquet's scores."""
    import numpy as np
    import torch
    from scipy.special import expit
    from transformers import AutoModel, AutoTokenizer

    from delbind.models.tokenizers import tokenize

    preds = pd.read_parquet(run_dir / "predictions.parquet").query("eval_set == @eval_set")
    tok, model = AutoTokenizer.from_pretrained(run_dir / "model"), AutoModel.from_pretrained(run_dir / "model")
    tokens = tokenize(preds, tok, model.config.trunk["max_position_embeddings"])
    with torch.no_grad():
        logits = [model.eval()(torch.tensor([ids])).logits.item() for ids in tokens["input_ids"]]
    np.testing.assert_allclose(preds["score"], expit(logits), atol=1e-5)


def write_fake_run(root, name, mode, seed, auroc, cost=10.0, **extra):
    """A finished run dir holding only metrics.json: every quality metric = ``auroc``, with a fixed bootstrap CI."""
    d = root / name
    d.mkdir(parents=True)
    from delbind.comparison import QUALITY

    metrics = {"mode": mode, "model": "m", "seed": seed, "train_runtime_s": cost, "train_samples_per_s": 5.0,
               "peak_memory_mb": 100.0, "trainable_params": 33, "n_train": 800, "n_test_hard": 200,
               **extra}  # fmt: skip
    for m in QUALITY:
        metrics[m] = auroc
        metrics[f"{m}_ci95"] = [auroc - 0.1, auroc + 0.05]
    (d / "metrics.json").write_text(json.dumps(metrics))
    return d


def _write_folds(root, dir_of, arm, seed, labels, scores, fold_of, skip=(), **extra):
    """One fold run per fold of ``fold_of`` (in ``root / dir_of(fold)``): metrics.json and its test predictions."""
    folds = int(fold_of.max()) + 1
    for fold in range(folds):
        if fold in skip:
            continue
        here = fold_of == fold
        preds = pd.DataFrame({"smiles": [f"m{i}" for i in np.flatnonzero(here)], "label": labels[here]})
        preds = preds.assign(kind=np.where(preds["label"] == 1, "binder", "hard"), score=scores[here])
        frames = [preds.assign(eval_set=s) for s in ("test_easy", "test_hard")]
        d = write_fake_run(root, dir_of(fold), arm, seed, 0.5, cv="kfold", folds=folds, fold=fold, **extra)
        pd.concat(frames)[["smiles", "label", "kind", "eval_set", "score"]].to_parquet(d / "predictions.parquet")


def write_cv_sweep(root, arms, folds=5, n=60, skip=(), seed=0, **extra_metrics):
    """Runs of k-fold CV: every arm scores the same molecules, each in exactly one test fold. ``arms``: name ->
    (signal strength, val hard AU-PRC); scores = label x signal + shared noise + own noise."""
    rng = np.random.default_rng(seed)
    labels = np.tile([1, 0], n)
    fold_of = np.arange(len(labels)) % folds
    shared = rng.normal(size=len(labels))
    for job, (arm, (signal, val)) in enumerate(arms.items()):
        scores = 1 / (1 + np.exp(-(labels * signal + shared + 0.3 * rng.normal(size=len(labels)))))
        own_skip = {f for (a, f) in skip if a == arm}
        _write_folds(root, lambda f, job=job: f"{job * folds + f}", arm, 0, labels, scores, fold_of, own_skip,
                     data_seed=0, val_hard_auprc=val, **extra_metrics)  # fmt: skip
    return labels, fold_of


def write_seed_runs(root, arm, seeds, signal=1.0, fit_sd=0.1, data_seed=0, folds=5, n=60, val=0.8, **extra):
    """k-fold runs of one recipe trained with each init seed of ``seeds`` on the folds ``data_seed`` deals: the
    molecules (and their difficulty) are the same for every arm and seed; each fit has its own signal strength and
    learned direction (training noise, sd ``fit_sd``). Run dirs ``<arm>-d<data_seed>-s<seed>-<fold>``."""
    rng = np.random.default_rng(2024)
    labels = np.tile([1, 0], n)
    shared, z = rng.normal(size=labels.size), rng.normal(size=labels.size)
    fold_of = np.random.default_rng(data_seed).permutation(labels.size) % folds
    for seed in seeds:
        fit = np.random.default_rng([seed, data_seed, sum(map(ord, arm))])
        strength, weight = signal + fit.normal(0, fit_sd), fit.normal(0, fit_sd)
        scores = 1 / (1 + np.exp(-(labels * strength + shared + weight * z + 0.3 * fit.normal(size=labels.size))))
        _write_folds(root, lambda f, s=seed: f"{arm}-d{data_seed}-s{s}-{f}", arm, seed, labels, scores, fold_of,
                     data_seed=data_seed, val_hard_auprc=val, **extra)  # fmt: skip
