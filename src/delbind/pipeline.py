"""One experiment, start to end: data -> model -> training -> evaluation -> run dir.

Three kinds of arm share the data, the splits, the scoring and the run dir:
a transformer trained by BinderTrainer on tokens (finetune, or frozen without a cache), the same
head trained on cached frozen embeddings (frozen, the default), and a classical baseline.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import json
import logging
import resource
import sys
import time
from pathlib import Path
from typing import Any

import datasets
import joblib
import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig
from scipy.special import expit
from transformers import DataCollatorWithPadding, EarlyStoppingCallback, default_data_collator, set_seed

from delbind import distributed, tracking
from delbind.baselines import ecfp4_matrix, fit_and_score, make_estimator, n_fitted_parameters
from delbind.data import build_dataset, external_sets, tokenize, with_external
from delbind.embeddings import CachedHead, cached_embeddings, embedding_dataset
from delbind.evaluation import binary_metrics, compute_metrics, external_metrics, plot_loss_curve, score_set
from delbind.modeling import apply_mode, count_parameters, load_tokenizer_and_model
from delbind.training import BinderTrainer, resolve_precision, resolve_resume, training_arguments

log = logging.getLogger(__name__)
TEST_SETS = ("test_easy", "test_hard")
VAL_SETS = ("val_easy", "val_hard")


class RunDirExistsError(FileExistsError):
    """The run dir already holds a run: no run overwrites another's output."""


def reset_peak_memory() -> bool:
    """Open a new peak-memory window for this run; False where only the process-lifetime peak is known.

    Multirun jobs share one process: without the reset every job would report the peak of the
    largest job before it. Linux resets the peak RSS through /proc/self/clear_refs.
    """
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # hand freed heap pages back, or they count as this run's
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mb() -> float:
    """Peak resident set size of this process (since the last reset on Linux), in MB."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
    return ru / 2**20 if sys.platform == "darwin" else ru / 1024


def peak_memory(window_reset: bool) -> dict[str, Any]:
    """``peak_memory_mb``: CUDA max allocated on a GPU, else peak RSS; ``peak_rss_mb`` always; and what they are."""
    rss = peak_rss_mb()
    if torch.cuda.is_available():
        return {"peak_memory_mb": torch.cuda.max_memory_allocated() / 2**20, "peak_memory_kind": "cuda_max_allocated",
                "peak_rss_mb": rss}  # fmt: skip
    kind = "cpu_peak_rss" if window_reset else "cpu_peak_rss_of_process"  # the latter may include earlier jobs
    return {"peak_memory_mb": rss, "peak_memory_kind": kind, "peak_rss_mb": rss}


def run_experiment(cfg: DictConfig) -> dict[str, Any]:
    """Train and evaluate as configured; write the run dir; return the metrics (also in metrics.json)."""
    run_dir = Path(cfg.paths.output_dir)
    distributed.check_same_run_dir(run_dir)  # torchrun / accelerate: every rank, one run dir
    if (run_dir / "metrics.json").exists() or (run_dir / "checkpoints").exists():
        raise RunDirExistsError(
            f"{run_dir} already holds a run; give a new hydra.run.dir (resume=<that dir> continues it in a new one)"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    set_seed(cfg.seed)
    precision = resolve_precision(cfg.precision)
    resume_from = resolve_resume(cfg.resume, Path(cfg.paths.outputs_root), run_dir)

    df, data_stats = build_dataset(cfg.data, cfg.seed)
    external = external_sets(cfg.data, data_stats)  # e.g. KinDEL's held-out Kd sets, scored after training
    df, frames = with_external(df, external, data_stats)
    if distributed.is_main_process():  # every rank builds the same data; rank 0 alone writes files
        (run_dir / "dataset").mkdir(exist_ok=True)
        (run_dir / "dataset" / "stats.json").write_text(json.dumps(data_stats, indent=2, default=float))
    window_reset = reset_peak_memory()  # the cost of model, training and scoring; the data build is shared by arms

    report_to = tracking.start(cfg, run_dir)
    failed = True
    try:
        if cfg.get("baseline"):
            scores, facts = _run_baseline(cfg, df, frames, run_dir, precision)
        else:
            scores, facts = _run_transformer(cfg, df, frames, run_dir, precision, report_to, resume_from)
        metrics = {
            "mode": cfg.arm,
            "model": facts.pop("model_name"),
            "data": cfg.data.name,
            "target": cfg.data.get("target"),
            "split": cfg.data.split,
            "seed": cfg.seed,
            "precision": precision,
            "n_train": int((df["split"] == "train").sum()),
            **{f"n_{name}": len(frames[name]) for name in (*VAL_SETS, *TEST_SETS)},
        }
        for name in TEST_SETS:
            labels = frames[name]["label"]
            metrics.update(score_set(name, labels, scores[name], cfg.eval.n_bootstrap, cfg.eval.confidence, cfg.seed))
        for name in external:
            metrics.update(external_metrics(name, frames[name], scores[name]))
        metrics.update(facts)
        metrics.update(peak_memory(window_reset))
        predictions = pd.concat(
            [
                frames[n][["smiles", "label", "kind"]].assign(eval_set=n, score=scores[n])
                for n in (*VAL_SETS, *TEST_SETS, *external)
            ],
            ignore_index=True,
        )
        if distributed.is_main_process():
            predictions.to_parquet(run_dir / "predictions.parquet", index=False)
            (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float))
            tracking.log_results(cfg, run_dir, metrics, predictions)
        failed = False
    finally:
        tracking.finish(cfg, failed)
        gc.collect()  # free this job's model before the next multirun job
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return metrics


def _run_transformer(
    cfg: DictConfig,
    df: pd.DataFrame,
    frames: dict[str, pd.DataFrame],
    run_dir: Path,
    precision: str,
    report_to: list[str],
    resume_from: str | None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    tokenizer, model = load_tokenizer_and_model(cfg.model)
    apply_mode(model, cfg.mode)
    trainable, total = count_parameters(model)
    log.info("params: %d trainable / %d total (%d frozen)", trainable, total, total - trainable)
    max_length = min(cfg.model.max_length, model.trunk.config.max_position_embeddings)
    tokens = tokenize(df, tokenizer, max_length)
    facts: dict[str, Any] = {"model_name": cfg.model.name}

    if cfg.mode.freeze_trunk and cfg.mode.get("cache_embeddings"):
        vectors, cache_info = cached_embeddings(model, tokens, tokenizer, Path(cfg.mode.cache_dir), precision)
        facts.update(cache_info)
        features = embedding_dataset(vectors, df["label"].to_numpy())
        train_model, collator = CachedHead(model), default_data_collator
    else:
        features = tokens
        pad = 8 if torch.cuda.is_available() else None
        train_model, collator = model, DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad)
    sets = {name: features.select(frame.index) for name, frame in frames.items()}

    args = training_arguments(cfg.trainer, run_dir / "checkpoints", precision, report_to, cfg.seed, cfg.run_name)
    callbacks = []
    if cfg.early_stopping.patience:
        callbacks.append(EarlyStoppingCallback(cfg.early_stopping.patience, cfg.early_stopping.threshold))
    trainer = BinderTrainer(
        model=train_model,
        args=args,
        train_dataset=features.select(np.flatnonzero(df["split"] == "train")),
        eval_dataset={name: sets[name] for name in VAL_SETS},
        processing_class=tokenizer,
        data_collator=collator,
        compute_metrics=compute_metrics,
        callbacks=callbacks,
        pos_weight=cfg.loss.pos_weight,
    )
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume_from)
    # The arm's cost from scratch: the cached arm adds computing its embeddings, even when they came from the cache.
    train_s = facts.get("embedding_s", 0.0) + time.perf_counter() - start
    history = list(trainer.state.log_history)  # before the best model's re-evaluation adds a point
    # The head is shared with `model`, so this saves the full classifier with the best weights.
    if distributed.is_main_process():
        model.save_pretrained(run_dir / "model")
        tokenizer.save_pretrained(run_dir / "model")

    best_val = trainer.evaluate()  # the loaded best model on the val sets
    scores = {name: _scores(trainer, name, ds, frames[name]["label"]) for name, ds in sets.items()}
    for name in VAL_SETS:
        for metric in ("auroc", "auprc", "loss"):
            facts[f"{name}_{metric}"] = best_val.get(f"eval_{name}_{metric}")
    if distributed.is_main_process():
        plot_loss_curve(history, run_dir / "loss_curve.png", cfg.run_name)
    facts.update(
        {
            "best_checkpoint": trainer.state.best_model_checkpoint,
            "global_step": trainer.state.global_step,
            "epochs": trainer.state.epoch,
            "train_runtime_s": train_s,
            "train_samples_per_s": len(trainer.train_dataset) * trainer.state.epoch / train_s,
            "trainable_params": trainable,
            "total_params": total,
            "activation_checkpointing": model.trunk.is_activation_checkpointing,
            "resumed_from": resume_from,
        }
    )
    return scores, facts


def _scores(trainer: BinderTrainer, name: str, ds: datasets.Dataset, labels: pd.Series) -> np.ndarray:
    """P(binder) per row of ``ds``; the labels that came back with them must be the frame's, in its order."""
    out = trainer.predict(ds, metric_key_prefix=name)
    if not np.array_equal(np.asarray(out.label_ids, dtype=float).ravel(), labels.to_numpy(dtype=float)):
        raise RuntimeError(f"{name}: predictions came back out of row order, so scores would not match molecules")
    return expit(np.asarray(out.predictions, dtype=float)).ravel()


def _run_baseline(
    cfg: DictConfig, df: pd.DataFrame, frames: dict[str, pd.DataFrame], run_dir: Path, precision: str
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    facts: dict[str, Any] = {}
    if cfg.baseline.features == "ecfp4":
        start = time.perf_counter()
        features = ecfp4_matrix(df["smiles"].tolist())
        facts.update(model_name="ecfp4", featurize_s=time.perf_counter() - start)
    elif cfg.baseline.features == "embeddings":
        tokenizer, model = load_tokenizer_and_model(cfg.model)
        max_length = min(cfg.model.max_length, model.trunk.config.max_position_embeddings)
        features, cache_info = cached_embeddings(
            model, tokenize(df, tokenizer, max_length), tokenizer, Path(cfg.baseline.cache_dir), precision
        )
        facts.update(cache_info, model_name=cfg.model.name, total_params=count_parameters(model)[1])
        facts["featurize_s"] = cache_info["embedding_s"]  # as computed, also when read from the cache
    else:
        raise ValueError(f"baseline.features={cfg.baseline.features!r}: use ecfp4 or embeddings")
    estimator = make_estimator(cfg.baseline, cfg.seed)
    scores, fit_s = fit_and_score(estimator, features, df, frames)
    train_s = facts["featurize_s"] + fit_s
    (run_dir / "model").mkdir(exist_ok=True)
    joblib.dump(estimator, run_dir / "model" / "estimator.joblib")
    for name in VAL_SETS:
        facts.update({f"{name}_{k}": v for k, v in binary_metrics(frames[name]["label"], scores[name]).items()})
    n_train = int((df["split"] == "train").sum())
    trainable = n_fitted_parameters(estimator)
    facts.update(
        {
            "fit_s": fit_s,
            "train_runtime_s": train_s,
            "train_samples_per_s": n_train / train_s,
            "trainable_params": trainable,
            "total_params": facts.get("total_params", 0) + (trainable or 0),
        }
    )
    return scores, facts


def summary_table(metrics: dict[str, Any]) -> str:
    """A short text table of the test metrics with their 95% CIs."""
    lines = [f"{'set':<10} {'AUROC':>22} {'AU-PRC':>22}"]
    for name in TEST_SETS:
        cells = []
        for metric in ("auroc", "auprc"):
            lo, hi = metrics[f"{name}_{metric}_ci95"]
            cells.append(f"{metrics[f'{name}_{metric}']:.3f} [{lo:.3f}, {hi:.3f}]")
        lines.append(f"{name:<10} {cells[0]:>22} {cells[1]:>22}")
    return "\n".join(lines)
