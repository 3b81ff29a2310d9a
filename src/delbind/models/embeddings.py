"""Frozen-trunk embeddings computed once (no grad, eval mode, length-sorted batches) and cached on disk."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow.compute as pc
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase
from transformers.modeling_outputs import SequenceClassifierOutput

from delbind.integrity import file_mismatch, file_record, hash_weights
from delbind.io import atomic_write, write_json
from delbind.models.classifier import BinderClassifier

log = logging.getLogger(__name__)

AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}
# Padded tokens per embedding batch. A CPU gains nothing from big batches, only padding: on the default
# data 944 molecules took 5.7 s in 4,096-token batches vs 7.1 s in 128-row ones. A GPU wants them big.
BATCH_TOKENS = {"cpu": 4096, "cuda": 65536}


def token_ids(ds: datasets.Dataset) -> Any:
    """The ``input_ids`` column as Arrow (chunked, not copied), honouring a ``select`` (which ``ds.data`` does not)."""
    return ds.with_format("arrow")["input_ids"]


def length_batches(lengths: np.ndarray, max_tokens: int) -> list[np.ndarray]:
    """Row indices in batches of similar length, each at most ``max_tokens`` once padded (a longer row alone)."""
    order = np.argsort(lengths, kind="stable")
    batches, start = [], 0
    for end in range(1, len(order) + 1):  # ascending, so a batch pads to its last row's length
        if end == len(order) or (end + 1 - start) * lengths[order[end]] > max_tokens:
            batches.append(order[start:end])
            start = end
    return batches


def cache_key(model: BinderClassifier, ds: datasets.Dataset, precision: str) -> str:
    """Changes with the trunk's weights, the pooling, the exact token inputs, and the precision."""
    h = hashlib.sha256()
    hash_weights(h, model.trunk)
    h.update(json.dumps({"pooling": model.config.pooling, "precision": precision}).encode())
    ids = token_ids(ds)
    h.update(pc.list_value_length(ids).to_numpy().tobytes())
    for chunk in pc.list_flatten(ids).chunks:  # streamed: the same digest however the column is chunked
        h.update(chunk.to_numpy().tobytes())
    return h.hexdigest()[:24]


def embed(
    model: BinderClassifier,
    ds: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    precision: str,
    device: torch.device | None = None,
    max_tokens: int | None = None,
) -> np.ndarray:
    """Pooled trunk embeddings of every row of a tokenized dataset (rows keep their order), as float32."""
    ids = token_ids(ds).to_pylist()
    return embed_ids(model, ids, tokenizer.pad_token_id, precision, device, max_tokens)


@torch.no_grad()
def embed_ids(
    model: BinderClassifier,
    ids: Sequence[Sequence[int]],
    pad_token_id: int,
    precision: str,
    device: torch.device | None = None,
    max_tokens: int | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Pooled trunk embeddings of token id sequences (rows keep their order), as float32, in eval mode.

    Batches hold molecules of similar length, at most ``max_tokens`` padded tokens (default from the device),
    each padded (right, with ``pad_token_id``) to its own longest row only.
    """
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    was_training = model.training
    model.eval()
    model.to(device)
    lengths = np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(ids))
    out = np.empty((len(ids), model.trunk.config.hidden_size), dtype=np.float32)  # d_model for a Marian trunk
    batches = length_batches(lengths, max_tokens or BATCH_TOKENS[device.type])
    for idx in tqdm(batches, desc="embedding", unit="batch", disable=not progress):
        width = int(lengths[idx].max())
        input_ids = torch.full((len(idx), width), pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            input_ids[row, : lengths[i]] = torch.as_tensor(ids[i])
            attention_mask[row, : lengths[i]] = 1
        with torch.autocast(device.type, dtype=AUTOCAST.get(precision), enabled=precision in AUTOCAST):
            vectors = model.embed(input_ids.to(device), attention_mask.to(device))
        out[idx] = vectors.float().cpu().numpy()
    model.train(was_training)
    return out


def cached_embeddings(
    model: BinderClassifier,
    ds: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    cache_dir: Path,
    precision: str,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Embeddings from ``cache_dir`` when this exact model + data + pooling was embedded before, else computed.

    The info holds ``embedding_s``: the time computing them took (on a hit, as recorded when they were computed).
    """
    key = cache_key(model, ds, precision)
    path = Path(cache_dir) / f"{key}.npy"
    record = path.with_suffix(".json")  # what computing them cost (a hit still reports the arm's cost), size, sha256
    info: dict[str, Any] = {"embedding_cache": str(path), "embedding_cache_hit": False}
    if path.exists() or record.exists():
        vectors, cost = _read_entry(path, record, len(ds))
        if vectors is not None:
            return vectors, {**info, "embedding_cache_hit": True, **cost}
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    start = time.perf_counter()
    vectors = embed(model, ds, tokenizer, precision, device)
    cost = {"embedding_s": time.perf_counter() - start, "embedding_device": device.type}
    with atomic_write(path) as tmp:  # a concurrent job never reads half a file
        np.save(tmp, vectors)
    write_json(record, cost | file_record(path))  # written last: a file without its record is no entry
    return vectors, {**info, **cost}


def _read_entry(path: Path, record: Path, n_rows: int) -> tuple[np.ndarray | None, dict[str, Any]]:
    """A cache entry's vectors and cost when the file matches its record and holds ``n_rows`` vectors; else None.

    A damaged entry is logged and deleted, so it is computed again. Never unpickles (``allow_pickle=False``).
    """
    try:
        meta = json.loads(record.read_text())
        reason = file_mismatch(path, meta)
        if reason is None:
            vectors = np.load(path, allow_pickle=False)
            if vectors.ndim == 2 and vectors.shape[0] == n_rows:
                return vectors, {k: v for k, v in meta.items() if k not in ("size", "sha256")}
            reason = f"holds shape {vectors.shape}, {n_rows} rows expected"
    except (OSError, ValueError) as e:  # a missing or unparsable record, a file numpy cannot read
        reason = f"unreadable: {type(e).__name__}"
    log.warning("embedding cache entry %s is damaged (%s): discarded, computing it again", path, reason)
    path.unlink(missing_ok=True)
    record.unlink(missing_ok=True)
    return None, {}


def embedding_dataset(vectors: np.ndarray, labels: np.ndarray, fingerprints: Any = None) -> datasets.Dataset:
    """Cached embeddings and labels, with the molecules' ECFP4 bits for a head that reads them."""
    columns = {"embeddings": vectors, "labels": labels.astype(np.float32)}
    if fingerprints is not None:
        columns["fingerprint"] = fingerprints
    return datasets.Dataset.from_dict(columns)


class CachedHead(nn.Module):
    """The classifier's own standardization, dropout and head (shared modules), fed cached embeddings."""

    def __init__(self, model: BinderClassifier):
        super().__init__()
        self.config = model.config
        self.standardize, self.dropout, self.head = model.standardize, model.dropout, model.head

    def forward(self, embeddings: torch.Tensor, fingerprint: torch.Tensor | None = None) -> SequenceClassifierOutput:
        logits = BinderClassifier.head_logits(self, embeddings, fingerprint)  # the same function
        return SequenceClassifierOutput(logits=logits)
