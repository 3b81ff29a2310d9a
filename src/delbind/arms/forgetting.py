"""What training cost the trunk, on fixed held-out molecules (a seeded draw from MoleculeACE's non-kinase ligands,
none of the run's): the masked-LM loss before and after (``forgetting``; trunks with an MLM head) and the
representation drift, 1 - linear CKA between the trunk's pooled embeddings of those molecules before and after
(``representation_drift``; every trunk: 0 for a frozen one, up to 1 for embeddings that share no structure).
``eval.forgetting.n_molecules=0`` turns both off."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from transformers import PreTrainedTokenizerBase

from delbind import artifacts, distributed
from delbind.arms.base import ArmInputs
from delbind.data.corpus import heldout_smiles
from delbind.evaluation.metrics import linear_cka
from delbind.models import BinderClassifier
from delbind.models.embeddings import embed_ids
from delbind.models.loading import max_length
from delbind.models.mlm import mlm_loss, save_mlm_head
from delbind.models.policies import trunk_frozen

# True while the probe runs the trunk: that work is not the arm's (scripts/bench.py leaves it out of the trunk counts,
# as it leaves out the masked-LM model's).
PROBING: ContextVar[bool] = ContextVar("delbind_forgetting_probe", default=False)


@contextmanager
def probing() -> Iterator[None]:
    token = PROBING.set(True)
    try:
        yield
    finally:
        PROBING.reset(token)


def _embedded(model: BinderClassifier, ids: list[list[int]], pad_token_id: int, precision: str) -> np.ndarray:
    with probing():
        return embed_ids(model, ids, pad_token_id, precision, progress=False)


@dataclass
class ForgettingProbe:
    """The fixed held-out SMILES, the pretrained trunk's MLM loss on them and its pooled embeddings of them."""

    smiles: list[str]
    before: float | None
    ids: list[list[int]] = field(default_factory=list)
    embedded: np.ndarray | None = None
    frozen: bool = False  # no trunk weight trains: drift 0 by construction, and the trunk is not run for it

    @classmethod
    def measure(cls, inputs: ArmInputs, tokenizer: PreTrainedTokenizerBase, model: BinderClassifier) -> ForgettingProbe:
        cfg = inputs.cfg
        n, seed = cfg.eval.forgetting.n_molecules, cfg.eval.forgetting.seed
        if not n:  # off: no held-out molecules, no pass (metrics.json records both as null)
            return cls([], None)
        smiles = heldout_smiles(n, seed, exclude=set(inputs.df["smiles"]))
        length = max_length(cfg.model, model)
        before = mlm_loss(model.trunk, tokenizer, smiles, cfg.model.name_or_path, max_length=length,
                          cache_dir=cfg.paths.mlm_loss_cache)  # fmt: skip
        if trunk_frozen(model, cfg.mode):  # a cached frozen run (or its rerun) never runs the trunk for this
            return cls(smiles, before, frozen=True)
        ids = tokenizer(smiles, truncation=True, max_length=length)["input_ids"]
        return cls(smiles, before, ids, _embedded(model, ids, tokenizer.pad_token_id, inputs.precision))

    def after(self, inputs: ArmInputs, tokenizer: PreTrainedTokenizerBase, model: BinderClassifier) -> dict[str, Any]:
        """The trained trunk's drift and (keeping the MLM head in ``model/``) its forgetting = after - before."""
        drift = 0.0 if self.frozen else None
        if self.embedded is not None:
            now = _embedded(model, self.ids, tokenizer.pad_token_id, inputs.precision)
            cka = linear_cka(self.embedded, now)  # NaN for constant embeddings: no drift recorded
            drift = float(np.clip(1.0 - cka, 0.0, 1.0)) if np.isfinite(cka) else None  # rounding: CKA a hair over 1
        if self.before is None:
            return {"mlm_loss_before": None, "mlm_loss_after": None, "forgetting": None, "representation_drift": drift}
        source = inputs.cfg.model.name_or_path
        if distributed.is_main_process():
            save_mlm_head(source, artifacts.staging(inputs.run_dir / "model"))  # published by finish
        # The head from its source, the same tensors model/ now holds: other ranks never wait for rank 0's file.
        # A trunk that did not change (frozen) is not run again: its cache entry is the one `before` wrote.
        after = mlm_loss(model.trunk, tokenizer, self.smiles, source, max_length=max_length(inputs.cfg.model, model),
                         cache_dir=inputs.cfg.paths.mlm_loss_cache)  # fmt: skip
        return {"mlm_loss_before": self.before, "mlm_loss_after": after, "forgetting": after - self.before,
                "mlm_heldout_molecules": len(self.smiles), "representation_drift": drift}  # fmt: skip
