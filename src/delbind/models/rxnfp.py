"""The offline default trunk: the rxnfp BERT, converted once from its pinned wheel to a cached HF model dir."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import torch
from transformers import BertConfig, BertForPreTraining

from delbind.assets import RXNFP, converted_dir, read_member
from delbind.errors import AssetError
from delbind.models.tokenizers import build_smiles_tokenizer

RXNFP_PREFIX = "rxnfp/models/transformers/bert_pretrained/"
log = logging.getLogger(__name__)


def rxnfp_model_dir() -> Path:
    """Convert the BERT in the pinned rxnfp wheel to a cached HF model dir (once) and return it."""
    return converted_dir(f"rxnfp_bert-{RXNFP.version}", _convert)


def _convert(out: Path) -> None:
    config = json.loads(read_member(RXNFP, RXNFP_PREFIX + "config.json"))
    config["model_type"] = "bert"  # missing from the 2021 config.json
    for stale in ("output_past", "pruned_heads", "torchscript", "use_bfloat16"):
        config.pop(stale, None)
    state = torch.load(
        io.BytesIO(read_member(RXNFP, RXNFP_PREFIX + "pytorch_model.bin")),
        map_location="cpu",
        weights_only=True,
    )
    # A cache fill must not move the experiment's RNG: the random init here (overwritten by the checkpoint) once
    # made a run's first use of the model (cold cache) train differently from every later run (warm cache).
    with torch.random.fork_rng(devices=[]):
        model = BertForPreTraining(BertConfig(**config))  # keeps the MLM and NSP heads it was trained with
    missing, unexpected = model.load_state_dict(state, strict=False)
    # position_ids is a buffer; the decoder bias is tied to cls.predictions.bias
    missing = [k for k in missing if not k.endswith(("position_ids", "predictions.decoder.bias"))]
    if missing or unexpected:
        raise AssetError(f"rxnfp checkpoint does not match BERT: missing {missing}, unexpected {unexpected}")
    vocab = read_member(RXNFP, RXNFP_PREFIX + "vocab.txt").decode().splitlines()
    model.save_pretrained(out)
    build_smiles_tokenizer(vocab, model_max_length=config["max_position_embeddings"]).save_pretrained(out)
