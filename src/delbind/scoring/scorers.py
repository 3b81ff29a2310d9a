"""A trained arm as a function of SMILES: canonical, valid SMILES in, P(binder) out, in the same order.

``load_scorer`` reads what a run left in ``model/``: a transformer arm's ``save_pretrained`` dir (any mode:
LoRA adapters are merged there), or a baseline's ``estimator.joblib`` with ``baseline.json`` (its features); for a
seed ensemble's run dir (``scripts/ensemble.py``), the mean P(binder) of its members' scorers. A transformer run
evaluated with test-time augmentation (``augment.test_n``) scores the same way here: the mean over each molecule's
canonical SMILES and the run's ``test_n`` randomized ones, drawn as the run drew them (``tta_n`` overrides).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf
from scipy.special import expit

from delbind.artifacts import check_finished, manifest_digest, verify
from delbind.errors import ConfigError, ModelLoadError, UnreadableRunError
from delbind.models.embeddings import embed_ids

log = logging.getLogger(__name__)

QUANTIZATIONS = (None, "int8")


@dataclass
class Scorer:
    """``score(smiles)`` -> P(binder) per molecule, in order; ``kind`` and ``facts`` describe it for the summary."""

    kind: str
    score: Callable[[list[str]], np.ndarray]
    facts: dict[str, Any]


def model_dir_of(path: Path | str) -> Path:
    """``<run dir>/model`` for a run dir, the dir itself for a model dir."""
    path = Path(path)
    check_finished(path.parent if path.name == "model" else path)  # a run that stopped before its metrics.json
    model_dir = verify(path / "model" if (path / "model").is_dir() else path)
    if not ((model_dir / "config.json").is_file() or (model_dir / "estimator.joblib").is_file()):
        raise ModelLoadError(
            f"{path} is neither a run dir nor a model dir: no config.json (transformer arms) or estimator.joblib "
            "(baselines) in it or in its model/"
        )
    return model_dir


def ensemble_members(path: Path | str) -> list[str]:
    """The member run dirs of a seed ensemble's run dir; [] for any other dir. A member that is gone is an error."""
    metrics = Path(path) / "metrics.json"
    if not metrics.is_file():
        return []
    recorded = json.loads(metrics.read_text())
    members = recorded.get("ensemble_members") or []
    missing = [m for m in members if not Path(m).is_dir()]
    if missing:
        raise ModelLoadError(f"{path} is a seed ensemble whose member run dirs are gone: {', '.join(missing)}")
    for member, digest in (recorded.get("ensemble_member_models") or {}).items():  # ensembles made since manifests
        if digest is not None and manifest_digest(Path(member) / "model") != digest:
            raise UnreadableRunError(
                f"{path}: member {member} holds another model/ than the one the ensemble was made from; "
                "make the ensemble again (scripts/ensemble.py) or restore the member"
            )
    return members


def load_scorer(
    path: Path | str,
    precision: str,
    device: torch.device,
    max_tokens: int | None = None,
    quantize: str | None = None,
    tta_n: int | None = None,
) -> Scorer:
    """The scorer of a run dir, model dir or ensemble dir, on ``device`` at ``precision`` (see
    ``training.resolve_precision``). ``tta_n``: randomized SMILES per molecule (test-time augmentation; None = as
    the run was evaluated, its metrics.json ``augment_test_n``; 0 = canonical SMILES only)."""
    members = ensemble_members(path)
    if members:
        scorers = [load_scorer(member, precision, device, max_tokens, quantize, tta_n) for member in members]

        def mean_score(smiles: list[str]) -> np.ndarray:
            return np.mean([scorer.score(smiles) for scorer in scorers], axis=0)

        return Scorer("ensemble", mean_score, {**scorers[0].facts, "ensemble_members": members})
    model_dir = model_dir_of(path)
    if (model_dir / "estimator.joblib").is_file():
        if tta_n:
            raise ConfigError(f"tta_n={tta_n}: {path} is a baseline, which scores one SMILES per molecule")
        return _baseline_scorer(model_dir, precision, device, max_tokens)
    scorer = _transformer_scorer(model_dir, precision, device, max_tokens, quantize)
    recorded_n, seed = _recorded_tta(model_dir)
    return _with_tta(scorer, recorded_n if tta_n is None else tta_n, seed)


def _recorded_tta(model_dir: Path) -> tuple[int, int]:
    """(``augment_test_n``, ``seed``) of the run whose ``model/`` this is; (0, 0) for a bare model dir."""
    metrics = model_dir.parent / "metrics.json"
    if model_dir.name != "model" or not metrics.is_file():
        return 0, 0
    recorded = json.loads(metrics.read_text())
    return int(recorded.get("augment_test_n") or 0), int(recorded.get("seed") or 0)


def _with_tta(scorer: Scorer, n: int, seed: int) -> Scorer:
    """``scorer`` averaged over each molecule's canonical SMILES and ``n`` randomized ones (n = 0: ``scorer``)."""
    from delbind.models.augment import tta_mean, tta_views, view_count

    n = view_count("tta_n", n)
    facts = {**scorer.facts, "tta_n": n, "tta_seed": seed if n else None}
    if not n:
        return Scorer(scorer.kind, scorer.score, facts)

    def score(smiles: list[str]) -> np.ndarray:
        view_scores = scorer.score(tta_views(smiles, n, seed)).reshape(len(smiles), n)
        return tta_mean(scorer.score(smiles), view_scores)

    return Scorer(scorer.kind, score, facts)


def _transformer_scorer(
    model_dir: Path, precision: str, device: torch.device, max_tokens: int | None, quantize: str | None
) -> Scorer:
    from transformers import AutoModel, AutoTokenizer

    import delbind.models  # noqa: F401  (registers the classifier with the Auto classes)
    from delbind.models.loading import quiet_transformers
    from delbind.models.tokenizers import fingerprints

    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize={quantize!r}: choose one of {QUANTIZATIONS}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        with quiet_transformers():
            model = AutoModel.from_pretrained(model_dir, local_files_only=True).eval()
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{model_dir} is not a loadable delbind model: {str(e).splitlines()[0][:200]}") from e
    if not hasattr(model, "head_logits"):
        raise ModelLoadError(f"{model_dir} holds a {type(model).__name__}, not a delbind binder classifier")
    max_length = min(tokenizer.model_max_length, model.trunk.config.max_position_embeddings)
    if quantize == "int8":  # dynamic int8 Linear layers: CPU only
        if device.type != "cpu":
            raise ValueError("quantize=int8 is a CPU option; on a GPU use precision=bf16 / fp16")
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    model.to(device)

    @torch.no_grad()
    def score(smiles: list[str]) -> np.ndarray:
        ids = tokenizer(smiles, truncation=True, max_length=max_length)["input_ids"]
        vectors = embed_ids(model, ids, tokenizer.pad_token_id, precision, device, max_tokens, progress=False)
        bits = model.config.fingerprint_bits  # a head that reads ECFP4 gets each molecule's bits
        fingerprint = torch.from_numpy(fingerprints(smiles, bits)).to(device) if bits else None
        logits = model.head_logits(torch.from_numpy(vectors).to(device), fingerprint)
        return expit(logits.float().cpu().numpy().astype(np.float64))

    facts = {"max_length": max_length, "quantize": quantize, "precision": precision, "device": str(device)}
    return Scorer("transformer", score, facts)


def _baseline_scorer(model_dir: Path, precision: str, device: torch.device, max_tokens: int | None) -> Scorer:
    import joblib

    from delbind.data.chem import ecfp4_matrix

    spec_path = model_dir / "baseline.json"
    if not spec_path.is_file():
        raise ModelLoadError(f"{model_dir} has estimator.joblib but no baseline.json (which features it was fit on)")
    spec = json.loads(spec_path.read_text())
    estimator = joblib.load(model_dir / "estimator.joblib")  # unpickles: score only models you trust
    if spec["features"] == "ecfp4":
        featurize: Callable[[list[str]], np.ndarray] = ecfp4_matrix
    elif spec["features"] == "embeddings":
        featurize = _trunk_featurizer(spec["model"], precision, device, max_tokens)
    elif spec["features"] == "ecfp4_embeddings":  # the columns as the arm fit them: [ecfp4 | embedding]
        embed = _trunk_featurizer(spec["model"], precision, device, max_tokens)

        def featurize(smiles: list[str]) -> np.ndarray:
            return np.hstack([ecfp4_matrix(smiles), embed(smiles)]).astype(np.float32)
    else:
        raise ModelLoadError(f"{spec_path}: unknown features {spec['features']!r}")

    def score(smiles: list[str]) -> np.ndarray:
        return estimator.predict_proba(featurize(smiles))[:, 1].astype(np.float64)

    return Scorer("baseline", score, {"features": spec["features"], "precision": precision, "device": str(device)})


def _trunk_featurizer(
    model_cfg: dict[str, Any], precision: str, device: torch.device, max_tokens: int | None
) -> Callable[[list[str]], np.ndarray]:
    """The pooled embeddings the baseline was fit on: the run's trunk (its ``model`` config), loaded again."""
    from delbind.models.loading import load_tokenizer_and_model, max_length

    cfg = OmegaConf.create(model_cfg)
    tokenizer, model = load_tokenizer_and_model(cfg)
    length = max_length(cfg, model)
    model.eval().to(device)

    def featurize(smiles: list[str]) -> np.ndarray:
        ids = tokenizer(smiles, truncation=True, max_length=length)["input_ids"]
        return embed_ids(model, ids, tokenizer.pad_token_id, precision, device, max_tokens, progress=False)

    return featurize
