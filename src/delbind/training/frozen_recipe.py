"""The frozen-trunk recipe at its own scale: the pattern delbind generalizes, small enough to read in one screen.

An MLP ``Dense(8) -> relu -> Dense(1)`` is initialised from a seed, pre-trained for ``PRETRAIN_STEPS`` plain SGD
steps at ``lr_pre`` on (x_pre, y_pre), then fine-tuned for ``finetune_steps`` SGD steps at ``lr_fine`` on
(x_fine, y_fine) with its first layer (the trunk) frozen; the loss is the mean squared error. Two ways of freezing
give the same numbers:

- ``"group"``: one optimizer over every weight, the trunk in a parameter group whose learning rate is 0 (a
  zero-update group: what ``models/policies.py`` builds per layer group for ``mode=partial`` with ``group_lr``);
- ``"mask"``: a boolean mask over the trainable leaves; only the masked-in leaves get an update (what
  ``requires_grad`` per group does for ``mode=frozen`` / ``partial``, and what LoRA does with its adapters).

``None`` trains both layers (full fine-tuning, ``mode=finetune``). docs/modes.md maps the recipe to the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

PRETRAIN_STEPS = 3
HIDDEN = 8
TRUNK = ("0.weight", "0.bias")  # the first Dense layer's leaves
FREEZES = ("group", "mask", None)


@dataclass
class RecipeRun:
    """What the recipe returns (``loss``) and what a test inspects: the leaves before and after fine-tuning."""

    loss: np.ndarray  # shape (1,): the fine-tuning loss of the last step (before fine-tuning with 0 steps)
    pretrained: dict[str, torch.Tensor]
    finetuned: dict[str, torch.Tensor]


def _mlp(seed: int, n_features: int) -> nn.Sequential:
    with torch.random.fork_rng(devices=[]):  # the seed decides the init; the caller's RNG is left alone
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(n_features, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 1)).double()


def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.mse_loss(model(x).squeeze(-1), y)


def _sgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float, freeze: str | None) -> float:
    """``steps`` SGD steps; returns the loss of the last one (the loss now, with no step)."""
    named = dict(model.named_parameters())
    if freeze == "group":  # every leaf in the optimizer, the trunk's group at learning rate 0
        groups = [{"params": [named[n] for n in TRUNK], "lr": 0.0},
                  {"params": [p for n, p in named.items() if n not in TRUNK], "lr": lr}]  # fmt: skip
    else:  # a mask over the trainable leaves: a masked-out leaf gets no gradient and no update
        mask = {n: not (freeze == "mask" and n in TRUNK) for n in named}
        for n, p in named.items():
            p.requires_grad_(mask[n])
        groups = [{"params": [p for n, p in named.items() if mask[n]], "lr": lr}]
    optimizer = torch.optim.SGD(groups, lr=lr)
    with torch.no_grad():
        loss = _loss(model, x, y).item()
    for _ in range(steps):
        optimizer.zero_grad()
        value = _loss(model, x, y)
        value.backward()
        optimizer.step()
        loss = value.item()
    return loss


def frozen_trunk_recipe(*args: Any, **kwargs: Any) -> np.ndarray:
    """The final fine-tuning loss, a 1-D array of shape (1,), of the recipe above: ``run_recipe``'s arguments
    (seed, x_pre, y_pre, x_fine, y_fine, lr_pre, lr_fine, finetune_steps, freeze="group")."""
    return run_recipe(*args, **kwargs).loss


def run_recipe(
    seed: int,
    x_pre: np.ndarray,
    y_pre: np.ndarray,
    x_fine: np.ndarray,
    y_fine: np.ndarray,
    lr_pre: float,
    lr_fine: float,
    finetune_steps: int,
    freeze: str | None = "group",
) -> RecipeRun:
    """Pre-train the MLP on (x_pre, y_pre), then fine-tune it on (x_fine, y_fine) with the trunk frozen
    (``freeze``: "group" or "mask"; None trains it too); the loss and the leaves before and after fine-tuning."""
    if freeze not in FREEZES:
        raise ValueError(f"freeze={freeze!r}: use 'group', 'mask' or None")
    x_pre_t, x_fine_t = (torch.as_tensor(np.asarray(x, dtype=np.float64)) for x in (x_pre, x_fine))
    y_pre_t, y_fine_t = (torch.as_tensor(np.asarray(y, dtype=np.float64).ravel()) for y in (y_pre, y_fine))
    if x_pre_t.ndim != 2 or x_fine_t.shape[1:] != x_pre_t.shape[1:]:
        raise ValueError(f"x_pre {tuple(x_pre_t.shape)} and x_fine {tuple(x_fine_t.shape)}: two (n, features) arrays")
    model = _mlp(seed, x_pre_t.shape[1])
    _sgd(model, x_pre_t, y_pre_t, PRETRAIN_STEPS, lr_pre, freeze=None)  # pre-training trains every layer
    pretrained = {n: p.detach().clone() for n, p in model.named_parameters()}
    loss = _sgd(model, x_fine_t, y_fine_t, finetune_steps, lr_fine, freeze)
    finetuned = {n: p.detach().clone() for n, p in model.named_parameters()}
    return RecipeRun(np.array([loss], dtype=np.float64), pretrained, finetuned)
