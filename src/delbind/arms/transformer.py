"""The transformer arms (finetune, frozen, partial, lora): a pretrained trunk + head trained by BinderTrainer.

The mode's parameter policy (models/policies.py) decides what trains and at which learning rates. A
fully frozen trunk with ``mode.cache_embeddings`` trains the head on embeddings computed once and cached
(same result, far faster). SMILES augmentation (``augment.*``, models/augment.py) enters in ``fit`` (the training
set) and ``finish`` (test-time scores). ``load``, ``fit`` and ``finish`` are the steps other families reuse (lp_ft).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig
from scipy.special import expit
from transformers import DataCollatorWithPadding, EarlyStoppingCallback, PreTrainedTokenizerBase, default_data_collator

from delbind import artifacts, distributed
from delbind.arms.base import ARM_FAMILIES, VAL_SETS, ArmInputs, ArmResult
from delbind.arms.forgetting import ForgettingProbe
from delbind.data.corpus import carry_corpus
from delbind.errors import ConfigError
from delbind.evaluation import binary_metrics, compute_metrics, plot_loss_curve
from delbind.models import BinderClassifier
from delbind.models.augment import Augment, InputSpace
from delbind.models.embeddings import CachedHead, cached_embeddings, embed, embedding_dataset
from delbind.models.loading import load_tokenizer_and_model, max_length
from delbind.models.policies import apply_policy, count_parameters, learning_rates, merge_adapters, trunk_frozen
from delbind.models.tokenizers import coverage, tokenize
from delbind.training import BinderTrainer, contrastive, training_arguments
from delbind.training.selection import selection_facts

log = logging.getLogger(__name__)


@dataclass
class Fit:
    """One training stage: its trainer (holding the best model), eval sets in its input space (and how to bring
    more SMILES there), cost, history."""

    trainer: BinderTrainer
    sets: dict[str, datasets.Dataset]
    space: InputSpace
    train_s: float
    history: list[dict[str, Any]]
    facts: dict[str, Any] = field(default_factory=dict)


def load(inputs: ArmInputs) -> tuple[PreTrainedTokenizerBase, BinderClassifier, datasets.Dataset]:
    """The tokenizer, the classifier with its pretrained trunk, and every row of ``inputs.df`` tokenized once."""
    tokenizer, model = load_tokenizer_and_model(inputs.cfg.model)
    bits = model.config.fingerprint_bits  # a head that reads ECFP4: each row carries its bits
    return tokenizer, model, tokenize(inputs.df, tokenizer, max_length(inputs.cfg.model, model), bits)


def fit(
    inputs: ArmInputs,
    tokenizer: PreTrainedTokenizerBase,
    model: BinderClassifier,
    tokens: datasets.Dataset,
    mode_cfg: DictConfig,
    trainer_cfg: DictConfig,
    output_dir: Path,
    resume_from: str | None = None,
) -> Fit:
    """Apply the mode's policy and train with early stopping on the val sets; the trainer ends on the best model."""
    cfg, df = inputs.cfg, inputs.df
    augment = Augment.from_cfg(cfg)
    if model.config.fingerprint_bits and (augment.train_n or augment.test_n):
        raise ConfigError(
            "model.fingerprint=ecfp4 with SMILES augmentation is not supported: a random SMILES view would need its "
            "molecule's bits; set augment.train_n=0 augment.test_n=0"
        )
    apply_policy(model, mode_cfg)
    trainable, total = count_parameters(model)
    log.info("params: %d trainable / %d total (%d frozen)", trainable, total, total - trainable)
    facts: dict[str, Any] = {"trainable_params": trainable, "total_params": total}
    frozen, cache, standardize = trunk_frozen(model, mode_cfg), mode_cfg.cache_embeddings, mode_cfg.standardize
    if standardize and not frozen:
        raise ValueError("mode.standardize needs a fully frozen trunk: its embeddings would change while training")
    embed_cached = None
    if frozen and cache:
        cache_dir, precision = Path(cfg.paths.embedding_cache), inputs.precision
        embed_cached = partial(cached_embeddings, model, tokenizer=tokenizer, cache_dir=cache_dir, precision=precision)
        vectors, cache_info = embed_cached(tokens)
        facts.update(cache_info)
    space = InputSpace(tokenizer, max_length(cfg.model, model), embed_cached)  # how augmented SMILES become inputs
    if frozen and standardize:  # statistics of the training molecules only
        start = time.perf_counter()
        train_vectors = torch.as_tensor(
            vectors[inputs.train_rows]
            if cache
            else embed(model, tokens.select(inputs.train_rows), tokenizer, inputs.precision)
        )
        model.set_standardization(train_vectors.mean(0), train_vectors.std(0))
        facts["standardize_s"] = time.perf_counter() - start
    if frozen and cache:
        bits = tokens["fingerprint"] if model.config.fingerprint_bits else None
        features = embedding_dataset(vectors, df["label"].to_numpy(), bits)
        train_model, collator = CachedHead(model), default_data_collator
    else:
        features = tokens
        train_model, collator = model, collator_for(cfg, tokenizer, model)
    sets = {name: features.select(frame.index) for name, frame in inputs.frames.items()}
    train = df.iloc[inputs.train_rows][["smiles", "label"]]  # after the split: val / test rows are never drawn from
    train_set, callbacks, augment_facts = augment.train_set(features.select(inputs.train_rows), train, space)
    facts |= augment_facts | {"n_train_per_epoch": len(train_set)}

    args = training_arguments(trainer_cfg, output_dir, inputs.precision, inputs.report_to, cfg.seed, cfg.run_name)
    if cfg.early_stopping.patience:
        callbacks.append(EarlyStoppingCallback(cfg.early_stopping.patience, cfg.early_stopping.threshold))
    trainer_cls, loss_args, loss_facts = contrastive.trainer_for(cfg, df.iloc[inputs.train_rows], frozen)
    facts |= loss_facts
    trainer = trainer_cls(
        model=train_model,
        args=args,
        train_dataset=train_set,
        eval_dataset={name: sets[name] for name in VAL_SETS},
        processing_class=tokenizer,
        data_collator=collator,
        compute_metrics=compute_metrics,
        callbacks=callbacks,
        pos_weight=cfg.loss.pos_weight,
        group_lrs=learning_rates(model, mode_cfg, trainer_cfg.learning_rate),
        **loss_args,
    )
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume_from)
    # The arm's cost from scratch: the cached arm adds computing its embeddings, even when they came from the cache.
    setup_s = sum(facts.get(k, 0.0) for k in ("embedding_s", "standardize_s", "augment_s"))
    train_s = setup_s + time.perf_counter() - start
    facts["activation_checkpointing"] = model.trunk.is_activation_checkpointing
    facts["optimizer_steps_skipped"] = trainer.skipped_steps.count
    history = list(trainer.state.log_history)  # before the re-evaluation
    return Fit(trainer, sets, space, train_s, history, facts)


def collator_for(cfg: DictConfig, tokenizer: PreTrainedTokenizerBase, model: BinderClassifier) -> Any:
    """Pads each batch to its longest molecule (``padding=longest``; to a multiple of 8 on a GPU's tensor cores), or
    every batch to ``model.max_length`` (``padding=max_length``: the plain recipe, for benchmarks)."""
    if cfg.padding not in ("longest", "max_length"):
        raise ValueError(f"padding={cfg.padding!r}: use longest or max_length")
    pad = 8 if torch.cuda.is_available() and cfg.padding == "longest" else None
    return DataCollatorWithPadding(tokenizer, padding=cfg.padding, max_length=max_length(cfg.model, model),
                                   pad_to_multiple_of=pad)  # fmt: skip


def finish(
    inputs: ArmInputs,
    tokenizer: PreTrainedTokenizerBase,
    model: BinderClassifier,
    stage: Fit,
    probe: ForgettingProbe,
    trunk_trained: bool = True,
) -> ArmResult:
    """Save the best model (adapters merged), score every eval set with it, measure forgetting, plot the loss
    curve, collect facts. ``trunk_trained=False``: the saved trunk holds no weight this run trained (lp_ft ending
    on its probe), so it carries only what it started with."""
    cfg, run_dir, trainer = inputs.cfg, inputs.run_dir, stage.trainer
    merge_adapters(model)  # LoRA: model/ holds plain merged weights, loadable without peft
    # The head is shared with the trained module, so this saves the full classifier with the best weights.
    if distributed.is_main_process():  # staged, then published whole at the end (artifacts.py)
        staged = artifacts.staging(run_dir / "model")
        model.save_pretrained(staged)
        tokenizer.model_max_length = max_length(cfg.model, model)  # model/ truncates as the run did (predict.py)
        tokenizer.save_pretrained(staged)
        # What the trunk has seen travels with it, so a run on this model/ as its trunk is checked against it.
        trunk_saw_train = trunk_trained and not trunk_frozen(model, cfg.mode)
        trained_on = inputs.df["smiles"].iloc[inputs.train_rows] if trunk_saw_train else []
        carry_corpus(cfg.model.get("name_or_path"), trained_on, staged)
    best_val = trainer.evaluate()  # the loaded best model on the val sets
    scores = {name: _scores(trainer, name, ds, inputs.frames[name]["label"]) for name, ds in stage.sets.items()}
    augment = Augment.from_cfg(cfg)
    scores, tta_facts = augment.tta(scores, inputs.frames, stage.space, partial(_scores, trainer, "tta"))
    facts = dict(stage.facts) | tta_facts | probe.after(inputs, tokenizer, model)
    facts |= coverage(inputs.df, tokenizer, max_length(cfg.model, model))
    for name in VAL_SETS:
        for metric in ("auroc", "auprc", "loss"):
            facts[f"{name}_{metric}"] = best_val.get(f"eval_{name}_{metric}")
        if augment.test_n:  # recorded as test is scored: with TTA (the checkpoint was chosen on canonical SMILES)
            facts[f"{name}_auprc_canonical"] = facts[f"{name}_auprc"]
            facts |= {f"{name}_{k}": v for k, v in binary_metrics(inputs.frames[name]["label"], scores[name]).items()}
    if distributed.is_main_process():
        artifacts.publish(run_dir / "model")  # with the MLM head probe.after added: model/ is complete
        plot_loss_curve(stage.history, run_dir / "loss_curve.png", cfg.run_name)
    facts.update(
        {
            "pooling": cfg.model.pooling,  # comparison.py keeps [CLS] and mean runs of one arm apart
            "best_checkpoint": trainer.state.best_model_checkpoint,
            "selection_metric": trainer.args.metric_for_best_model.removeprefix("eval_"),  # what chose it
            "learning_rate": trainer.args.learning_rate,  # the report's setup table, for runs kept without config
            "batch_size": trainer.args.per_device_train_batch_size,
            "best_checkpoint_skipped": trainer.best_checkpoint_skipped or None,  # damaged bests passed over
            **selection_facts(stage.history, trainer.args.metric_for_best_model, trainer.args.greater_is_better),
            "global_step": trainer.state.global_step,
            "epochs": trainer.state.epoch,
            "train_runtime_s": stage.train_s,
            "train_samples_per_s": len(trainer.train_dataset) * trainer.state.epoch / stage.train_s,
            "resumed_from": inputs.resume_from,
        }
    )
    return ArmResult(cfg.model.name, scores, facts)


@ARM_FAMILIES.register("transformer")
def run_transformer(inputs: ArmInputs) -> ArmResult:
    tokenizer, model, tokens = load(inputs)
    cfg = inputs.cfg
    if cfg.loss.contrastive.weight and trunk_frozen(model, cfg.mode):
        raise ConfigError(
            f"loss.contrastive acts on the trunk's embedding, and mode={cfg.mode.name} trains no trunk weight: use "
            "mode=contrastive (lp_ft with the term), finetune, partial or lora, or loss.contrastive.weight=0"
        )
    probe = ForgettingProbe.measure(inputs, tokenizer, model)
    stage = fit(
        inputs, tokenizer, model, tokens, cfg.mode, cfg.trainer, inputs.run_dir / "checkpoints", inputs.resume_from
    )
    return finish(inputs, tokenizer, model, stage, probe)


def _scores(trainer: BinderTrainer, name: str, ds: datasets.Dataset, labels: pd.Series) -> np.ndarray:
    """P(binder) per row of ``ds``; the labels that came back with them must be the frame's, in its order."""
    out = trainer.predict(ds, metric_key_prefix=name)
    if not np.array_equal(np.asarray(out.label_ids, dtype=float).ravel(), labels.to_numpy(dtype=float)):
        raise RuntimeError(f"{name}: predictions came back out of row order, so scores would not match molecules")
    return expit(np.asarray(out.predictions, dtype=float)).ravel()
