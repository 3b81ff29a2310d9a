"""The binder classifier: a pretrained trunk, pooling, dropout and a one-logit head."""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput


class BinderConfig(PreTrainedConfig):
    model_type = "delbind_binder"
    trunk: dict | None = None  # the trunk's own config as a dict (with model_type)
    pooling: str = "cls"  # "cls" or "mean" (attention-masked)
    head_dropout: float = 0.1


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
    """Trunk + pooling + dropout + Linear(hidden, 1). Returns logits of P(binder)."""

    config_class = BinderConfig
    base_model_prefix = "binder"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True

    def __init__(self, config: BinderConfig):
        super().__init__(config)
        trunk_config = AutoConfig.for_model(**config.trunk)
        self.trunk = _build_trunk(trunk_config)
        self.dropout = nn.Dropout(config.head_dropout)
        self.head = nn.Linear(trunk_config.hidden_size, 1)
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

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> SequenceClassifierOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        logits = self.head(self.dropout(self.embed(input_ids, attention_mask))).squeeze(-1)
        return SequenceClassifierOutput(logits=logits)


AutoConfig.register(BinderConfig.model_type, BinderConfig)
AutoModel.register(BinderConfig, BinderClassifier)
