"""The offline GPU check, as ``<bundle>/check.sh`` runs it: ``python -m delbind.gpucheck.check --bundle B --out O``.

Short training runs through the real train path (``tasks.train.run`` on the bundle's config, trunk and prepared
data) for finetune, lora and frozen, at every precision the device has (fp32 and bf16 / fp16 on a GPU, fp32 and
bf16 autocast on a CPU), with activation checkpointing off and on; then predict's scorer: its rate at the device's
default batch size, and how far the low-precision scores of one fine-tuned model are from its fp32 scores on the same
molecules. Writes ``check.json`` and ``check.md`` after every row (a killed check keeps what it measured).

A row fails when its run raised, its training loss did not fall (mean of the last quarter of the logged steps not
below the first quarter's), a test metric is not finite, or fp16's grad scaler skipped more than 16 steps (its scale
starts at 2**16: sixteen halvings reach 1, so more means a gradient that overflows at any scale). Exit 1 on a failure.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

MODES = ("finetune", "lora", "frozen")
MAX_SKIPPED = 16
PRECISIONS = {"cuda-bf16": ("fp32", "bf16", "fp16"), "cuda-fp16": ("fp32", "fp16"), "cpu": ("fp32", "bf16")}


def run_overrides(bundle: Path, info: dict[str, Any], run_dir: Path, mode: str, precision: str, ckpt: bool,
                  steps: int) -> list[str]:  # fmt: skip
    """One row's run: the bundle's trunk and prepared data, ``steps`` optimizer steps, one evaluation at the end."""
    source = json.loads((bundle / "data" / "stats.json").read_text())["source"]
    overrides = [
        f"model={info['model']}", f"model.name_or_path={bundle / 'trunk'}",
        f"data={source}", f"data.prepared={bundle / 'data'}",
        f"mode={mode}", f"precision={precision}", f"mode.activation_checkpointing={str(ckpt).lower()}",
        f"trainer.max_steps={steps}", "trainer.eval_strategy=steps", f"trainer.eval_steps={steps}",
        "trainer.save_strategy=steps", f"trainer.save_steps={steps}", "early_stopping.patience=null",
        "eval.n_bootstrap=100", "eval.forgetting.n_molecules=0", "logger=none", "seed=0",
        f"paths.output_dir={run_dir}", f"paths.outputs_root={run_dir.parent}",
    ]  # fmt: skip
    if info.get("min_per_class") is not None:
        overrides.append(f"eval.min_per_class={info['min_per_class']}")
    return overrides


def loss_trend(run_dir: Path) -> tuple[float, float]:
    """Mean training loss over the first and the last quarter of the logged steps."""
    from delbind.rundirs import log_history

    losses = [h["loss"] for h in log_history(run_dir) if "loss" in h]
    quarter = max(1, len(losses) // 4)
    return float(np.mean(losses[:quarter])), float(np.mean(losses[-quarter:]))


def row_problems(metrics: dict[str, Any], loss_first: float, loss_last: float, checkpointing: bool) -> list[str]:
    """Why a finished run fails the check: [] when it passes."""
    problems = []
    if not (math.isfinite(loss_last) and loss_last < loss_first):
        problems.append(f"loss did not fall ({loss_first:.3f} -> {loss_last:.3f})")
    if not all(math.isfinite(metrics[k]) for k in ("test_easy_auroc", "test_hard_auroc", "test_hard_auprc")):
        problems.append("a test metric is not finite")
    if metrics["optimizer_steps_skipped"] > MAX_SKIPPED:
        problems.append(f"fp16 skipped {metrics['optimizer_steps_skipped']} steps (> {MAX_SKIPPED})")
    if bool(metrics.get("activation_checkpointing")) != checkpointing:
        problems.append(f"activation checkpointing asked {'on' if checkpointing else 'off'}, ran otherwise")
    return problems


def train_row(bundle: Path, info: dict[str, Any], out: Path, mode: str, precision: str, ckpt: bool,
              steps: int) -> dict[str, Any]:  # fmt: skip
    """One short training run and what it shows; a run that raises is a failed row with the error's first line."""
    from hydra import compose, initialize_config_dir

    from delbind.tasks import train

    row: dict[str, Any] = {"mode": mode, "precision": precision, "checkpointing": ckpt}
    if mode == "frozen" and ckpt:
        return row | {"status": "n/a", "note": "a frozen trunk is embedded once (cached): nothing trains through it"}
    run_dir = out / "runs" / f"{mode}-{precision}-ckpt{'on' if ckpt else 'off'}"
    start = time.perf_counter()
    try:
        with initialize_config_dir(config_dir=str(bundle / "conf"), version_base="1.3"):
            cfg = compose("train", overrides=run_overrides(bundle, info, run_dir, mode, precision, ckpt, steps))
        metrics = train.run(cfg)
        first, last = loss_trend(run_dir)
    except Exception as e:  # the check reports every row; one failure must not hide the others
        return row | {"status": "failed", "note": f"{type(e).__name__}: {str(e).splitlines()[0][:300]}",
                      "wall_s": time.perf_counter() - start}  # fmt: skip
    problems = row_problems(metrics, first, last, ckpt)
    return row | {
        "status": "failed" if problems else "ok", "note": "; ".join(problems),
        "checkpointing_on": metrics.get("activation_checkpointing"), "steps": metrics.get("global_step"),
        "samples_per_s": metrics["train_samples_per_s"], "peak_memory_mb": metrics["peak_memory_mb"],
        "peak_memory_kind": metrics["peak_memory_kind"], "optimizer_steps_skipped": metrics["optimizer_steps_skipped"],
        "loss_first": first, "loss_last": last, "test_hard_auroc": metrics["test_hard_auroc"],
        "wall_s": time.perf_counter() - start, "run_dir": str(run_dir),
    }  # fmt: skip


def scoring(bundle: Path, rows: list[dict[str, Any]], kind: str, n_molecules: int) -> dict[str, Any]:
    """predict's scorer on the fine-tuned fp32 model: its rate at the device's precision and default batch, and its
    low-precision scores (bf16; fp16 on an fp16-only GPU) against fp32 on the test molecules."""
    from scipy.stats import spearmanr

    from delbind import distributed
    from delbind.scoring.scorers import load_scorer
    from delbind.training import resolve_precision

    source = next((r for r in rows if r["mode"] == "finetune" and r["precision"] == "fp32" and r["status"] == "ok"
                   and not r["checkpointing"]), None)  # fmt: skip
    if source is None:
        return {"status": "failed", "note": "no fine-tuned fp32 model to score with (its row failed)"}
    device, low = distributed.device(), "fp16" if kind == "cuda-fp16" else "bf16"
    smiles = pd.read_parquet(bundle / "data" / "test.parquet")["smiles"].tolist()
    fp32 = load_scorer(source["run_dir"], "fp32", device).score(smiles)
    lowp = load_scorer(source["run_dir"], low, device).score(smiles)
    auto = resolve_precision("auto", kind)
    scorer = load_scorer(source["run_dir"], auto, device)
    library = (smiles * (n_molecules // len(smiles) + 1))[:n_molecules]
    scorer.score(library[:256])  # warm-up: kernels, allocator
    start = time.perf_counter()
    scores = scorer.score(library)
    seconds = time.perf_counter() - start
    diff = np.abs(lowp - fp32)
    rho = float(spearmanr(lowp, fp32).statistic)
    ok = bool(np.isfinite(scores).all() and np.isfinite(lowp).all() and rho > 0.99)
    return {
        "status": "ok" if ok else "failed", "note": "" if ok else f"{low} vs fp32: Spearman {rho:.4f} (<= 0.99)",
        "precision": auto, "molecules": n_molecules, "mol_per_s": n_molecules / seconds, "compared": low,
        "n_compared": len(smiles), "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
        "spearman": rho, **{f"scorer_{k}": v for k, v in scorer.facts.items()},
    }  # fmt: skip


def device_facts(kind: str) -> dict[str, Any]:
    import torch
    import transformers

    from delbind.provenance import machine

    facts = {"kind": kind, "machine": machine(), "torch": torch.__version__, "transformers": transformers.__version__}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        facts |= {"gpu": props.name, "gpu_memory_gib": props.total_memory / 2**30, "cuda": torch.version.cuda,
                  "capability": f"{props.major}.{props.minor}"}  # fmt: skip
    return facts


def _cell(value: Any, fmt: str) -> str:
    return "" if value is None else format(value, fmt)


def table(result: dict[str, Any]) -> str:
    """check.md: the device, one line per run, the scorer's figures."""
    device = result["device"]
    where = device.get("gpu") or device["machine"]
    lines = [
        f"# delbind GPU check: {where}",
        "",
        f"{device['kind']}, torch {device['torch']}, transformers {device['transformers']}; bundle "
        f"{result['bundle']['commit']} (trunk {result['bundle']['model']}), {result['steps']} steps a run; "
        f"{'all rows pass' if result['ok'] else 'SOME ROWS FAILED'}.",
        "",
        "| mode | precision | act. ckpt | samples/s | peak MB | loss first -> last | skips | hard AUROC | status |",
        "|---|---|---|---:|---:|---|---:|---:|---|",
    ]
    for r in result["rows"]:
        trend = f"{r['loss_first']:.3f} -> {r['loss_last']:.3f}" if "loss_first" in r else ""
        status = r["status"] + (f": {r['note']}" if r.get("note") else "")
        lines.append(
            f"| {r['mode']} | {r['precision']} | {'on' if r['checkpointing'] else 'off'} | "
            f"{_cell(r.get('samples_per_s'), '.0f')} | {_cell(r.get('peak_memory_mb'), '.0f')} | {trend} | "
            f"{_cell(r.get('optimizer_steps_skipped'), 'd')} | {_cell(r.get('test_hard_auroc'), '.3f')} | {status} |"
        )
    s = result.get("scoring")
    if s and s.get("status") == "ok":
        lines += ["", f"Scoring ({s['precision']}, default batch): {s['mol_per_s']:.0f} mol/s over {s['molecules']} "
                  f"molecules. {s['compared']} vs fp32 on {s['n_compared']} test molecules: max |dP| "
                  f"{s['max_abs_diff']:.1e}, mean {s['mean_abs_diff']:.1e}, Spearman {s['spearman']:.4f}."]  # fmt: skip
    elif s:
        lines += ["", f"Scoring: {s['status']}: {s['note']}"]
    if any(r.get("peak_memory_kind") == "cpu_peak_rss" for r in result["rows"]):
        lines += ["", "On a CPU peak MB is the process's peak RSS, not a GPU's allocation."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, required=True, help="the bundle dir (check.sh passes its own)")
    parser.add_argument("--out", type=Path, required=True, help="where check.json, check.md and the runs go")
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps a training run (default: 60)")
    parser.add_argument("--score-molecules", type=int, default=None,
                        help="molecules the scoring rate is timed on (20000 on a GPU, 2000 on a CPU)")  # fmt: skip
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=r"(?s).*delbind_optuna_sweeper")  # its plugin needs optuna: not here
    from delbind.training.arguments import device_kind

    kind, start = device_kind(), time.perf_counter()
    info = json.loads((args.bundle / "bundle.json").read_text())
    n_score = args.score_molecules or (2000 if kind == "cpu" else 20000)
    result: dict[str, Any] = {"bundle": info, "device": device_facts(kind), "steps": args.steps, "rows": []}
    for mode in MODES:
        for precision in PRECISIONS[kind]:
            for ckpt in (False, True):
                result["rows"].append(train_row(args.bundle, info, args.out, mode, precision, ckpt, args.steps))
                _write(args.out, result)
    try:
        result["scoring"] = scoring(args.bundle, result["rows"], kind, n_score)
    except Exception as e:  # reported as a failed part, beside the rows already measured
        result["scoring"] = {"status": "failed", "note": f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"}
    _write(args.out, result, time.perf_counter() - start)
    print(table(result))
    return 0 if result["ok"] else 1


def _write(out: Path, result: dict[str, Any], wall_s: float | None = None) -> None:
    from delbind.io import write_json, write_text

    failed = [r for r in result["rows"] if r["status"] == "failed"]
    result["ok"] = not failed and result.get("scoring", {}).get("status", "ok") == "ok"
    result["wall_s"] = wall_s
    write_json(out / "check.json", result)
    write_text(out / "check.md", table(result))


if __name__ == "__main__":
    raise SystemExit(main())
