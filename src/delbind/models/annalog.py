"""A trunk that has read molecules: ANNalog's SMILES encoder (annalog 1.0.6, MIT), converted once from its pinned wheel.

ANNalog (ChemRxiv 10.26434/chemrxiv-2025-9c1v6) is a seq2seq transformer trained on ChEMBL analogue pairs; delbind
keeps its encoder: 3 post-LN layers, d_model 256, 8 heads, feed-forward 512, ReLU, token embeddings scaled by
sqrt(256), 102 learned positions (1.62M parameters). That is transformers' ``MarianEncoder`` exactly, except that
Marian's positions are fixed sinusoids: ``AnnalogEncoder`` swaps in a learned table, so the checkpoint's positions
load and train as they were trained. Its tokenizer is the package's own (REINVENT's SMILES regex: bracket atoms,
``%nn`` ring closures, Br / Cl, otherwise one character a token) over its 59-token vocabulary, wrapped as
``<sos> ... <eos>``; a token outside the vocabulary is ``<unk>``. The package is never imported (its ``__init__``
pulls RDKit extras and pins chembl-gen-check): its checkpoint and vocabulary are read out of the wheel.
"""

from __future__ import annotations

import io
import logging
import pickle
import re
from pathlib import Path
from typing import Any

import torch
from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors
from torch import nn
from transformers import AutoConfig, AutoModel, MarianConfig, PreTrainedTokenizerFast
from transformers.models.marian.modeling_marian import MarianEncoder

from delbind.assets import ANNALOG, converted_dir, read_member
from delbind.errors import AssetError

CHECKPOINT = "annalog/ckpt_and_vocab/Lev_extended.pt"
VOCABULARY = "annalog/ckpt_and_vocab/stereo_experiment_vocab_ttf.pkl"
# annalog/model_files/vocabulary.py SMILESTokenizer: brackets, then two-digit ring closures, then Br / Cl, then
# every other character alone (its REGEXP_ORDER, as one alternation: the earlier patterns win where they match)
SMILES_REGEX = r"\[[^\]]*\]|%\d{2}|Br|Cl|."
SPECIALS = {"unk_token": "<unk>", "pad_token": "<pad>", "bos_token": "<sos>", "eos_token": "<eos>"}
# the checkpoint's encoder (model_handler.py: HID_DIM, ENC_LAYERS, ENC_HEADS, ENC_PF_DIM, ENC_DROPOUT, max_length)
SHAPE = {"d_model": 256, "encoder_layers": 3, "encoder_attention_heads": 8, "encoder_ffn_dim": 512, "dropout": 0.1}
MAX_POSITIONS = 102  # <sos> + 100 SMILES tokens + <eos>
log = logging.getLogger(__name__)


class AnnalogConfig(MarianConfig):
    """Marian's config, named so that ``AutoModel`` builds the encoder alone (a trunk has no decoder)."""

    model_type = "annalog_encoder"
    attribute_map = {**MarianConfig.attribute_map, "num_hidden_layers": "encoder_layers"}  # trunk_layers cuts these


class LearnedPositions(nn.Embedding):
    """A learned position table called as Marian calls its sinusoids (with the input's shape)."""

    def forward(self, input_ids_shape: torch.Size, cache_length: int = 0, position_ids: Any = None) -> torch.Tensor:
        if position_ids is None:
            seq_len = input_ids_shape[1]
            position_ids = torch.arange(cache_length, cache_length + seq_len, device=self.weight.device)
        return super().forward(position_ids)


class AnnalogEncoder(MarianEncoder):
    """MarianEncoder with learned positions (ANNalog's ``pos_embedding``)."""

    config_class = AnnalogConfig

    def __init__(self, config: AnnalogConfig):
        super().__init__(config)
        self.embed_positions = LearnedPositions(config.max_position_embeddings, config.d_model)
        self.post_init()


AutoConfig.register(AnnalogConfig.model_type, AnnalogConfig)
AutoModel.register(AnnalogConfig, AnnalogEncoder)


class _DataOnly(pickle.Unpickler):
    """The vocabulary pickle is plain dicts and lists: any class or function in it is refused, not run."""

    def find_class(self, module: str, name: str) -> Any:
        raise AssetError(f"{VOCABULARY} names {module}.{name}: a vocabulary pickle holds data only")


def read_vocabulary(raw: bytes) -> list[str]:
    """The checkpoint's tokens in id order, checked: ``itos`` and ``stoi`` agree, the four specials are present."""
    payload = _DataOnly(io.BytesIO(raw)).load()
    itos, stoi = list(payload["itos"]), dict(payload["stoi"])
    if stoi != {t: i for i, t in enumerate(itos)} or not set(SPECIALS.values()) <= set(itos):
        raise AssetError(f"{VOCABULARY}: itos and stoi disagree or a special token is missing")
    return itos


def build_tokenizer(vocab: list[str], model_max_length: int = MAX_POSITIONS) -> PreTrainedTokenizerFast:
    """A fast WordLevel tokenizer splitting SMILES as ANNalog does, wrapped as ``<sos> ... <eos>``."""
    ids = {tok: i for i, tok in enumerate(vocab)}
    tok = Tokenizer(models.WordLevel(vocab=ids, unk_token=SPECIALS["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(SMILES_REGEX), behavior="isolated")
    tok.post_processor = processors.TemplateProcessing(
        single="<sos> $A <eos>", special_tokens=[(t, ids[t]) for t in ("<sos>", "<eos>")]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        model_max_length=model_max_length,
        model_input_names=["input_ids", "attention_mask"],
        **SPECIALS,
    )


_RENAME = [  # ANNalog's encoder names -> MarianEncoder's
    (r"^encoder\.tok_embedding\.", "embed_tokens."),
    (r"^encoder\.pos_embedding\.", "embed_positions."),
    (r"^encoder\.layers\.(\d+)\.self_attention\.fc_([qkv])\.", r"layers.\1.self_attn.\2_proj."),
    (r"^encoder\.layers\.(\d+)\.self_attention\.fc_o\.", r"layers.\1.self_attn.out_proj."),
    (r"^encoder\.layers\.(\d+)\.self_attn_layer_norm\.", r"layers.\1.self_attn_layer_norm."),
    (r"^encoder\.layers\.(\d+)\.ff_layer_norm\.", r"layers.\1.final_layer_norm."),
    (r"^encoder\.layers\.(\d+)\.positionwise_feedforward\.fc_([12])\.", r"layers.\1.fc\2."),
]


def encoder_state(checkpoint: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The checkpoint's encoder weights under MarianEncoder's names (the decoder's are dropped)."""
    out = {}
    for key, value in checkpoint.items():
        if not key.startswith("encoder."):
            continue
        new = key
        for pattern, repl in _RENAME:
            new = re.sub(pattern, repl, new)
        if new == key:
            raise AssetError(f"{CHECKPOINT}: encoder weight {key} has no place in the converted encoder")
        out[new] = value
    return out


def annalog_config(vocab: list[str]) -> AnnalogConfig:
    return AnnalogConfig(
        vocab_size=len(vocab),
        max_position_embeddings=MAX_POSITIONS,
        activation_function="relu",
        scale_embedding=True,
        attention_dropout=SHAPE["dropout"],
        activation_dropout=SHAPE["dropout"],
        encoder_layerdrop=0.0,
        pad_token_id=vocab.index("<pad>"),
        bos_token_id=vocab.index("<sos>"),
        eos_token_id=vocab.index("<eos>"),
        decoder_start_token_id=vocab.index("<sos>"),
        decoder_layers=0,
        **SHAPE,
    )


def annalog_model_dir() -> Path:
    """Convert ANNalog's encoder and tokenizer from the pinned wheel to a cached HF model dir (once) and return it."""
    return converted_dir(f"annalog-{ANNALOG.version}", _convert)


def _convert(out: Path) -> None:
    vocab = read_vocabulary(read_member(ANNALOG, VOCABULARY))
    checkpoint = torch.load(io.BytesIO(read_member(ANNALOG, CHECKPOINT)), map_location="cpu", weights_only=True)
    with torch.random.fork_rng(devices=[]):  # a cache fill must not move the experiment's RNG (see rxnfp.py)
        model = AnnalogEncoder(annalog_config(vocab))
    missing, unexpected = model.load_state_dict(encoder_state(checkpoint), strict=False)
    if missing or unexpected:
        raise AssetError(f"ANNalog's encoder does not match MarianEncoder: missing {missing}, unexpected {unexpected}")
    model.save_pretrained(out)
    build_tokenizer(vocab).save_pretrained(out)
