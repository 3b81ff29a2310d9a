"""BinderTrainer (an HF Trainer with a binary loss) and the choices around it: precision, arguments, resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import Dataset, RandomSampler, Sampler, SequentialSampler
from transformers import Trainer, TrainingArguments
from transformers.trainer_utils import get_last_checkpoint, has_length

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


class ResumeError(FileNotFoundError):
    """``resume`` names no checkpoint; the message says what was looked for."""


def bce_loss(logits: torch.Tensor, labels: torch.Tensor, pos_weight: float | None = None) -> torch.Tensor:
    """Mean BCE-with-logits in fp32 (stable under autocast), optionally up-weighting binders."""
    weight = None if pos_weight is None else torch.tensor(float(pos_weight), device=logits.device)
    return F.binary_cross_entropy_with_logits(logits.float().view(-1), labels.float().view(-1), pos_weight=weight)


class BinderTrainer(Trainer):
    """Trainer whose loss is BCE on one logit and whose evaluation keeps row order; otherwise the stock Trainer."""

    # compute_loss returns a per-batch mean, so the Trainer must divide by the accumulation steps.
    loss_is_scaled_for_ga = False

    def __init__(self, *args: Any, pos_weight: float | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.pos_weight = pos_weight

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        features = {k: v for k, v in inputs.items() if k != "labels"}
        outputs = model(**features)
        loss = bce_loss(outputs.logits, inputs["labels"], self.pos_weight)
        return (loss, outputs) if return_outputs else loss

    def _get_train_sampler(self, train_dataset: Dataset | None = None) -> Sampler | None:
        dataset = self.train_dataset if train_dataset is None else train_dataset
        grouped = self.args.train_sampling_strategy == "group_by_length"
        if grouped and "input_ids" not in getattr(dataset, "column_names", ["input_ids"]):
            return RandomSampler(dataset)  # cached embeddings: every row has one length, there is nothing to group
        return super()._get_train_sampler(train_dataset)

    def _get_eval_sampler(self, eval_dataset: Dataset) -> Sampler | None:
        # Scores are matched to molecules by row, so evaluation never reorders. The stock Trainer length-groups
        # the eval sets too under train_sampling_strategy=group_by_length, which permutes predict()'s output.
        if self.args.world_size > 1 or not has_length(eval_dataset):
            return None  # stock: accelerate shards in order and gathers back in order
        return SequentialSampler(eval_dataset)


def resolve_precision(requested: str) -> str:
    """'auto' -> bf16 on a bf16-capable GPU, fp16 on other GPUs, fp32 on CPU."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision={requested!r}: choose one of {PRECISIONS}")
    cuda = torch.cuda.is_available()
    if requested == "auto":
        return ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else "fp32"
    if requested == "fp16" and not cuda:
        raise ValueError("precision=fp16 needs a CUDA GPU; on CPU use fp32 or bf16 (autocast)")
    return requested


def training_arguments(
    trainer_cfg: DictConfig, output_dir: Path, precision: str, report_to: list[str], seed: int, run_name: str
) -> TrainingArguments:
    """TrainingArguments from the `trainer` config group (same field names) plus the run's choices."""
    kwargs = OmegaConf.to_container(trainer_cfg, resolve=True)
    return TrainingArguments(
        **kwargs,
        output_dir=str(output_dir),
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=not torch.cuda.is_available(),
        report_to=report_to,
        run_name=run_name,
        seed=seed,
        data_seed=seed,
        label_names=["labels"],
        remove_unused_columns=True,
    )


def resolve_resume(resume: Any, outputs_root: Path, run_dir: Path) -> str | None:
    """The checkpoint to resume from: None, ``true`` (newest earlier run with one) or a path."""
    if resume in (None, False, "", "false"):
        return None
    if resume is True or resume == "true":
        candidates = sorted(
            (p.parent for p in outputs_root.glob("**/checkpoints") if run_dir not in (p.parent, *p.parents)),
            key=lambda d: d.stat().st_mtime,
        )
        for run in reversed(candidates):
            last = get_last_checkpoint(str(run / "checkpoints"))
            if last:
                return last
        raise ResumeError(f"resume=true: no earlier run under {outputs_root} has a checkpoint")
    path = Path(str(resume)).expanduser()
    if (path / "trainer_state.json").is_file():
        return str(path)
    for folder in (path / "checkpoints", path):
        if folder.is_dir() and (last := get_last_checkpoint(str(folder))):
            return last
    raise ResumeError(f"resume={resume}: no checkpoint-* folder found there")
