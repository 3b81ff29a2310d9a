"""Masked-LM heads: the MLM loss of a (fine-tuned) trunk on fixed SMILES, i.e. forgetting measured, and the head kept.

The model measured is ``AutoModelForMaskedLM`` built from the trunk's config, holding the trunk's weights and the
MLM head of a source (the pretrained dir, a pre-training run's ``model/``, or a run's ``model/`` holding
``mlm_head.safetensors``). Tied weights stay tied: where the config ties the decoder to the word embeddings (BERT,
RoBERTa, rxnfp), the decoder *is* the trunk's embeddings, fine-tuned or not; the rest of the head (transform,
bias) comes from the source. An untied decoder is part of the head and comes from the source.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import torch
from huggingface_hub import try_to_load_from_cache
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForMaskedLM,
    DataCollatorForLanguageModeling,
    PreTrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.modeling_outputs import MaskedLMOutput
from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING

from delbind.errors import ModelLoadError
from delbind.integrity import hash_weights
from delbind.io import write_json
from delbind.models.classifier import BinderConfig
from delbind.models.loading import quiet_transformers, resolve_name_or_path

log = logging.getLogger(__name__)

MASK_FRACTION = 0.15  # BERT's rate; the measurement always uses it, whatever a pre-training run trained with
MLM_HEAD_FILE = "mlm_head.safetensors"
WEIGHT_FILES = (MLM_HEAD_FILE, "model.safetensors", "pytorch_model.bin")  # first found wins
BATCH_SIZE = 64  # fixed, so the summation order (and the loss, bit for bit) never depends on the caller


def _weights_file(source: str) -> Path | None:
    """The weights file of a local dir, or of a hub id already in the local HF cache (never a download)."""
    for name in WEIGHT_FILES:
        if Path(source).is_dir():
            if (Path(source) / name).is_file():
                return Path(source) / name
        elif isinstance(cached := try_to_load_from_cache(source, name), str):
            return Path(cached)
    return None


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        return load_file(path)
    return torch.load(path, map_location="cpu", weights_only=True)


def _head_names(model: PreTrainedModel) -> list[str]:
    """Parameters outside the base model; tied ones (a decoder sharing the word embeddings) count as the trunk's."""
    prefix = model.base_model_prefix + "."
    return [n for n, _ in model.named_parameters() if not n.startswith(prefix)]  # duplicates (ties) come once


def _head_state(model: PreTrainedModel, mlm_source: str | Path | None) -> dict[str, torch.Tensor] | str:
    """The source's weights for ``model``'s MLM head, or the reason there are none."""
    if mlm_source is None:
        return "the model is initialized from a config (no pretrained weights, so no MLM head)"
    source = resolve_name_or_path(str(mlm_source))
    path = _weights_file(source)
    if path is None:
        return f"no weights file ({', '.join(WEIGHT_FILES)}) found for {source}"
    weights = _read_weights(path)
    names = _head_names(model)
    head = {n: weights[n] for n in names if n in weights}
    if not head:
        return f"{path} holds no MLM head (looked for {names[:3]}...)"
    if missing := sorted(set(names) - set(head)):
        return f"{path} holds an incomplete MLM head, missing {missing}"
    return head


def has_masked_lm(config: PreTrainedConfig) -> bool:
    """Whether transformers has a masked-LM model of this trunk's architecture (BERT and RoBERTa do, Marian not)."""
    return type(config) in MODEL_FOR_MASKED_LM_MAPPING


def build_masked_lm(trunk: PreTrainedModel, mlm_source: str | Path | None) -> tuple[PreTrainedModel, str | None]:
    """An AutoModelForMaskedLM of the trunk's config with the trunk's weights and the source's MLM head.

    Returns the model and None, or the model with a freshly initialized head and the reason the source had none.
    A trunk whose architecture has no masked-LM form (annalog's encoder) is a ModelLoadError.
    """
    if not has_masked_lm(trunk.config):
        raise ModelLoadError(f"a {trunk.config.model_type} trunk has no masked-LM form: masked-LM pre-training and "
                             "loss need a trunk that has one (rxnfp_bert, a BERT or RoBERTa)")  # fmt: skip
    with quiet_transformers():
        model = AutoModelForMaskedLM.from_config(trunk.config)
    missing, _ = model.base_model.load_state_dict(trunk.state_dict(), strict=False)  # a trunk's pooler is unused
    if missing:
        raise ModelLoadError(f"the trunk lacks weights of its own masked-LM model: {missing[:5]}")
    head = _head_state(model, mlm_source)
    if isinstance(head, str):
        return model.to(trunk.device), head
    try:
        model.load_state_dict(head, strict=False)  # copies in place, so a tied decoder keeps the trunk's embeddings
    except RuntimeError as e:
        raise ModelLoadError(f"the MLM head of {mlm_source} does not fit this trunk: {str(e)[:300]}") from e
    return model.to(trunk.device), None


def _molecule_seed(seed: int, smiles: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{smiles}".encode()).digest()[:8], "little")


def _masked_examples(
    tokenizer: PreTrainedTokenizerBase, smiles: list[str], seed: int, mask_fraction: float, max_length: int
) -> list[dict[str, torch.Tensor]]:
    """Each molecule masked alone (80% [MASK], 10% random token, 10% kept) by a generator seeded from (seed, SMILES):
    a molecule is masked the same way in every set it is in, however the set is ordered, trimmed or batched."""
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=mask_fraction)
    encoded = tokenizer(smiles, truncation=True, max_length=max_length, return_special_tokens_mask=True)
    examples = []
    for smi, ids, special in zip(smiles, encoded["input_ids"], encoded["special_tokens_mask"]):
        # Our own generator: the collator's `seed=` refuses to run outside the main process (joblib sweep workers).
        collator.generator = torch.Generator().manual_seed(_molecule_seed(seed, smi))
        examples.append(collator([{"input_ids": ids, "special_tokens_mask": special}]))
    return examples


def masked_lm_loss(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    smiles: list[str],
    seed: int = 0,
    mask_fraction: float = MASK_FRACTION,
    max_length: int | None = None,
) -> float:
    """Mean cross-entropy over every masked token of ``smiles`` (fixed, seeded masking), eval mode, fp32, no grad."""
    return _loss_of(model, tokenizer, _examples(model, tokenizer, smiles, seed, mask_fraction, max_length))


def _examples(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    smiles: list[str],
    seed: int,
    mask_fraction: float,
    max_length: int | None,
) -> list[dict[str, torch.Tensor]]:
    """The masked examples, shortest first (stable: batches of similar length carry less padding)."""
    if not smiles:
        raise ValueError("masked_lm_loss needs at least one SMILES")
    length = min(max_length or model.config.max_position_embeddings, model.config.max_position_embeddings)
    examples = _masked_examples(tokenizer, smiles, seed, mask_fraction, length)
    examples.sort(key=lambda e: e["input_ids"].shape[1])
    return examples


def _loss_of(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, examples: list[dict[str, torch.Tensor]]
) -> float:
    was_training = model.training
    model.eval()
    total, count = torch.zeros((), dtype=torch.float64), 0
    with torch.no_grad():
        for start in range(0, len(examples), BATCH_SIZE):
            chunk = examples[start : start + BATCH_SIZE]
            ids = _pad([e["input_ids"][0] for e in chunk], tokenizer.pad_token_id)
            # from the lengths, not from ids == pad: a random replacement may draw the pad token
            attention = _pad([torch.ones_like(e["input_ids"][0]) for e in chunk], 0)
            labels = _pad([e["labels"][0] for e in chunk], -100)
            logits = model(input_ids=ids.to(model.device), attention_mask=attention.to(model.device)).logits
            total += _summed_cross_entropy(logits, labels).double().cpu()
            count += int((labels != -100).sum())
    model.train(was_training)
    if count == 0:
        raise ValueError(f"no token was masked in {len(examples)} SMILES (raise the mask fraction)")
    return float(total / count)


def _summed_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy summed over the masked tokens (labels != -100), in fp32 whatever the autocast."""
    flat = logits.float().view(-1, logits.shape[-1])
    return nn.functional.cross_entropy(flat, labels.view(-1).to(flat.device), ignore_index=-100, reduction="sum")


def _pad(rows: list[torch.Tensor], value: int) -> torch.Tensor:
    return nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=value)


def mlm_loss(
    trunk: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    smiles: list[str],
    mlm_source: str | Path | None,
    seed: int = 0,
    mask_fraction: float = MASK_FRACTION,
    max_length: int | None = None,
    cache_dir: str | Path | None = None,
) -> float | None:
    """The masked-LM loss of ``trunk`` with ``mlm_source``'s MLM head on ``smiles``; None (logged) without a head.

    A measurement: torch's global RNG is left as it was (building the MLM model draws random init weights), so a
    training run that measures before and after trains exactly as one that does not. With ``cache_dir`` the loss
    is kept there under a digest of everything it depends on (the masked-LM model's weights, the masked inputs
    and labels, the device type): a trunk measured before (another seed, a frozen trunk after training) is not
    run again, and any changed weight or input is a new entry.
    """
    if not has_masked_lm(trunk.config):
        log.info("mlm loss not measured: a %s trunk has no masked-LM form", trunk.config.model_type)
        return None
    with torch.random.fork_rng(devices=range(torch.cuda.device_count())):
        model, reason = build_masked_lm(trunk, mlm_source)
    if reason:
        log.info("mlm loss not measured: %s", reason)
        return None
    examples = _examples(model, tokenizer, smiles, seed, mask_fraction, max_length)
    if cache_dir is None:
        return _loss_of(model, tokenizer, examples)
    path = Path(cache_dir) / f"{_loss_key(model, examples)}.json"
    try:
        cached = json.loads(path.read_text())["mlm_loss"]
        log.info("mlm loss of these weights on these %d molecules read from %s", len(examples), path)
        return float(cached)
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.warning("mlm loss cache entry %s is unreadable (%s): measuring again", path, type(e).__name__)
    loss = _loss_of(model, tokenizer, examples)
    write_json(path, {"mlm_loss": loss, "molecules": len(examples)})  # atomic: a reader never sees half of it
    return loss


def _loss_key(model: PreTrainedModel, examples: list[dict[str, torch.Tensor]]) -> str:
    h = hashlib.sha256()
    hash_weights(h, model)
    h.update(model.device.type.encode())
    for e in examples:
        for name in ("input_ids", "labels"):
            h.update(e[name].numpy().tobytes() + b"|")
    return h.hexdigest()[:24]


def _source_config(source: str) -> PreTrainedConfig:
    """The trunk config of a model dir / hub id (a binder classifier's is its ``trunk``), from local files only."""
    config = AutoConfig.from_pretrained(source, local_files_only=True)
    return AutoConfig.for_model(**config.trunk) if isinstance(config, BinderConfig) else config


def save_mlm_head(mlm_source: str | Path | None, model_dir: str | Path) -> bool:
    """Write ``model_dir/mlm_head.safetensors`` (the source's MLM head, without tied weights); False when none."""
    if mlm_source is None:
        log.info("no MLM head saved: the model is initialized from a config")
        return False
    source = resolve_name_or_path(str(mlm_source))
    out = Path(model_dir) / MLM_HEAD_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    if Path(source, MLM_HEAD_FILE).is_file():  # a run's model/ dir: its head is already in this form
        shutil.copyfile(Path(source, MLM_HEAD_FILE), out)
        return True
    try:
        config = _source_config(source)
    except (OSError, ValueError) as e:
        log.info("no MLM head saved: no config for %s (%s)", source, str(e).splitlines()[0][:200])
        return False
    with quiet_transformers():
        model = AutoModelForMaskedLM.from_config(config)
    head = _head_state(model, source)
    if isinstance(head, str):
        log.info("no MLM head saved: %s", head)
        return False
    save_file({k: v.contiguous() for k, v in head.items()}, str(out), metadata={"model_type": config.model_type})
    return True


def mlm_train_loss(
    outputs: MaskedLMOutput, labels: torch.Tensor, num_items_in_batch: torch.Tensor | int | None = None
) -> torch.Tensor:
    """The Trainer's ``compute_loss_func``: masked-token cross-entropy summed, over the masked tokens of the whole
    accumulated batch. BERT's own loss is a per-micro-batch mean, which the Trainer (seeing ``**kwargs`` in its
    forward) would take as already scaled for gradient accumulation: too large by the accumulation factor."""
    n = num_items_in_batch if num_items_in_batch is not None else (labels != -100).sum()
    summed = _summed_cross_entropy(outputs.logits, labels)
    return summed / torch.as_tensor(n, device=summed.device).clamp(min=1)
