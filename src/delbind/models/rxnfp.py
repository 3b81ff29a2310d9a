"""The offline default trunk: the rxnfp BERT, converted once from its pinned wheel to a cached HF model dir."""

from __future__ import annotations

import io
import json
import logging
import shutil
import tempfile
from pathlib import Path

import torch
from transformers import BertConfig, BertForPreTraining

from delbind.assets import ASSETS, RXNFP, cache_root, fetch_wheel, read_member
from delbind.errors import AssetError
from delbind.integrity import manifest_mismatch, write_manifest
from delbind.models.tokenizers import build_smiles_tokenizer

RXNFP_PREFIX = "rxnfp/models/transformers/bert_pretrained/"
log = logging.getLogger(__name__)


def rxnfp_model_dir() -> Path:
    """Convert the BERT in the pinned rxnfp wheel to a cached HF model dir (once) and return it."""
    out = cache_root() / "models" / f"rxnfp_bert-{RXNFP.version}"
    if out.is_dir():
        reason = manifest_mismatch(out)
        if reason is None:
            return out
        log.warning("converted model %s is damaged (%s): discarded, converting it again", out, reason)
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
    tokenizer = build_smiles_tokenizer(vocab, model_max_length=config["max_position_embeddings"])
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_manifest(Path(tmp))
        shutil.rmtree(out, ignore_errors=True)
        shutil.move(tmp, out)
    return out


def main() -> None:
    """Fetch every pinned asset and build the converted default model (``make assets``)."""
    for asset in ASSETS.values():
        print(f"{asset.name}=={asset.version}: {fetch_wheel(asset)}  [{asset.license}]")
    print(f"rxnfp_bert: {rxnfp_model_dir()}")


if __name__ == "__main__":
    main()
