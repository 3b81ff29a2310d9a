"""The transformer arms (finetune, frozen, ...): a pretrained trunk + head trained by BinderTrainer.

The mode's parameter policy (models/policies.py) decides what trains. A fully frozen trunk with
``mode.cache_embeddings`` trains the head on embeddings computed once and cached (same result, far faster).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pandas as pd
import torch
from scipy.special import expit
from transformers import DataCollatorWithPadding, EarlyStoppingCallback, default_data_collator

from delbind import distributed
from delbind.arms.base import ARM_FAMILIES, VAL_SETS, ArmInputs, ArmResult
from delbind.evaluation import compute_metrics, plot_loss_curve
from delbind.models.embeddings import CachedHead, cached_embeddings, embedding_dataset
from delbind.models.loading import load_tokenizer_and_model, max_length
from delbind.models.policies import apply_mode, count_parameters
from delbind.models.tokenizers import tokenize
from delbind.training import BinderTrainer, training_arguments

log = logging.getLogger(__name__)


@ARM_FAMILIES.register("transformer")
def run_transformer(inputs: ArmInputs) -> ArmResult:
    cfg, df, frames, run_dir = inputs.cfg, inputs.df, inputs.frames, inputs.run_dir
    tokenizer, model = load_tokenizer_and_model(cfg.model)
    apply_mode(model, cfg.mode)
    trainable, total = count_parameters(model)
    log.info("params: %d trainable / %d total (%d frozen)", trainable, total, total - trainable)
    tokens = tokenize(df, tokenizer, max_length(cfg.model, model))
    facts: dict[str, Any] = {}

    if cfg.mode.freeze_trunk and cfg.mode.get("cache_embeddings"):
        vectors, cache_info = cached_embeddings(
            model, tokens, tokenizer, Path(cfg.paths.embedding_cache), inputs.precision
        )
        facts.update(cache_info)
        features = embedding_dataset(vectors, df["label"].to_numpy())
        train_model, collator = CachedHead(model), default_data_collator
    else:
        features = tokens
        pad = 8 if torch.cuda.is_available() else None
        train_model, collator = model, DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad)
    sets = {name: features.select(frame.index) for name, frame in frames.items()}

    args = training_arguments(
        cfg.trainer, run_dir / "checkpoints", inputs.precision, inputs.report_to, cfg.seed, cfg.run_name
    )
    callbacks = []
    if cfg.early_stopping.patience:
        callbacks.append(EarlyStoppingCallback(cfg.early_stopping.patience, cfg.early_stopping.threshold))
    trainer = BinderTrainer(
        model=train_model,
        args=args,
        train_dataset=features.select(inputs.train_rows),
        eval_dataset={name: sets[name] for name in VAL_SETS},
        processing_class=tokenizer,
        data_collator=collator,
        compute_metrics=compute_metrics,
        callbacks=callbacks,
        pos_weight=cfg.loss.pos_weight,
    )
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=inputs.resume_from)
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
            "resumed_from": inputs.resume_from,
        }
    )
    return ArmResult(cfg.model.name, scores, facts)


def _scores(trainer: BinderTrainer, name: str, ds: datasets.Dataset, labels: pd.Series) -> np.ndarray:
    """P(binder) per row of ``ds``; the labels that came back with them must be the frame's, in its order."""
    out = trainer.predict(ds, metric_key_prefix=name)
    if not np.array_equal(np.asarray(out.label_ids, dtype=float).ravel(), labels.to_numpy(dtype=float)):
        raise RuntimeError(f"{name}: predictions came back out of row order, so scores would not match molecules")
    return expit(np.asarray(out.predictions, dtype=float)).ravel()
