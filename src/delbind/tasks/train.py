"""One experiment, start to end: data -> arm -> score -> run dir (``python scripts/train.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig
from transformers import set_seed

from delbind import distributed, tracking
from delbind.arms import ARM_FAMILIES, TEST_SETS, VAL_SETS, ArmInputs, ArmResult
from delbind.data import build_dataset, external_sets, with_external
from delbind.data.corpus import check_trunk_corpus
from delbind.data.dataset import check_eval_sizes, eval_counts
from delbind.data.prepared import write_external
from delbind.evaluation import external_metrics, score_set
from delbind.io import atomic_write, write_json
from delbind.profiling import peak_memory, reset_peak_memory
from delbind.provenance import commit
from delbind.rundirs import claim_run_dir
from delbind.threads import set_threads
from delbind.training import resolve_precision, resolve_resume


def run(cfg: DictConfig) -> dict[str, Any]:
    """Train and evaluate the configured arm; write the run dir; return the metrics (also in metrics.json)."""
    code = commit()  # now: HEAD may move while a run (or a sweep in this process) trains; it runs what it loaded
    run_dir = claim_run_dir(Path(cfg.paths.output_dir))
    threads = set_threads(cfg.threads)
    set_seed(cfg.seed)
    precision = resolve_precision(cfg.precision)
    outputs_root = Path(cfg.paths.outputs_root)  # resume=true never picks a pre-training run's checkpoint
    resume_from = resolve_resume(cfg.resume, outputs_root, run_dir, exclude=(outputs_root / "pretrain",))

    df, data_stats = build_dataset(cfg.data, cfg.data_seed)
    check_trunk_corpus(cfg.model.get("name_or_path"), df, cfg.data.split)  # never saw a val / test group
    external = external_sets(cfg.data, data_stats)  # e.g. KinDEL's held-out Kd sets, scored after training
    df, frames = with_external(df, external, data_stats)
    counts = eval_counts(frames)
    check_eval_sizes(counts, cfg.eval.min_per_class, data_stats.get("folds"))
    if distributed.is_main_process():  # every rank builds the same data; rank 0 alone writes files
        write_json(run_dir / "dataset" / "stats.json", data_stats)
        if external:  # their own columns (KinDEL: kd), in the row order of their rows in predictions.parquet
            write_external(run_dir / "dataset", external)
    window_reset = reset_peak_memory()  # the cost of model, training and scoring; the data build is shared by arms

    with tracking.job(cfg, run_dir) as report_to:
        inputs = ArmInputs(cfg, df, frames, run_dir, precision, report_to, resume_from)
        result = ARM_FAMILIES.get(cfg.arm_family)(inputs)
        metrics = _metrics(cfg, inputs, result, list(external)) | {"commit": code} | _cv(data_stats, cfg) | counts
        metrics |= peak_memory(window_reset) | {"threads": threads}
        predictions = pd.concat(
            [
                frames[n][["smiles", "label", "kind"]].assign(eval_set=n, score=result.scores[n])
                for n in (*VAL_SETS, *TEST_SETS, *external)
            ],
            ignore_index=True,
        )
        if distributed.is_main_process():
            with atomic_write(run_dir / "predictions.parquet") as tmp:
                predictions.to_parquet(tmp, index=False)
            write_json(run_dir / "metrics.json", metrics)  # last: a run dir with metrics.json is a finished run
            tracking.log_results(cfg, run_dir, metrics, predictions)
    return metrics


def _metrics(cfg: DictConfig, inputs: ArmInputs, result: ArmResult, external: list[str]) -> dict[str, Any]:
    """The flat metrics.json: what ran, on what, its test scores with bootstrap CIs, external sets, the arm's facts."""
    frames = inputs.frames
    metrics: dict[str, Any] = {
        "arm": cfg.arm,
        "label": cfg.get("label"),  # the recipe's name in comparisons, when a sweep sets one
        "mode": cfg.arm,  # the design card's name for the arm; `arm` is the one the code and comparison use
        "model": result.model,
        "data": cfg.data.name,
        "target": cfg.data.get("target"),
        "split": cfg.data.split,
        "seed": cfg.seed,
        "data_seed": cfg.data_seed,  # the split's seed (= seed unless set apart for a seed ensemble)
        "precision": inputs.precision,
        "n_train": len(inputs.train_rows),
        **{f"n_{name}": len(frames[name]) for name in (*VAL_SETS, *TEST_SETS)},
    }
    if cfg.ensemble.size != 1:  # one model of a seed ensemble trained in one job: a row of its own in comparisons
        metrics["ensemble_member"] = True
    for name in TEST_SETS:
        labels = frames[name]["label"]
        metrics.update(
            score_set(name, labels, result.scores[name], cfg.eval.n_bootstrap, cfg.eval.confidence, cfg.seed)
        )
    for name in external:
        metrics.update(external_metrics(name, frames[name], result.scores[name]))
    return metrics | result.facts


def _cv(stats: dict[str, Any], cfg: DictConfig) -> dict[str, Any]:
    """Which cross-validation fold this run's test is (``cv``: kfold folds tile the set, replicate splits overlap,
    given = the file's own split), and the eval-size floor it was held to."""
    return {
        "cv": stats.get("cv", "given"),
        "folds": stats.get("folds"),
        "fold": stats.get("fold"),
        "min_per_class": cfg.eval.min_per_class,
    }


def summary_table(metrics: dict[str, Any]) -> str:
    """A short text table of the test metrics with their 95% CIs."""
    lines = [f"{'set':<10} {'AUROC':>22} {'AU-PRC':>22}"]
    for name in TEST_SETS:
        cells = []
        for metric in ("auroc", "auprc"):
            lo, hi = metrics[f"{name}_{metric}_ci95"]
            cells.append(f"{metrics[f'{name}_{metric}']:.3f} [{lo:.3f}, {hi:.3f}]")
        lines.append(f"{name:<10} {cells[0]:>22} {cells[1]:>22}")
    return "\n".join(lines)
