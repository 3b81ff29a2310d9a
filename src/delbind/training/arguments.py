"""TrainingArguments from the `trainer` config group, and the precision picked from the hardware."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from transformers import TrainingArguments

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


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
