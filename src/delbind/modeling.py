"""The binder classifier: a pretrained trunk, pooling, dropout and a one-logit head.

Also builds the offline default trunk (the rxnfp BERT, converted once from its wheel) and the
SMILES tokenizers, and applies a training mode (freeze or fine-tune) to a model.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoTokenizer,
    BertConfig,
    BertForPreTraining,
    PreTrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils import logging as hf_logging

from delbind.assets import RXNFP, AssetError, cache_root, read_member

# The regex rxnfp's BERT was pretrained with (rxnfp/tokenization.py, SMI_REGEX_PATTERN).
SMILES_REGEX = (
    r"(\%\([0-9]{3}\)|\[[^\]]+]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\||\(|\)|\.|=|#|-|\+|\\|\/|:|~|@|\?|>>?"
    r"|\*|\$|\%[0-9]{2}|[0-9])"
)
SPECIAL_TOKENS = {
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
}
# Vocabulary of the `tiny` test model: specials plus the organic subset and common bracket atoms.
TINY_TOKENS = (
    r"c C ( ) O 1 2 = N n 3 F Cl - 4 S Br # / 5 s o [nH] [C@H] [C@@H] [C@] [C@@] [N+] [O-] I P 6 7 8 9 \ . "
    r"[n+] [S+] [NH+] [NH2+] [NH3+] [Si] [B] B [2H] [N-] [Na+] [K+] [Li+] [Cl-] [Br-] [I-] [Se] [se] "
    r"%10 %11 %12 + @ :"
)
TINY_VOCAB = [*SPECIAL_TOKENS.values(), *TINY_TOKENS.split()]
RXNFP_PREFIX = "rxnfp/models/transformers/bert_pretrained/"


class ModelLoadError(RuntimeError):
    """A pretrained model or tokenizer could not be loaded; the message says how to supply it."""


def build_smiles_tokenizer(vocab: list[str], model_max_length: int = 512) -> PreTrainedTokenizerFast:
    """A fast WordLevel tokenizer that splits SMILES with the rxnfp regex and wraps as [CLS] ... [SEP]."""
    ids = {tok: i for i, tok in enumerate(vocab)}
    tok = Tokenizer(models.WordLevel(vocab=ids, unk_token=SPECIAL_TOKENS["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(SMILES_REGEX), behavior="isolated")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[(t, ids[t]) for t in ("[CLS]", "[SEP]")],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        model_max_length=model_max_length,
        model_input_names=["input_ids", "attention_mask"],
        **SPECIAL_TOKENS,
    )


def rxnfp_model_dir() -> Path:
    """Convert the BERT in the pinned rxnfp wheel to a cached HF model dir (once) and return it."""
    out = cache_root() / "models" / f"rxnfp_bert-{RXNFP.version}"
    if (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file():
        return out
    config = json.loads(read_member(RXNFP, RXNFP_PREFIX + "config.json"))
    config["model_type"] = "bert"  # missing from the 2021 config.json
    for stale in ("output_past", "pruned_heads", "torchscript", "use_bfloat16"):
        config.pop(stale, None)
    state = torch.load(
        io.BytesIO(read_member(RXNFP, RXNFP_PREFIX + "pytorch_model.bin")),
        map_location="cpu",
        weights_only=True,
    )
    model = BertForPreTraining(BertConfig(**config))  # keeps the MLM and NSP heads it was trained with
    missing, unexpected = model.load_state_dict(state, strict=False)
    # position_ids is a buffer; the decoder bias is tied to cls.predictions.bias
    missing = [k for k in missing if not k.endswith(("position_ids", "predictions.decoder.bias"))]
    if missing or unexpected:
        raise AssetError(f"rxnfp checkpoint does not match BERT: missing {missing}, unexpected {unexpected}")
    vocab = read_member(RXNFP, RXNFP_PREFIX + "vocab.txt").decode().splitlines()
    tokenizer = build_smiles_tokenizer(vocab, model_max_length=config["max_position_embeddings"])
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        shutil.rmtree(out, ignore_errors=True)
        shutil.move(tmp, out)
    return out


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
        self.trunk_frozen = False
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if module is getattr(self, "head", None):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)

    def train(self, mode: bool = True) -> BinderClassifier:
        # The Trainer calls model.train() every step; a frozen trunk must keep dropout off.
        super().train(mode)
        if self.trunk_frozen:
            self.trunk.eval()
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


def resolve_name_or_path(name_or_path: str) -> str:
    """Map a builtin asset name (``builtin:rxnfp_bert``) to its cached dir; pass others through."""
    if name_or_path == "builtin:rxnfp_bert":
        return str(rxnfp_model_dir())
    if name_or_path.startswith("builtin:"):
        raise ModelLoadError(f"unknown builtin model {name_or_path!r}; the only one is builtin:rxnfp_bert")
    return name_or_path


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def _hub_unreachable() -> str | None:
    """One quick request to the hub endpoint (through the hub's own session, so proxies apply)."""
    from huggingface_hub import constants, get_session

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    try:
        get_session().head(constants.ENDPOINT, timeout=5)
    except Exception as e:  # any transport failure means the real load would only retry and fail
        return f"{constants.ENDPOINT} unreachable: {type(e).__name__}"
    return None


def _from_pretrained(loader: Any, name: str, **kwargs: Any) -> Any:
    """Load from a local dir or the local HF cache, else from the hub; fail in seconds when offline."""
    try:
        return loader.from_pretrained(name, local_files_only=True, **kwargs)
    except (OSError, ValueError) as e:
        if Path(name).exists():
            raise ModelLoadError(f"{name} is not a loadable model dir: {str(e).splitlines()[0][:200]}") from e
    reason = _hub_unreachable()
    try:
        if reason:
            raise OSError(reason)
        return loader.from_pretrained(name, **kwargs)
    except (OSError, ValueError) as e:
        raise ModelLoadError(
            f"could not load {loader.__name__} for {name!r} from the HF hub ({str(e).splitlines()[0][:200]}). "
            f"Download it where the hub is reachable with `hf download {name} --local-dir DIR`, "
            "then pass model.name_or_path=DIR"
        ) from e


def load_tokenizer_and_model(model_cfg: DictConfig) -> tuple[PreTrainedTokenizerBase, BinderClassifier]:
    """Load the tokenizer and a BinderClassifier whose trunk carries the pretrained weights."""
    if model_cfg.name_or_path is None:  # random init from a config (the `tiny` test model)
        trunk_config = AutoConfig.for_model(**model_cfg.config)
        tokenizer = build_smiles_tokenizer(TINY_VOCAB, trunk_config.max_position_embeddings)
        trunk_config.vocab_size = len(tokenizer)
        trunk_config.pad_token_id = tokenizer.pad_token_id
        trunk_state = None
    else:
        name = resolve_name_or_path(model_cfg.name_or_path)
        tokenizer = _from_pretrained(AutoTokenizer, name)
        with _quiet_transformers():  # heads the trunk does not use (MLM, NSP) are expected leftovers
            pretrained, info = _from_pretrained(AutoModel, name, output_loading_info=True)
        missing = [k for k in info["missing_keys"] if not k.startswith("pooler.")]
        if missing:
            raise ModelLoadError(f"{name} lacks trunk weights, they would be random: {missing[:5]}")
        trunk_config, trunk_state = pretrained.config, pretrained.state_dict()
        del pretrained
    config = BinderConfig(trunk=trunk_config.to_dict(), pooling=model_cfg.pooling, head_dropout=model_cfg.head_dropout)
    model = BinderClassifier(config)
    if trunk_state is not None:
        trunk_state = {k: v for k, v in trunk_state.items() if not k.startswith("pooler.")}
        model.trunk.load_state_dict(trunk_state, strict=True)
    return tokenizer, model


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
