"""The classical arms: features (ECFP4, or the frozen trunk's cached embeddings) + a scikit-learn-compatible
estimator built from its config (``_target_``). Same data, splits and metrics as the transformer arms."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
import joblib
import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from delbind import artifacts
from delbind.arms.base import ARM_FAMILIES, VAL_SETS, ArmInputs, ArmResult
from delbind.data.chem import ecfp4_matrix
from delbind.evaluation import binary_metrics
from delbind.io import write_json
from delbind.models.embeddings import cached_embeddings
from delbind.models.loading import load_tokenizer_and_model, max_length
from delbind.models.policies import count_parameters
from delbind.models.tokenizers import coverage, tokenize
from delbind.registry import Registry

# features(inputs) -> (matrix over every row of inputs.df, facts incl. the model name and featurize_s)
Featurizer = Callable[[ArmInputs], tuple[np.ndarray, dict[str, Any]]]
FEATURES: Registry[Featurizer] = Registry("baseline feature set")


@FEATURES.register("ecfp4")
def ecfp4_features(inputs: ArmInputs) -> tuple[np.ndarray, dict[str, Any]]:
    start = time.perf_counter()
    features = ecfp4_matrix(inputs.df["smiles"].tolist())
    return features, {"model_name": "ecfp4", "featurize_s": time.perf_counter() - start}


@FEATURES.register("embeddings")
def embedding_features(inputs: ArmInputs) -> tuple[np.ndarray, dict[str, Any]]:
    """The frozen trunk's pooled embeddings (the `model` group), from the shared embedding cache."""
    cfg = inputs.cfg
    tokenizer, model = load_tokenizer_and_model(cfg.model)
    length = max_length(cfg.model, model)
    tokens = tokenize(inputs.df, tokenizer, length)
    features, info = cached_embeddings(model, tokens, tokenizer, Path(cfg.paths.embedding_cache), inputs.precision)
    # featurize_s is the computing cost, also when the vectors were read from the cache
    return features, {**info, "model_name": cfg.model.name, "pooling": cfg.model.pooling,
                      "total_params": count_parameters(model)[1], "featurize_s": info["embedding_s"],
                      **coverage(inputs.df, tokenizer, length)}  # fmt: skip


@FEATURES.register("ecfp4_embeddings")
def ecfp4_embedding_features(inputs: ArmInputs) -> tuple[np.ndarray, dict[str, Any]]:
    """ECFP4's 2,048 bits beside the frozen trunk's pooled embedding (issue 28: the fingerprint's information next
    to the learned one), columns [ecfp4 | embedding], for the same estimators."""
    bits, bit_facts = ecfp4_features(inputs)
    vectors, facts = embedding_features(inputs)
    facts["model_name"] = f"ecfp4+{facts['model_name']}"
    facts["featurize_s"] += bit_facts["featurize_s"]
    return np.hstack([bits, vectors]).astype(np.float32), facts


TRUNK_FEATURES = ("embeddings", "ecfp4_embeddings")  # feature sets that need the trunk again to score new molecules


def fit_and_score(
    estimator: Any, features: np.ndarray, df: pd.DataFrame, frames: dict[str, pd.DataFrame]
) -> tuple[dict[str, np.ndarray], float]:
    """Fit on the train split; P(binder) for every eval set; the fit's wall time in seconds."""
    train = (df["split"] == "train").to_numpy()
    start = time.perf_counter()
    estimator.fit(features[train], df.loc[train, "label"].to_numpy())
    fit_s = time.perf_counter() - start
    scores = {name: estimator.predict_proba(features[frame.index])[:, 1] for name, frame in frames.items()}
    return scores, fit_s


def n_fitted_parameters(estimator: Any) -> int | None:
    """Coefficients of a linear model, node count of tree ensembles (their 'size'); None if unknown."""
    final = estimator[-1] if hasattr(estimator, "steps") else estimator
    if hasattr(final, "coef_"):
        return int(final.coef_.size + final.intercept_.size)
    if hasattr(final, "estimators_"):
        return int(sum(t.tree_.node_count for t in final.estimators_))
    if hasattr(final, "get_booster"):
        return int(len(final.get_booster().trees_to_dataframe()))
    return None


def make_estimator(baseline_cfg: DictConfig) -> Any:
    """The configured estimator: ``baseline.estimator`` is a Hydra ``_target_`` spec."""
    return hydra.utils.instantiate(baseline_cfg.estimator, _convert_="all")


def save_estimator(model_dir: Path, estimator: Any, cfg: DictConfig) -> None:
    """``estimator.joblib`` and ``baseline.json``: its features (and the trunk behind embedding features), so
    scripts/predict.py can score new molecules from ``model/`` alone."""
    spec: dict[str, Any] = {"arm": cfg.arm, "features": cfg.baseline.features}
    if cfg.baseline.features in TRUNK_FEATURES:
        spec["model"] = OmegaConf.to_container(cfg.model, resolve=True)
    staged = artifacts.staging(model_dir)
    joblib.dump(estimator, staged / "estimator.joblib")
    write_json(staged / "baseline.json", spec)
    artifacts.publish(model_dir)  # both files, with their manifest, appear as model/ in one rename


@ARM_FAMILIES.register("baseline")
def run_baseline(inputs: ArmInputs) -> ArmResult:
    cfg, df, frames = inputs.cfg, inputs.df, inputs.frames
    features, facts = FEATURES.get(cfg.baseline.features)(inputs)
    model_name = facts.pop("model_name")
    estimator = make_estimator(cfg.baseline)
    scores, fit_s = fit_and_score(estimator, features, df, frames)
    train_s = facts["featurize_s"] + fit_s
    save_estimator(inputs.run_dir / "model", estimator, cfg)
    for name in VAL_SETS:
        facts.update({f"{name}_{k}": v for k, v in binary_metrics(frames[name]["label"], scores[name]).items()})
    trainable = n_fitted_parameters(estimator)
    facts.update(
        {
            "fit_s": fit_s,
            "train_runtime_s": train_s,
            "train_samples_per_s": len(inputs.train_rows) / train_s,
            "trainable_params": trainable,
            "total_params": facts.get("total_params", 0) + (trainable or 0),
        }
    )
    return ArmResult(model_name, scores, facts)
