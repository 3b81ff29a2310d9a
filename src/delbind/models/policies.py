"""What trains and what stays frozen: the one place that sets requires_grad, eval mode, checkpointing, LoRA
and per-group learning rates.

Parameters fall into groups: ``embeddings``, ``layer_<i>`` (encoder layer i, 0 = lowest), ``trunk`` (any
other trunk weight, e.g. a final norm: it trains with the top layer) and ``head``. A mode says which groups
train (``trainable_layers``: the top k encoder layers, null = all; ``train_embeddings``) and optionally their
learning rates (``head_lr``, ``layer_decay``, ``group_lr``). A frozen group gets no gradient, so the stock
optimizer gives it no weight decay and no state; its dropout stays off (eval mode), as in a frozen trunk.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn

from delbind.models.classifier import BinderClassifier

_LAYER = re.compile(r"(?:^|\.)layers?\.(\d+)\.")  # BERT / RoBERTa: encoder.layer.<i>; Marian (annalog): layers.<i>
_EMBEDDINGS = re.compile(r"\.(?:embeddings|embed_tokens|embed_positions)\.")  # BERT's module; Marian's two tables


def checkpointing_on(setting: bool | str) -> bool:
    """``auto``: on with CUDA, where activation memory limits the batch; off on CPU, where it only costs time."""
    if setting == "auto":
        return torch.cuda.is_available()
    if isinstance(setting, bool):
        return setting
    raise ValueError(f"mode.activation_checkpointing={setting!r}: use auto, true or false")


def parameter_group(name: str) -> str:
    """The group of a BinderClassifier parameter name: ``head``, ``embeddings``, ``layer_<i>`` or ``trunk``."""
    if not name.startswith("trunk."):
        return "head"
    if _EMBEDDINGS.search(name):
        return "embeddings"
    layer = _LAYER.search(name)
    return f"layer_{layer.group(1)}" if layer else "trunk"


def n_layers(model: BinderClassifier) -> int:
    return int(model.trunk.config.num_hidden_layers)


def trainable_groups(model: BinderClassifier, mode_cfg: DictConfig) -> set[str]:
    """The groups that train under ``mode_cfg`` (LoRA adapters aside: they train inside frozen groups)."""
    total = n_layers(model)
    k = mode_cfg.get("trainable_layers")
    k = total if k is None else int(k)
    if not 0 <= k <= total:
        raise ValueError(f"mode.trainable_layers={k}: the trunk has {total} encoder layers (0..{total}, null = all)")
    groups = {"head", *(f"layer_{i}" for i in range(total - k, total))}
    if k > 0:
        groups.add("trunk")  # weights outside the layers (a final norm) sit on top of the encoder
    if mode_cfg.get("train_embeddings", True):
        groups.add("embeddings")
    return groups


def trunk_frozen(model: BinderClassifier, mode_cfg: DictConfig) -> bool:
    """True when no trunk weight trains (and no adapter): the trunk's output can be computed once and cached."""
    return trainable_groups(model, mode_cfg) == {"head"} and not mode_cfg.get("lora")


def apply_policy(model: BinderClassifier, mode_cfg: DictConfig) -> None:
    """Set what trains (requires_grad per group), keep frozen modules in eval mode, then checkpointing and LoRA.

    Idempotent, so one model can go through several stages (lp_ft: the head alone, then everything).
    """
    train = trainable_groups(model, mode_cfg)
    for name, param in model.named_parameters():
        param.requires_grad_(parameter_group(name) in train)
    lora = mode_cfg.get("lora")
    model.frozen_modules = [] if lora else _frozen_modules(model, train)
    checkpointing = checkpointing_on(mode_cfg.activation_checkpointing)
    if checkpointing and trunk_frozen(model, mode_cfg):
        if mode_cfg.activation_checkpointing is True:
            raise ValueError("activation checkpointing with a frozen trunk would backprop through it")
        checkpointing = False
    if checkpointing and not model.trunk.is_activation_checkpointing:
        model.trunk.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    if lora:
        _add_lora(model, lora)
    model.train(model.training)  # puts the frozen modules in eval mode now


def _frozen_modules(model: BinderClassifier, train: set[str]) -> list[str]:
    """Names of the largest trunk submodules none of whose weights train: kept in eval mode (dropout off)."""
    frozen: list[str] = []
    for name, module in model.named_modules():
        if not name.startswith("trunk") or any(name.startswith(f + ".") for f in frozen):
            continue
        groups = {parameter_group(f"{name}.{p}") for p, _ in module.named_parameters()}
        if groups and not groups & train:
            frozen.append(name)
    return frozen


def _add_lora(model: BinderClassifier, lora_cfg: DictConfig) -> None:
    """Wrap the trunk with peft LoRA adapters (the trunk's own weights stay frozen); the head keeps training."""
    from peft import LoraConfig, get_peft_model

    if getattr(model.trunk, "peft_config", None):
        return
    config = LoraConfig(
        r=lora_cfg.r,
        lora_alpha=lora_cfg.alpha,
        lora_dropout=lora_cfg.dropout,
        target_modules=list(lora_cfg.target_modules),
        bias="none",
    )
    model.trunk = get_peft_model(model.trunk, config)


def merge_adapters(model: BinderClassifier) -> None:
    """Fold LoRA adapters into the trunk's weights, so the saved model is a plain BinderClassifier."""
    if getattr(model.trunk, "peft_config", None):
        model.trunk = model.trunk.merge_and_unload()


def learning_rates(model: BinderClassifier, mode_cfg: DictConfig, base_lr: float) -> dict[str, float] | None:
    """Learning rate per group, or None when every group uses ``base_lr`` (the stock optimizer then).

    ``layer_decay`` d: head base_lr, layer i base_lr * d^(L - i), embeddings base_lr * d^(L + 1) (L layers);
    ``head_lr`` replaces the head's; ``group_lr`` sets any group's rate last.
    """
    decay, head_lr, explicit = mode_cfg.get("layer_decay"), mode_cfg.get("head_lr"), mode_cfg.get("group_lr") or {}
    if decay is None and head_lr is None and not explicit:
        return None
    total = n_layers(model)
    d = 1.0 if decay is None else float(decay)
    rates = {f"layer_{i}": base_lr * d ** (total - i) for i in range(total)}
    rates |= {"embeddings": base_lr * d ** (total + 1), "trunk": base_lr * d, "head": base_lr}
    if head_lr is not None:
        rates["head"] = float(head_lr)
    unknown = set(explicit) - set(rates)
    if unknown:
        raise ValueError(f"mode.group_lr names unknown groups {sorted(unknown)}; groups: {sorted(rates)}")
    return rates | {k: float(v) for k, v in explicit.items()}


def optimizer_groups(
    model: nn.Module, rates: dict[str, float], weight_decay: float, decay_names: set[str]
) -> list[dict[str, Any]]:
    """Optimizer parameter groups: one per (group, decays or not), trainable parameters only, each with its lr.

    ``model`` may wrap the classifier (the cached-embeddings head): names are matched on their tail.
    """
    buckets: dict[tuple[str, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            group = parameter_group(name[name.index("trunk.") :] if "trunk." in name else name)
            buckets.setdefault((group, name in decay_names), []).append(param)
    return [
        {"params": params, "lr": rates[group], "weight_decay": weight_decay if decays else 0.0, "group": group}
        for (group, decays), params in buckets.items()
    ]


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total
