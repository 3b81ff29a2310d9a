"""Cost of the arms, measured side by side in one process on the same data and hardware.

    python scripts/bench.py                           # frozen: cached (cold, then rerun) vs uncached
    python scripts/bench.py --arms finetune_checkpointing finetune_no_checkpointing -- model=tiny
    python scripts/bench.py --arms finetune_naive finetune predict_naive predict predict_int8 -- trainer.max_steps=48
    python scripts/bench.py --arms library_100k library_1m -- model=tiny   # predict.py's memory as the file grows
    python scripts/bench.py --arms library_100k library_5m -- model=tiny   # ... to 5M molecules (hours on 2 cores)

Each arm is a full training run (`delbind.tasks.train.run`: data build, model load, training with per-epoch evaluation,
test scoring, run dir) with logging off and a cold embedding cache. Printed per arm: the whole run,
its training phase (for the cached arm: embedding every molecule once + training the head), and the
trunk's work: molecules and padded tokens through its forward pass. Where the trunk's compute
dominates (a CPU), the frozen speedup cannot exceed the ratio of trunk tokens.
`finetune_naive` is the plain recipe people copy: every batch padded to model.max_length, fp32, no length grouping.
The predict arms score the same `--predict-molecules` MoleculeACE molecules with the pretrained trunk and a fresh
head (throughput does not depend on the head): `predict` through scripts/predict.py's task (chunks, canonical
SMILES, length-sorted token-budget batches), `predict_int8` the same with quantize=int8, `predict_naive` in input
order, batches of 32 padded to max_length. `predict_flop_utilization` is the trunk's matmul FLOPs per second while
scoring (torch's FlopCounterMode, fitted to every batch's shape) over a dense fp32 matmul's, measured in the same
process: the machine's limit. The library arms score 100k / 1M / 5M distinct molecules of a KinDEL-sized synthetic
screen (scripts/synthetic_screens.py) with predict.py: their peak RSS ratios show whether memory stays flat as the
file grows. Each file is one parquet row group (the reader's worst case), written with the model dir by a process of
its own, so the scoring process's peak holds nothing of the generation's heap.
The last line is one JSON object.
"""

import argparse
import json
import multiprocessing
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("DELBIND_ROOT", str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402
from transformers import AutoModel, AutoTokenizer, PreTrainedModel  # noqa: E402

from delbind.arms import forgetting  # noqa: E402
from delbind.cli import task_config  # noqa: E402
from delbind.data.corpus import heldout_smiles  # noqa: E402
from delbind.models import BinderClassifier  # noqa: E402
from delbind.models.loading import load_tokenizer_and_model, max_length  # noqa: E402
from delbind.profiling import peak_rss_mb, reset_peak_memory  # noqa: E402
from delbind.tasks import predict, train  # noqa: E402
from delbind.threads import resolve_threads  # noqa: E402

ARMS = {
    "frozen_cached": ["mode=frozen", "mode.cache_embeddings=true"],
    # the same arm again: a rerun (another seed's head, a head sweep) finds the embeddings cached
    "frozen_cached_rerun": ["mode=frozen", "mode.cache_embeddings=true"],
    "frozen_uncached": ["mode=frozen", "mode.cache_embeddings=false"],
    "finetune": ["mode=finetune"],  # activation checkpointing auto: on with CUDA, off on CPU
    "finetune_checkpointing": ["mode=finetune", "mode.activation_checkpointing=true"],
    "finetune_no_checkpointing": ["mode=finetune", "mode.activation_checkpointing=false"],
    "finetune_naive": [
        "mode=finetune",
        "padding=max_length",
        "precision=fp32",
        "trainer.train_sampling_strategy=random",
    ],
}
PREDICT_ARMS = {"predict": [], "predict_int8": ["quantize=int8"], "predict_naive": None}
LIBRARY_ARMS = {"library_100k": 100_000, "library_1m": 1_000_000, "library_5m": 5_000_000}
PREDICT_MOLECULES = int(os.environ.get("DELBIND_BENCH_PREDICT_MOLECULES", "2000"))
COMMON = ["logger=none", "trainer.num_train_epochs=5", "early_stopping.patience=null"]


def count_trunk_work() -> dict[str, int]:
    """Count every trunk forward pass of this process (each arm has its own): molecules, padded tokens, real
    tokens, and sum(batch x length^2) (attention's share of the FLOPs).

    Global forward hooks (torch's own API): the trunk is a pretrained model that is not the classifier; the
    masked-LM model of the forgetting probe runs its own copy of the trunk, and the probe's drift passes run the trunk
    on held-out molecules (``forgetting.PROBING``): neither is the arm's work.
    """
    counts = {"trunk_molecules": 0, "trunk_tokens": 0, "trunk_real_tokens": 0, "trunk_tokens_x_length": 0}
    inside_mlm = [0]

    def is_mlm(module: Any) -> bool:
        return isinstance(module, PreTrainedModel) and type(module).__name__.endswith("ForMaskedLM")

    def before(module: Any, args: Any) -> None:
        inside_mlm[0] += is_mlm(module)

    def hook(module: Any, args: Any, kwargs: Any, output: Any) -> None:
        if is_mlm(module):
            inside_mlm[0] -= 1
        elif (isinstance(module, PreTrainedModel) and not isinstance(module, BinderClassifier) and not inside_mlm[0]
              and not forgetting.PROBING.get()):  # fmt: skip
            batch, length = output.last_hidden_state.shape[:2]
            counts["trunk_molecules"] += batch
            counts["trunk_tokens"] += batch * length
            counts["trunk_tokens_x_length"] += batch * length * length
            mask = kwargs.get("attention_mask")
            counts["trunk_real_tokens"] += int(mask.sum()) if mask is not None else batch * length

    register_module_forward_pre_hook(before)
    register_module_forward_hook(hook, with_kwargs=True)
    return counts


def trunk_flops(trunk: PreTrainedModel, counts: dict[str, int]) -> float:
    """Matmul FLOPs of the counted trunk work: FLOPs(batch, length) = batch x (a x length + b x length^2), with a
    and b fitted from torch's FlopCounterMode on two shapes (exact for a transformer encoder's matmuls)."""
    flops = {}
    for length in (32, 64):
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            trunk(input_ids=torch.ones((1, length), dtype=torch.long), attention_mask=torch.ones((1, length)))
        flops[length] = counter.get_total_flops()
    b = (flops[64] / 64 - flops[32] / 32) / 32
    a = flops[32] / 32 - b * 32
    return a * counts["trunk_tokens"] + b * counts["trunk_tokens_x_length"]


def padded_fraction(counts: dict[str, int]) -> float:
    """The share of the trunk's tokens that were padding; 0 when the trunk never ran (a cache hit)."""
    return 1 - counts["trunk_real_tokens"] / counts["trunk_tokens"] if counts["trunk_tokens"] else 0.0


def matmul_flops_per_s(n: int = 2048, repeats: int = 5) -> float:
    """The machine's dense fp32 matmul rate with this process's threads: the best of ``repeats`` n x n products."""
    x, y = torch.randn(n, n), torch.randn(n, n)
    torch.mm(x, y)  # warm-up
    best = min(_timed(torch.mm, x, y) for _ in range(repeats))
    return 2 * n**3 / best


def _timed(fn: Any, *args: Any) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def run_arm(arm: str, extra: list[str], out_root: Path) -> dict[str, float]:
    """One arm, timed inside a fresh process so its peak memory is its own."""
    if arm in PREDICT_ARMS:
        return run_predict_arm(arm, extra, out_root)
    if arm in LIBRARY_ARMS:
        return run_library_arm(arm, extra, out_root)
    overrides = [*COMMON, *ARMS[arm], *extra, f"paths.output_dir={out_root / arm}", f"paths.outputs_root={out_root}"]
    if arm.startswith("frozen"):
        overrides.append(f"paths.embedding_cache={out_root / 'cache'}")  # starts cold: the embedding cost is counted
    # The forgetting probe's losses start cold for each arm too; a rerun finds its first run's, as a user's would.
    overrides.append(f"paths.mlm_loss_cache={out_root / 'mlm_loss' / arm.removesuffix('_rerun')}")
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    counts = count_trunk_work()
    start = time.perf_counter()
    metrics = train.run(cfg)
    keep = ("train_runtime_s", "train_samples_per_s", "test_hard_auroc", "peak_memory_mb", "embedding_cache_hit")
    return {"s": time.perf_counter() - start, **{k: metrics[k] for k in keep if k in metrics}, **counts,
            "padded_token_fraction": padded_fraction(counts)}  # fmt: skip


def _compose(name: str, overrides: list[str]) -> Any:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(name, overrides=overrides)


def predict_model(extra: list[str], out_root: Path) -> Path:
    """The pretrained trunk of the `model` config with a fresh head, saved once as a run's model/ would be."""
    model_dir = out_root / "predict_model"
    if not (model_dir / "config.json").is_file():
        cfg = _compose("train", [o for o in extra if o.startswith("model")])
        tokenizer, model = load_tokenizer_and_model(cfg.model)
        tokenizer.model_max_length = max_length(cfg.model, model)
        model.save_pretrained(model_dir)
        tokenizer.save_pretrained(model_dir)
    return model_dir


def run_predict_arm(arm: str, extra: list[str], out_root: Path) -> dict[str, float]:
    """Score the same molecules with predict.py's task (``predict``, ``predict_int8``) or the plain loop."""
    model_dir = predict_model(extra, out_root)
    smiles = heldout_smiles(PREDICT_MOLECULES, seed=0)
    source = out_root / "predict_input.csv"
    if not source.is_file():
        pd.DataFrame({"id": range(len(smiles)), "smiles": smiles}).to_csv(source, index=False)
    torch.set_num_threads(resolve_threads("auto"))
    model = AutoModel.from_pretrained(model_dir).eval()
    counts = count_trunk_work()
    if PREDICT_ARMS[arm] is None:
        scores, scoring_s = naive_scores(model, AutoTokenizer.from_pretrained(model_dir), smiles)
    else:
        output = out_root / f"{arm}.parquet"
        argv = [f"model={model_dir}", f"input={source}", f"output={output}", *PREDICT_ARMS[arm]]
        summary = predict.run(task_config(ROOT / "conf" / "predict.yaml", argv, ""))
        scores, scoring_s = pd.read_parquet(output)["score"].to_numpy(), summary["scoring_s"]
    np.save(out_root / f"{arm}_scores.npy", scores)
    counts = dict(counts)  # the scoring's work only: fitting the FLOP formula runs the trunk too
    flops = trunk_flops(model.trunk, counts)
    return {"s": scoring_s, "mol_per_s": len(smiles) / scoring_s, "peak_memory_mb": peak_rss_mb(), **counts,
            "padded_token_fraction": padded_fraction(counts),
            "trunk_gflop": flops / 1e9, "flop_utilization": flops / scoring_s / matmul_flops_per_s()}  # fmt: skip


@torch.no_grad()
def naive_scores(model: Any, tokenizer: Any, smiles: list[str], batch_size: int = 32) -> tuple[np.ndarray, float]:
    """The loop people copy: input order, every batch padded to max_length, fp32."""
    length = tokenizer.model_max_length
    start, scores = time.perf_counter(), []
    for i in range(0, len(smiles), batch_size):
        batch = tokenizer(smiles[i : i + batch_size], padding="max_length", truncation=True, max_length=length,
                          return_tensors="pt", return_token_type_ids=False)  # fmt: skip
        scores.append(torch.sigmoid(model(**batch).logits).numpy())
    return np.concatenate(scores), time.perf_counter() - start


def prepare_library(arm: str, extra: list[str], out_root: Path) -> None:
    """A library arm's input and model, made in a process of its own before the arm's: generating 5M molecules
    peaks near 2 GB, and heap the generation leaves behind would count in the scoring's peak RSS.

    ``synthetic_screen(N, seed=0)``: N distinct molecules (sampled without replacement from KinDEL's 81M
    combinations), written as one row group: pandas' ``to_parquet`` would cut groups at 1M rows, and a reader that
    holds a row group grows with it.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from synthetic_screens import synthetic_screen

    n = LIBRARY_ARMS[arm]
    screen = synthetic_screen(n, seed=0)[["molecule_hash", "smiles"]]
    pq.write_table(pa.Table.from_pandas(screen, preserve_index=False), out_root / f"{arm}.parquet", row_group_size=n)
    predict_model(extra, out_root)


def run_library_arm(arm: str, extra: list[str], out_root: Path) -> dict[str, float]:
    """predict.py on the arm's synthetic screen (``prepare_library``, run before): time and peak RSS."""
    reset_peak_memory()  # the scoring's own peak, not this process's imports
    argv = [f"model={out_root / 'predict_model'}", f"input={out_root / (arm + '.parquet')}",
            f"output={out_root / (arm + '_scores.parquet')}"]  # fmt: skip
    summary = predict.run(task_config(ROOT / "conf" / "predict.yaml", argv, ""))
    return {"s": summary["scoring_s"], "mol_per_s": summary["mol_per_s"], "peak_memory_mb": peak_rss_mb(),
            "rows": summary["rows"]}  # fmt: skip


def describe(arm: str, r: dict[str, Any]) -> str:
    """One line per arm."""
    if "mol_per_s" in r:
        trunk = f" | padded tokens {r['padded_token_fraction']:.0%}" if "trunk_tokens" in r else ""
        rate = f"{r['mol_per_s']:7.0f} mol/s | peak {r['peak_memory_mb']:6.0f} MB"
        return f"{arm:>32}: scoring {r['s']:7.1f} s | {rate}{trunk}"
    hit = {True: " (cache hit)", False: " (cache miss)"}.get(r.get("embedding_cache_hit"), "")
    return (f"{arm + hit:>32}: run {r['s']:7.1f} s | training phase {r['train_runtime_s']:7.1f} s "
            f"| peak {r['peak_memory_mb']:6.0f} MB | test_hard AUROC {r['test_hard_auroc']:.3f} "
            f"| trunk: {r['trunk_molecules']:,} molecules, {r['trunk_tokens']:,} tokens "
            f"({r['padded_token_fraction']:.0%} padding)")  # fmt: skip


def derived(results: dict[str, Any], arms: set[str], out_root: Path) -> dict[str, float]:
    """The ratios between arms measured in this run."""
    out: dict[str, float] = {}
    if {"finetune", "finetune_naive"} <= arms:
        out["finetune_speedup_vs_naive"] = (
            results["finetune_train_samples_per_s"] / results["finetune_naive_train_samples_per_s"]
        )
    if "predict" in arms:
        out["predict_mol_per_s"] = results["predict_mol_per_s"]
        out["predict_flop_utilization"] = results["predict_flop_utilization"]
    scores = {arm: np.load(out_root / f"{arm}_scores.npy") for arm in PREDICT_ARMS if arm in arms}
    for other in ("predict_naive", "predict_int8"):
        if {"predict", other} <= arms:
            ratio = results[f"{other}_s"] / results["predict_s"]
            key = "predict_speedup_vs_naive" if other == "predict_naive" else "int8_speedup_vs_predict"
            out[key] = ratio if other == "predict_naive" else 1 / ratio
            out[f"{other}_max_abs_score_diff"] = float(np.max(np.abs(scores[other].ravel() - scores["predict"])))
    if "library_100k" in arms:
        for arm in sorted(arms & (set(LIBRARY_ARMS) - {"library_100k"})):  # library_1m, library_5m
            out[f"library_peak_rss_ratio_{arm.removeprefix('library_')}_vs_100k"] = (
                results[f"{arm}_peak_memory_mb"] / results["library_100k_peak_memory_mb"]
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--arms", nargs="+", default=["frozen_cached", "frozen_cached_rerun", "frozen_uncached"],
        choices=sorted([*ARMS, *PREDICT_ARMS, *LIBRARY_ARMS]),
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=ROOT / "outputs", help="a new bench-* dir is made here")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides applied to every arm (after --)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    out_root = Path(tempfile.mkdtemp(prefix="bench-", dir=args.out))
    results: dict[str, float | bool] = {}
    for arm in args.arms:
        if arm in LIBRARY_ARMS:
            with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
                pool.submit(prepare_library, arm, args.overrides, out_root).result()
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            r = pool.submit(run_arm, arm, args.overrides, out_root).result()
        results.update({f"{arm}_{k}": v for k, v in r.items()})
        print(describe(arm, r))
    if {"frozen_cached", "frozen_uncached"} <= set(args.arms):
        results["frozen_speedup"] = results["frozen_uncached_s"] / results["frozen_cached_s"]
        results["frozen_train_speedup"] = (
            results["frozen_uncached_train_runtime_s"] / results["frozen_cached_train_runtime_s"]
        )
        results["frozen_trunk_token_ratio"] = (
            results["frozen_uncached_trunk_tokens"] / results["frozen_cached_trunk_tokens"]
        )
    if {"frozen_cached_rerun", "frozen_uncached"} <= set(args.arms):
        results["frozen_rerun_speedup"] = results["frozen_uncached_s"] / results["frozen_cached_rerun_s"]
    if {"finetune_checkpointing", "finetune_no_checkpointing"} <= set(args.arms):
        results["checkpointing_slowdown"] = (
            results["finetune_checkpointing_train_runtime_s"] / results["finetune_no_checkpointing_train_runtime_s"]
        )
        results["checkpointing_memory_ratio"] = (
            results["finetune_checkpointing_peak_memory_mb"] / results["finetune_no_checkpointing_peak_memory_mb"]
        )
    results.update(derived(results, set(args.arms), out_root))
    print(f"run dirs: {out_root}")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in results.items()}))


if __name__ == "__main__":
    main()
