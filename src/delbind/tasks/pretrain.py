"""Masked-LM pre-training on a SMILES corpus, from a config or continued from a model (``python scripts/pretrain.py``).

The run dir's ``model/`` is an AutoModelForMaskedLM save plus tokenizer: train.py loads its trunk with
``model.name_or_path=<run dir>/model``, and its MLM head stays there so forgetting can be measured later.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from omegaconf import DictConfig
from transformers import DataCollatorForLanguageModeling, Trainer, set_seed

from delbind import artifacts, distributed, tracking
from delbind.data.corpus import heldout_smiles, read_corpus, write_corpus
from delbind.evaluation import plot_loss_curve
from delbind.io import write_json
from delbind.models.loading import load_tokenizer_and_model, max_length
from delbind.models.mlm import build_masked_lm, masked_lm_loss, mlm_train_loss
from delbind.models.tokenizers import tokenize
from delbind.profiling import peak_memory, reset_peak_memory
from delbind.rundirs import claim_run_dir
from delbind.training import resolve_precision, resolve_resume, training_arguments

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Pre-train the configured model on the corpus; write the run dir; return the metrics (also in metrics.json)."""
    run_dir = claim_run_dir(Path(cfg.paths.output_dir))
    set_seed(cfg.seed)
    precision = resolve_precision(cfg.precision)
    resume_from = resolve_resume(cfg.resume, Path(cfg.pretrain.runs_root), run_dir)
    smiles, corpus_stats = read_corpus(cfg.corpus, cfg.data, cfg.seed)
    heldout = heldout_smiles(cfg.pretrain.heldout_molecules, exclude=set(smiles))  # never a training molecule
    if distributed.is_main_process():
        write_json(run_dir / "corpus.json", corpus_stats)
    window_reset = reset_peak_memory()

    with tracking.job(cfg, run_dir) as report_to:
        tokenizer, classifier = load_tokenizer_and_model(cfg.model)  # the one loader: builtin, local, hub, config
        length = max_length(cfg.model, classifier)
        model, no_head = build_masked_lm(classifier.trunk, cfg.model.name_or_path)
        del classifier
        if no_head:
            log.info("MLM head initialized fresh: %s", no_head)
        before = masked_lm_loss(model, tokenizer, heldout, max_length=length)

        # Masking from the global RNG (seeded by the Trainer), whose state checkpoints keep: a resumed run
        # masks as the uninterrupted one would have.
        collator = DataCollatorForLanguageModeling(
            tokenizer,
            mlm_probability=cfg.pretrain.mask_fraction,
            pad_to_multiple_of=8 if torch.cuda.is_available() else None,
        )
        args = training_arguments(cfg.trainer, run_dir / "checkpoints", precision, report_to, cfg.seed, cfg.run_name)
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=tokenize(pd.DataFrame({"smiles": smiles}), tokenizer, length),
            processing_class=tokenizer,
            data_collator=collator,
            compute_loss_func=mlm_train_loss,
        )
        start = time.perf_counter()
        trainer.train(resume_from_checkpoint=resume_from)
        train_s = time.perf_counter() - start
        after = masked_lm_loss(model, tokenizer, heldout, max_length=length)
        metrics = {
            "task": "pretrain",
            "model": cfg.model.name,
            "corpus": corpus_stats["corpus"],
            "corpus_splits": corpus_stats.get("corpus_splits"),
            "n_molecules": len(smiles),
            "n_heldout": len(heldout),
            "mask_fraction": cfg.pretrain.mask_fraction,
            "seed": cfg.seed,
            "precision": precision,
            "mlm_loss_before": before,
            "mlm_loss_after": after,
            "forgetting": after - before,  # on general chemistry; negative = the trunk got better at it
            "head_initialized": bool(no_head),
            "global_step": trainer.state.global_step,
            "epochs": trainer.state.epoch,
            "train_runtime_s": train_s,
            "train_samples_per_s": len(smiles) * trainer.state.epoch / train_s,
            "resumed_from": resume_from,
        } | peak_memory(window_reset)
        if distributed.is_main_process():
            staged = artifacts.staging(run_dir / "model")
            model.save_pretrained(staged)
            tokenizer.save_pretrained(staged)
            write_corpus(smiles, staged)
            artifacts.publish(run_dir / "model")  # whole, with its manifest: what a run on this trunk verifies
            plot_loss_curve(trainer.state.log_history, run_dir / "loss_curve.png", cfg.run_name, "masked-LM loss")
            write_json(run_dir / "metrics.json", metrics)  # last: a run dir with metrics.json is a finished run
            tracking.log_results(cfg, run_dir, metrics)
    return metrics
