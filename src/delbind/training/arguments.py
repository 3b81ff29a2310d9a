"""TrainingArguments from the `trainer` config group, and the precision picked from the hardware."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from transformers import TrainingArguments

from delbind.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def device_kind() -> str:
    """What this process computes on, as precision sees it: ``cuda-bf16`` (Ampere or newer), ``cuda-fp16`` (a GPU
    without bf16, e.g. a T4 or V100) or ``cpu``. The one place the hardware is probed for precision."""
    if not torch.cuda.is_available():
        return "cpu"
    return "cuda-bf16" if torch.cuda.is_bf16_supported() else "cuda-fp16"


def resolve_precision(requested: str, kind: str | None = None) -> str:
    """'auto' -> bf16 on a bf16-capable GPU, fp16 on other GPUs, fp32 on CPU; bf16 on an fp16-only GPU and fp16 on
    CPU are refused in one line. ``kind``: ``device_kind()`` unless given."""
    if requested not in PRECISIONS:
        raise ConfigError(f"precision={requested!r}: choose one of {PRECISIONS}")
    kind = device_kind() if kind is None else kind
    if requested == "auto":
        return {"cuda-bf16": "bf16", "cuda-fp16": "fp16"}.get(kind, "fp32")
    if requested == "fp16" and kind == "cpu":
        raise ConfigError("precision=fp16 needs a CUDA GPU; on CPU use fp32 or bf16 (autocast)")
    if requested == "bf16" and kind == "cuda-fp16":
        raise ConfigError("precision=bf16 needs a bf16-capable GPU (Ampere or newer); this one has fp16: use fp16")
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
