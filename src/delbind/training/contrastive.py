"""A supervised contrastive term beside BCE, with each binder's look-alike hard negatives in its batch.

The term (``loss.contrastive``; ``mode=contrastive`` turns it on for lp_ft's fine-tuning stage) is supervised
contrastive learning (Khosla et al. 2020, arXiv 2004.11362) with binders as the only anchors. With z the
L2-normalised pooled embeddings of one batch and P(i) the other binders of the batch, for each binder i that has one:

    l_i = -1/|P(i)| * sum_{p in P(i)} log( exp(z_i.z_p / T) / sum_{a != i} exp(z_i.z_a / T) )

and the loss is BCE + ``weight`` * mean_i l_i. Binders are pulled together; every other molecule of the batch is in
the denominator, so the non-binders that sit close to a binder are the ones pushed away. Which non-binders share a
binder's batch is the sampler's job: with ``mining: tanimoto`` (``PairedSampler``) each binder is dealt into the
same batch as one of its ``candidates`` most ECFP4-similar training hard negatives, drawn afresh each epoch
(hard-negative mining by fingerprint, as ACANet's activity-cliff triplets (Zhang et al. 2023) mine cliff pairs;
Robinson et al. 2021, arXiv 2010.04592, on why the hard ones carry the signal). Every training row is still seen
once per epoch, so the BCE term sees the same data as without the term. Non-binders are not anchors: easy and hard
negatives are not pulled into one cluster.

Why this and not a margin triplet: it uses every pair in the batch instead of one mined triplet per anchor, and its
one scale (the temperature) acts on cosine similarities, where a triplet margin depends on the embedding's norm.

The term acts on the trunk's embedding: a stage whose trunk is frozen (lp_ft's probe) trains with BCE alone, and
evaluation losses are BCE alone, so val losses compare across modes. Under DDP each process contrasts its own batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch.utils.data import Dataset, Sampler

from delbind.data.chem import ecfp4, tanimoto
from delbind.errors import ConfigError
from delbind.training.trainer import BinderTrainer, bce_loss

MINING = ("tanimoto", "none")


def supcon_loss(embeddings: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean over binder anchors (binders with another binder in the batch) of the supervised contrastive loss of
    the module docstring; 0 (still attached to the graph) when no binder has a positive."""
    z = F.normalize(embeddings.float(), dim=-1)
    logits = z @ z.T / temperature
    n = len(z)
    self_mask = torch.eye(n, dtype=torch.bool, device=z.device)
    log_prob = logits - torch.logsumexp(logits.masked_fill(self_mask, float("-inf")), dim=1, keepdim=True)
    binder = labels.view(-1) > 0.5
    positives = binder[:, None] & binder[None, :] & ~self_mask
    anchors = binder & positives.any(dim=1)
    if not anchors.any():
        return logits.sum() * 0.0
    per_anchor = (log_prob * positives).sum(dim=1)[anchors] / positives.sum(dim=1)[anchors]
    return -per_anchor.mean()


def nearest_hard_negatives(smiles: list[str], kinds: np.ndarray, k: int) -> tuple[dict[int, np.ndarray], float]:
    """For each binder (by position), the positions of its ``k`` most ECFP4-Tanimoto-similar hard negatives, most
    similar first; and the median similarity of a binder to its nearest one (nan without hard negatives)."""
    binders, hard = np.flatnonzero(kinds == "binder"), np.flatnonzero(kinds == "hard")
    if not len(binders) or not len(hard):
        return {int(b): np.array([], dtype=int) for b in binders}, float("nan")
    hard_fps = ecfp4([smiles[i] for i in hard])
    out, nearest = {}, []
    for b, fp in zip(binders, ecfp4([smiles[i] for i in binders]), strict=True):
        sims = tanimoto(fp, hard_fps)
        order = np.argsort(-sims, kind="stable")[:k]
        out[int(b)] = hard[order]
        nearest.append(sims[order[0]])
    return out, float(np.median(nearest))


class PairedSampler(Sampler[int]):
    """Every row once per epoch, ordered so that each consecutive ``batch_size`` rows (the DataLoader's batches)
    put each binder beside one of its candidate hard negatives, where one is still free this epoch.

    The order is a function of (``seed``, epoch): the Trainer calls ``set_epoch``, so a resumed run deals the
    same batches."""

    def __init__(self, partners: dict[int, np.ndarray], n_rows: int, batch_size: int, seed: int):
        if batch_size < 2:
            raise ConfigError("loss.contrastive.mining=tanimoto pairs molecules in a batch: it needs a batch size >= 2")
        self.partners, self.n_rows, self.batch_size, self.seed, self.epoch = partners, n_rows, batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n_rows

    def __iter__(self) -> Iterator[int]:
        for batch in self.batches():
            yield from batch

    def batches(self) -> list[list[int]]:
        """This epoch's batches: units (a binder and its drawn partner, or one row) shuffled and packed whole."""
        rng = np.random.default_rng([self.seed, self.epoch])
        taken: set[int] = set()
        units: list[list[int]] = []
        for b in rng.permutation(np.array(sorted(self.partners), dtype=int)):
            free = [int(c) for c in self.partners[int(b)] if int(c) not in taken]
            pick = [free[rng.integers(len(free))]] if free else []
            taken.update([int(b), *pick])
            units.append([int(b), *pick])
        units += [[i] for i in range(self.n_rows) if i not in taken]
        units = [units[i] for i in rng.permutation(len(units))]
        batches, current, deferred = [], [], []
        for unit in units:
            if len(current) + len(unit) > self.batch_size:  # a pair with one slot left waits for the next batch
                deferred.append(unit)
                continue
            current += unit
            if len(current) == self.batch_size:
                batches.append(current)
                current = []
                while deferred and len(current) + len(deferred[0]) <= self.batch_size:
                    current += deferred.pop(0)
        rest = current + [i for unit in deferred for i in unit]
        batches += [rest[i : i + self.batch_size] for i in range(0, len(rest), self.batch_size)]
        return batches


@dataclass(frozen=True)
class Contrastive:
    """The term's settings (``loss.contrastive``) and, with mining, the training rows' partners."""

    weight: float
    temperature: float
    mining: str
    partners: dict[int, np.ndarray] | None = None

    @classmethod
    def from_cfg(cls, cfg: DictConfig, train: pd.DataFrame) -> tuple[Contrastive, dict[str, Any]]:
        """From the run's config and its training rows (in training-set order); facts for metrics.json."""
        c = cfg.loss.contrastive
        if c.mining not in MINING:
            raise ConfigError(f"loss.contrastive.mining={c.mining!r}: use one of {MINING}")
        if c.temperature <= 0 or c.weight < 0:
            raise ConfigError("loss.contrastive needs temperature > 0 and weight >= 0")
        facts: dict[str, Any] = {"contrastive_weight": float(c.weight), "contrastive_temperature": float(c.temperature),
                                 "contrastive_mining": c.mining}  # fmt: skip
        partners = None
        if c.mining == "tanimoto":
            if cfg.augment.train_n or cfg.trainer.train_sampling_strategy != "random":
                raise ConfigError(
                    "loss.contrastive.mining=tanimoto deals each epoch's batches itself: it needs augment.train_n=0 "
                    "and trainer.train_sampling_strategy=random (or set loss.contrastive.mining=none)"
                )
            partners, median = nearest_hard_negatives(
                train["smiles"].tolist(), train["kind"].to_numpy(), int(c.candidates)
            )
            facts["contrastive_nearest_hard_similarity_median"] = median
        return cls(float(c.weight), float(c.temperature), c.mining, partners), facts


class ContrastiveTrainer(BinderTrainer):
    """BinderTrainer whose training loss adds the contrastive term, and whose batches pair binders with their hard
    negatives when the term mines; the logged ``contrastive_loss`` is the term's mean since the last log."""

    def __init__(self, *args: Any, contrastive: Contrastive, **kwargs: Any):
        self.contrastive = contrastive
        self._term_sum: torch.Tensor | float = 0.0
        self._term_n = 0
        super().__init__(*args, **kwargs)

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        if not model.training:  # evaluation: BCE alone, as every mode reports it
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        features = {k: v for k, v in inputs.items() if k != "labels"}
        outputs = model(**features, return_pooled=True)
        term = supcon_loss(outputs.hidden_states[0], inputs["labels"], self.contrastive.temperature)
        # summed on the device, read at the next log: no extra host sync per step
        self._term_sum, self._term_n = self._term_sum + term.detach(), self._term_n + 1
        loss = bce_loss(outputs.logits, inputs["labels"], self.pos_weight) + self.contrastive.weight * term
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        if "loss" in logs and self._term_n:
            logs["contrastive_loss"] = float(self._term_sum) / self._term_n
            self._term_sum, self._term_n = 0.0, 0
        super().log(logs, *args, **kwargs)

    def _get_train_sampler(self, train_dataset: Dataset | None = None) -> Sampler | None:
        if self.contrastive.partners is None:
            return super()._get_train_sampler(train_dataset)
        dataset = self.train_dataset if train_dataset is None else train_dataset
        return PairedSampler(self.contrastive.partners, len(dataset), self._train_batch_size, self.args.seed)


def trainer_for(
    cfg: DictConfig, train: pd.DataFrame, trunk_is_frozen: bool
) -> tuple[type[BinderTrainer], dict[str, Any], dict[str, Any]]:
    """The trainer class for a training stage, its extra arguments, and facts: the contrastive one when
    ``loss.contrastive.weight`` > 0 and the stage trains the trunk, else the plain BinderTrainer."""
    if not cfg.loss.contrastive.weight or trunk_is_frozen:
        return BinderTrainer, {}, {}
    term, facts = Contrastive.from_cfg(cfg, train)
    return ContrastiveTrainer, {"contrastive": term}, facts
