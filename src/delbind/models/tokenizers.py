"""SMILES tokenizers: the regex WordLevel tokenizer rxnfp was pretrained with, and tokenizing a dataset once."""

from __future__ import annotations

import logging

import datasets
import numpy as np
import pandas as pd
from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors
from transformers import BatchEncoding, PreTrainedTokenizerBase, PreTrainedTokenizerFast

SMILES_REGEX = (
    r"(\%\([0-9]{3}\)|\[[^\]]+]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\||\(|\)|\.|=|#|-|\+|\\|\/|:|~|@|\?|>>?"
    r"|\*|\$|\%[0-9]{2}|[0-9])"
)


log = logging.getLogger(__name__)

SPECIAL_TOKENS = {
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
}


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


def encode(tokenizer: PreTrainedTokenizerBase, smiles: str | list[str], max_length: int) -> BatchEncoding:
    """The one tokenizer call every SMILES goes through (a dataset at once, or one molecule at access time)."""
    return tokenizer(smiles, truncation=True, max_length=max_length)


def coverage(df: pd.DataFrame, tokenizer: PreTrainedTokenizerBase, max_length: int) -> dict[str, int]:
    """How many molecules the trunk sees only in part: longer than ``max_length`` tokens (cut, as every trunk cuts
    them) or holding a token outside its vocabulary (read as the unknown token). metrics.json records both; a
    warning names the splits they are in."""
    smiles = df["smiles"].tolist()
    backend = getattr(tokenizer, "backend_tokenizer", None)  # fast tokenizers; a slow one (remote code) is called
    ids = [e.ids for e in backend.encode_batch(smiles)] if backend is not None else tokenizer(smiles)["input_ids"]
    unk = tokenizer.unk_token_id  # uncut ids, specials included
    long = np.array([len(i) > max_length for i in ids], dtype=bool)
    unknown = np.array([unk is not None and unk in i for i in ids], dtype=bool)
    for what, flags in ((f"longer than {max_length} tokens (cut)", long), ("with unknown tokens", unknown)):
        if flags.any():
            where = df.loc[flags, "split"].value_counts().to_dict() if "split" in df else {}
            log.warning("%d of %d molecules %s: %s", flags.sum(), len(df), what, where)
    return {"molecules_truncated": int(long.sum()), "molecules_with_unknown_tokens": int(unknown.sum())}


def tokenize(
    df: pd.DataFrame, tokenizer: PreTrainedTokenizerBase, max_length: int, fingerprint_bits: int = 0
) -> datasets.Dataset:
    """Tokenize every molecule once (truncated to ``max_length``); row order matches ``df``; ``labels`` from a
    ``label`` column when there is one (pre-training corpora have none); ``fingerprint`` (ECFP4 bits) for a head
    that reads them (``fingerprint_bits``)."""
    columns = {"smiles": df["smiles"].tolist()}
    if "label" in df:
        columns["labels"] = df["label"].astype("float32").tolist()
    if fingerprint_bits:
        columns["fingerprint"] = list(fingerprints(df["smiles"].tolist(), fingerprint_bits))
    ds = datasets.Dataset.from_dict(columns)
    return ds.map(
        lambda batch: encode(tokenizer, batch["smiles"], max_length),
        batched=True,
        remove_columns=["smiles"],
        desc="tokenizing",
    )


def fingerprints(smiles: list[str], bits: int) -> np.ndarray:
    """ECFP4 bits (uint8 rows) of valid SMILES, for a head that reads them; ``bits`` must be the one ECFP4 width."""
    from delbind.data.chem import ECFP_BITS, ecfp4_matrix

    if bits != ECFP_BITS:
        raise ValueError(f"a head reading {bits} fingerprint bits: delbind's ECFP4 has {ECFP_BITS}")
    return ecfp4_matrix(smiles)
