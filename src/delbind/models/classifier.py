"""The binder classifier: a pretrained trunk, pooling, (optional) standardization, dropout and a one-logit head,
which may also read the molecule's ECFP4 bits beside the pooled embedding (``fingerprint_bits``)."""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

import delbind.models.annalog  # noqa: F401  (registers the annalog_encoder trunk, so its saved models load)


class BinderConfig(PreTrainedConfig):
    model_type = "delbind_binder"
    trunk: dict | None = None  # the trunk's own config as a dict (with model_type)
    pooling: str = "cls"  # "cls" or "mean" (attention-masked)
    head_dropout: float = 0.1
    feature_norm: bool = False  # standardize the pooled embedding with fixed per-feature statistics
    # > 0: the head also reads this many ECFP4 bits (the ``fingerprint`` input) beside the pooled embedding
    fingerprint_bits: int = 0


class Standardize(nn.Module):
    """(x - mean) / std per feature, with fixed statistics (buffers, saved with the model)."""

    def __init__(self, size: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("std", torch.ones(size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


def _build_trunk(trunk_config: PreTrainedConfig) -> PreTrainedModel:
    if trunk_config.model_type in ("bert", "roberta"):
        return AutoModel.from_config(trunk_config, add_pooling_layer=False)  # pooler unused: no dead params
    return AutoModel.from_config(trunk_config)


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, how: str) -> torch.Tensor:
    """[CLS] (first token) or mean over real tokens; padding never changes the result."""
    if how == "cls":
        return hidden[:, 0]
    if how == "mean":
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    raise ValueError(f"unknown pooling {how!r}: use 'cls' or 'mean'")


class BinderClassifier(PreTrainedModel):
    """Trunk + pooling + dropout + Linear(hidden [+ fingerprint bits], 1). Returns logits of P(binder)."""

    config_class = BinderConfig
    base_model_prefix = "binder"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True

    def __init__(self, config: BinderConfig):
        super().__init__(config)
        trunk_config = AutoConfig.for_model(**config.trunk)
        self.trunk = _build_trunk(trunk_config)
        size = trunk_config.hidden_size
        self.standardize = Standardize(size) if config.feature_norm else nn.Identity()
        self.dropout = nn.Dropout(config.head_dropout)
        self.head = nn.Linear(size + config.fingerprint_bits, 1)
        self.frozen_modules: list[str] = []  # set by models/policies.py: kept in eval mode while training
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if module is getattr(self, "head", None):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)

    def train(self, mode: bool = True) -> BinderClassifier:
        # The Trainer calls model.train() every step; frozen modules must keep dropout off.
        super().train(mode)
        for name in self.frozen_modules:
            self.get_submodule(name).eval()
        return self

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.trunk(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return pool(hidden, attention_mask, self.config.pooling)

    def head_logits(self, pooled: torch.Tensor, fingerprint: torch.Tensor | None = None) -> torch.Tensor:
        """Pooled embeddings (and, for a head that reads them, ECFP4 bits) -> one logit each (CachedHead calls this
        on cached embeddings too)."""
        features = self.standardize(pooled)
        if self.config.fingerprint_bits:
            if fingerprint is None or fingerprint.shape[-1] != self.config.fingerprint_bits:
                got = None if fingerprint is None else tuple(fingerprint.shape)
                raise ValueError(f"this head reads {self.config.fingerprint_bits} ECFP4 bits per molecule; got {got}")
            features = torch.cat([features, fingerprint.to(features.dtype)], dim=-1)
        return self.head(self.dropout(features)).squeeze(-1)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        fingerprint: torch.Tensor | None = None,
        return_pooled: bool = False,
    ) -> SequenceClassifierOutput:
        """Logits; with ``return_pooled`` also the pooled embeddings, as ``hidden_states[0]`` (the contrastive
        term's input, training/contrastive.py)."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        pooled = self.embed(input_ids, attention_mask)
        logits = self.head_logits(pooled, fingerprint)
        return SequenceClassifierOutput(logits=logits, hidden_states=(pooled,) if return_pooled else None)

    def set_standardization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Standardize the head's input with these per-feature statistics from now on (and in the saved model)."""
        self.config.feature_norm = True
        self.standardize = Standardize(len(mean))
        self.standardize.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.standardize.std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp(min=1e-6))


AutoConfig.register(BinderConfig.model_type, BinderConfig)
AutoModel.register(BinderConfig, BinderClassifier)
