"""One experiment, start to end: data -> model -> training -> evaluation -> run dir."""

from __future__ import annotations

import gc
import json
import logging
import resource
import time
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig
from scipy.special import expit
from transformers import DataCollatorWithPadding, EarlyStoppingCallback, set_seed

from delbind import tracking
from delbind.data import build_dataset, eval_frames, tokenize
from delbind.evaluation import compute_metrics, plot_loss_curve, score_set
from delbind.modeling import apply_mode, count_parameters, load_tokenizer_and_model
from delbind.training import BinderTrainer, resolve_precision, resolve_resume, training_arguments

log = logging.getLogger(__name__)
TEST_SETS = ("test_easy", "test_hard")
VAL_SETS = ("val_easy", "val_hard")


def peak_memory_mb() -> tuple[float, str]:
    """Peak GPU memory allocated by torch on CUDA, else the process's peak resident set size."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20, "cuda_max_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "cpu_peak_rss"


def _scores(trainer: BinderTrainer, ds: datasets.Dataset, prefix: str) -> np.ndarray:
    return expit(np.asarray(trainer.predict(ds, metric_key_prefix=prefix).predictions, dtype=float)).ravel()


def run_experiment(cfg: DictConfig) -> dict[str, Any]:
    """Train and evaluate as configured; write the run dir; return the metrics (also in metrics.json)."""
    run_dir = Path(cfg.paths.output_dir)
    if (run_dir / "metrics.json").exists() or (run_dir / "checkpoints").exists():
        raise FileExistsError(
            f"{run_dir} already holds a run; give a new hydra.run.dir (resume=<that dir> continues it in a new one)"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    set_seed(cfg.seed)
    precision = resolve_precision(cfg.precision)
    resume_from = resolve_resume(cfg.resume, Path(cfg.paths.outputs_root), run_dir)

    df, data_stats = build_dataset(cfg.data, cfg.seed)
    (run_dir / "dataset").mkdir(exist_ok=True)
    (run_dir / "dataset" / "stats.json").write_text(json.dumps(data_stats, indent=2))
    tokenizer, model = load_tokenizer_and_model(cfg.model)
    apply_mode(model, cfg.mode)
    trainable, total = count_parameters(model)
    log.info("params: %d trainable / %d total (%d frozen)", trainable, total, total - trainable)
    max_length = min(cfg.model.max_length, model.trunk.config.max_position_embeddings)
    ds = tokenize(df, tokenizer, max_length)
    frames = eval_frames(df)
    sets = {name: ds.select(frame.index) for name, frame in frames.items()}
    train_ds = ds.select(df.index[df["split"] == "train"])

    report_to = tracking.start(cfg, run_dir)
    failed = True
    try:
        args = training_arguments(cfg.trainer, run_dir / "checkpoints", precision, report_to, cfg.seed, cfg.run_name)
        callbacks = []
        if cfg.early_stopping.patience:
            callbacks.append(EarlyStoppingCallback(cfg.early_stopping.patience, cfg.early_stopping.threshold))
        trainer = BinderTrainer(
            model=model,
            args=args,
            train_dataset=train_ds,
            eval_dataset={name: sets[name] for name in VAL_SETS},
            processing_class=tokenizer,
            data_collator=DataCollatorWithPadding(
                tokenizer, pad_to_multiple_of=8 if torch.cuda.is_available() else None
            ),
            compute_metrics=compute_metrics,
            callbacks=callbacks,
            pos_weight=cfg.loss.pos_weight,
        )
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        train_out = trainer.train(resume_from_checkpoint=resume_from)
        wall_s = time.perf_counter() - start
        trainer.save_model(str(run_dir / "model"))  # best weights (load_best_model_at_end) + tokenizer

        best_val = trainer.evaluate()  # the loaded best model on the val sets
        metrics: dict[str, Any] = {
            "mode": cfg.mode.name,
            "model": cfg.model.name,
            "data": cfg.data.name,
            "target": cfg.data.get("target"),
            "split": cfg.data.split,
            "seed": cfg.seed,
            "precision": precision,
            "n_train": len(train_ds),
            **{f"n_{name}": len(frames[name]) for name in (*VAL_SETS, *TEST_SETS)},
        }
        predictions = []
        for name in (*VAL_SETS, *TEST_SETS):
            scores = _scores(trainer, sets[name], name)
            frame = frames[name]
            predictions.append(frame[["smiles", "label", "kind"]].assign(eval_set=name, score=scores))
            if name in TEST_SETS:
                metrics.update(
                    score_set(name, frame["label"], scores, cfg.eval.n_bootstrap, cfg.eval.confidence, cfg.seed)
                )
        for name in VAL_SETS:
            for metric in ("auroc", "auprc", "loss"):
                metrics[f"{name}_{metric}"] = best_val.get(f"eval_{name}_{metric}")
        memory, memory_kind = peak_memory_mb()
        metrics.update(
            {
                "best_checkpoint": trainer.state.best_model_checkpoint,
                "global_step": trainer.state.global_step,
                "epochs": trainer.state.epoch,
                "train_runtime_s": train_out.metrics["train_runtime"],
                "train_wall_s": wall_s,
                "train_samples_per_s": train_out.metrics["train_samples_per_second"],
                "trainable_params": trainable,
                "total_params": total,
                "peak_memory_mb": memory,
                "peak_memory_kind": memory_kind,
                "resumed_from": resume_from,
            }
        )
        pred_df = pd.concat(predictions, ignore_index=True)
        pred_df.to_parquet(run_dir / "predictions.parquet", index=False)
        plot_loss_curve(trainer.state.log_history, run_dir / "loss_curve.png", cfg.run_name)
        (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float))
        tracking.log_results(cfg, run_dir, metrics, pred_df)
        failed = False
    finally:
        tracking.finish(cfg, failed)
        trainer = model = None  # free before the next multirun job
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return metrics


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
