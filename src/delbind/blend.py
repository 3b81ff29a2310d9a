"""Cross-family blends: two arms' runs on the same molecules (a transformer arm and ECFP4 + RF, say) -> one run dir
per fold whose score is a weighted mean of the two arms' val-calibrated ranks.

Each member's score goes through the empirical distribution of its own val scores (that fold's val molecules, each
once): ``F(s)`` = the share of val scores below ``s``, ties counting half. The map is monotone and fit on val only,
so a test score moves nothing but its own row, and two scales that mean different things (a forest's vote share, a
sigmoid) meet on one. The blend is ``w F_a(s_a) + (1 - w) F_b(s_b)``: ``w`` fixed (``weight: 0.5``) or chosen per
fold on val (``weight: val``: of 0, 0.1, ..., 1 the one with the highest val hard AU-PRC, ties to the one nearest
0.5). Averaging ranks rather than raw scores is the usual blend for models whose scores are not calibrated against
each other. A blend is a comparison row: its run dirs hold metrics.json and predictions.parquet, and no model
(predict.py cannot score new molecules with it).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from delbind.arms.base import VAL_SETS
from delbind.comparison.runs import arm_of, read_runs
from delbind.comparison.verdicts import resolve_arm
from delbind.ensemble import FOLD_KEYS, ROWS, SUMMED, aligned_predictions, score_predictions
from delbind.errors import ConfigError, DataError, NoRunsError, RunDirExistsError
from delbind.evaluation import binary_metrics
from delbind.io import atomic_write, write_json
from delbind.rundirs import claim_run_dir

log = logging.getLogger(__name__)

SAME_MOLECULES = ("data", "target", "split", "data_seed", "fold")  # what two runs share to score the same molecules
GRID = np.round(np.linspace(0.0, 1.0, 11), 2)


def val_calibrated(preds: pd.DataFrame) -> np.ndarray:
    """Every row's score as the share of the run's val scores below it (ties count half): fit on val only."""
    val = np.sort(preds.loc[preds["eval_set"].isin(VAL_SETS)].drop_duplicates("smiles")["score"].to_numpy(float))
    if not len(val):
        raise DataError("a blend member has no val predictions (val_easy / val_hard): its scores cannot be ranked")
    score = preds["score"].to_numpy(float)
    return (np.searchsorted(val, score, "left") + np.searchsorted(val, score, "right")) / (2 * len(val))


def choose_weight(a: np.ndarray, b: np.ndarray, preds: pd.DataFrame, weight: float | str) -> float:
    """``weight`` itself, or (``"val"``) the grid weight of ``a`` with the best val hard AU-PRC of the blend."""
    if weight != "val":
        w = float(weight)
        if not 0.0 <= w <= 1.0:
            raise ConfigError(f"weight={weight}: a blend weight is in [0, 1], or 'val' to choose it on val")
        return w
    hard = (preds["eval_set"] == "val_hard").to_numpy()
    labels = preds["label"].to_numpy()[hard]
    scored = [(binary_metrics(labels, w * a[hard] + (1 - w) * b[hard])["auprc"], -abs(w - 0.5), w) for w in GRID]
    return float(max(scored)[2])


def blend_predictions(run_a: str, run_b: str, weight: float | str) -> tuple[pd.DataFrame, float]:
    """The two runs' rows with ``score`` = the weighted mean of their val-calibrated ranks, and the weight used."""
    frames = aligned_predictions([run_a, run_b], "blend members must score the same fold of the same data")
    a, b = (val_calibrated(f) for f in frames)
    w = choose_weight(a, b, frames[0], weight)
    return frames[0][ROWS].assign(score=w * a + (1 - w) * b), w


def pair_runs(runs: pd.DataFrame, arms: list[str]) -> list[tuple[pd.Series, pd.Series]]:
    """(run of the first arm, run of the second) per fold both scored; a fold that only one arm ran is left out."""
    by_arm = []
    for arm in arms:
        rows = runs[runs["arm"] == arm]
        keys = rows[list(SAME_MOLECULES)].astype(str).apply(tuple, axis=1)
        if keys.duplicated().any():
            raise DataError(
                f"{arm} has {int(keys.duplicated().sum()) + 1} runs on one fold: blend one run per fold (make a "
                "seed ensemble of them first: scripts/ensemble.py)"
            )
        by_arm.append(dict(zip(keys, (row for _, row in rows.iterrows()))))
    shared = sorted(set(by_arm[0]) & set(by_arm[1]))
    for key in sorted(set(by_arm[0]) ^ set(by_arm[1])):
        log.warning("not blended: only one arm ran %s", dict(zip(SAME_MOLECULES, key)))
    if not shared:
        raise NoRunsError(f"{arms[0]} and {arms[1]} share no fold of the same data: nothing to blend")
    return [(by_arm[0][k], by_arm[1][k]) for k in shared]


def blend_metrics(a: pd.Series, b: pd.Series, preds: pd.DataFrame, weight: float, rule: str, cfg: Any) -> dict:
    """metrics.json of one blended fold: a comparison row ``blend (A + B, <rule>)``, scored as a run, costs summed."""
    metrics: dict[str, Any] = {
        "arm": "blend",
        "mode": "blend",
        "model": f"{a['arm']} + {b['arm']}",
        "label": rule,
        # which fold of which data, its training size (the corrected t reads it): the members'
        **{
            k: a.get(k) for k in (*SAME_MOLECULES, *FOLD_KEYS, "seed", "n_train") if k != "label" and pd.notna(a.get(k))
        },
        "blend_of": [a["arm"], b["arm"]],
        "blend_members": [a["run_dir"], b["run_dir"]],
        "blend_weight": weight,
    }
    seed = int(a.get("data_seed", a["seed"]))
    metrics |= score_predictions(preds, Path(a["run_dir"]), cfg.eval.n_bootstrap, cfg.eval.confidence, seed)
    for key in SUMMED:
        values = [pd.to_numeric(m.get(key), errors="coerce") for m in (a, b)]
        metrics[key] = None if any(pd.isna(v) for v in values) else float(sum(values))
    metrics["peak_memory_mb"] = max(float(pd.to_numeric(m.get("peak_memory_mb"), errors="coerce") or 0) for m in (a, b))
    return metrics


def write_blends(cfg: Any, out_dir: Path) -> list[Path]:
    """A blend run dir per fold that both of ``cfg.arms`` (two row labels or arm names) scored, below ``cfg.dirs``."""
    runs, _ = read_runs(cfg.dirs, strict=cfg.strict)
    runs = runs[runs["mode"] != "blend"]
    labels = runs[["arm"]].drop_duplicates()
    arms = [resolve_arm(labels, name) for name in cfg.arms] if cfg.arms else list(labels["arm"])
    if len(arms) != 2:
        raise ConfigError(f"a blend takes two arms; found {len(arms)}: name two (--arms A B) of {list(labels['arm'])}")
    rule = "w chosen on val" if cfg.weight == "val" else f"w={float(cfg.weight):g}"
    written = []
    for a, b in pair_runs(runs, arms):
        preds, weight = blend_predictions(a["run_dir"], b["run_dir"], cfg.weight)
        short = (arm_of(row["arm"]) for row in (a, b))  # the arm names; the metrics keep the labels
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"blend-{'-'.join(short)}-d{a.get('data_seed')}-f{a.get('fold')}")
        run_dir = out_dir / name
        try:
            claim_run_dir(run_dir)
        except RunDirExistsError:
            raise RunDirExistsError(f"{run_dir} already holds a blend; give another --out") from None
        with atomic_write(run_dir / "predictions.parquet") as tmp:
            preds.to_parquet(tmp, index=False)
        metrics = blend_metrics(a, b, preds, weight, rule, cfg)
        write_json(run_dir / "metrics.json", metrics)  # last, as a run: a dir with metrics.json is finished
        log.info("%s: w=%.1f, val hard AU-PRC %.3f", run_dir, weight, metrics["val_hard_auprc"])
        written.append(run_dir)
    return written
