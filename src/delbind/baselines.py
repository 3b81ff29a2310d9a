"""Classical arms on the same data, splits and metrics: ECFP4 + random forest / XGBoost, embeddings + logreg."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf
from rdkit import DataStructs
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from delbind.data import ecfp4


def ecfp4_matrix(smiles: list[str]) -> np.ndarray:
    """ECFP4 (Morgan radius 2, 2048 bits) as a uint8 matrix, via RDKit."""
    out = np.zeros((len(smiles), 2048), dtype=np.uint8)
    for i, fp in enumerate(ecfp4(smiles)):
        DataStructs.ConvertToNumpyArray(fp, out[i])
    return out


def make_estimator(baseline_cfg: DictConfig, seed: int) -> Any:
    """The configured scikit-learn-compatible classifier."""
    params = OmegaConf.to_container(baseline_cfg.params, resolve=True)
    if baseline_cfg.estimator == "logistic_regression":
        return make_pipeline(StandardScaler(), LogisticRegression(random_state=seed, **params))
    if baseline_cfg.estimator == "random_forest":
        return RandomForestClassifier(random_state=seed, **params)
    if baseline_cfg.estimator == "xgboost":
        try:
            from xgboost import XGBClassifier
        except ImportError as e:
            raise ImportError("baseline=ecfp_xgb needs xgboost: pip install xgboost-cpu (or xgboost)") from e
        return XGBClassifier(random_state=seed, **params)
    raise ValueError(f"unknown baseline estimator {baseline_cfg.estimator!r}")


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
