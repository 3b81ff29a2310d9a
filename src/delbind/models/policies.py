"""What trains and what stays frozen: the one place that sets requires_grad, eval mode and checkpointing."""

from __future__ import annotations

import torch
from omegaconf import DictConfig
from torch import nn

from delbind.models.classifier import BinderClassifier


def checkpointing_on(setting: bool | str) -> bool:
    """``auto``: on with CUDA, where activation memory limits the batch; off on CPU, where it only costs time."""
    if setting == "auto":
        return torch.cuda.is_available()
    if isinstance(setting, bool):
        return setting
    raise ValueError(f"mode.activation_checkpointing={setting!r}: use auto, true or false")


def apply_mode(model: BinderClassifier, mode_cfg: DictConfig) -> None:
    """Freeze the trunk (eval mode, no grads, no checkpointing) or leave everything trainable."""
    if mode_cfg.freeze_trunk:
        if mode_cfg.activation_checkpointing is True:
            raise ValueError("activation checkpointing with a frozen trunk would backprop through it")
        model.trunk.requires_grad_(False)
        model.trunk_frozen = True
        model.trunk.eval()
    elif checkpointing_on(mode_cfg.activation_checkpointing):
        model.trunk.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total
