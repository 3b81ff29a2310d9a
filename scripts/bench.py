"""Cost of the arms, measured side by side in one process on the same data and hardware.

    python scripts/bench.py                           # frozen: cached (cold, then rerun) vs uncached
    python scripts/bench.py --arms finetune_checkpointing finetune_no_checkpointing -- model=tiny

Each arm is a full training run (`delbind.tasks.train.run`: data build, model load, training with per-epoch evaluation,
test scoring, run dir) with logging off and a cold embedding cache. Printed per arm: the whole run,
its training phase (for the cached arm: embedding every molecule once + training the head), and the
trunk's work: molecules and padded tokens through its forward pass. Where the trunk's compute
dominates (a CPU), the frozen speedup cannot exceed the ratio of trunk tokens.
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

from hydra import compose, initialize_config_dir  # noqa: E402
from torch.nn.modules.module import register_module_forward_hook  # noqa: E402
from transformers import PreTrainedModel  # noqa: E402

from delbind.models import BinderClassifier  # noqa: E402
from delbind.tasks import train  # noqa: E402

ARMS = {
    "frozen_cached": ["mode=frozen", "mode.cache_embeddings=true"],
    # the same arm again: a rerun (another seed's head, a head sweep) finds the embeddings cached
    "frozen_cached_rerun": ["mode=frozen", "mode.cache_embeddings=true"],
    "frozen_uncached": ["mode=frozen", "mode.cache_embeddings=false"],
    "finetune": ["mode=finetune"],  # activation checkpointing auto: on with CUDA, off on CPU
    "finetune_checkpointing": ["mode=finetune", "mode.activation_checkpointing=true"],
    "finetune_no_checkpointing": ["mode=finetune", "mode.activation_checkpointing=false"],
}
COMMON = ["logger=none", "trainer.num_train_epochs=5", "early_stopping.patience=null"]


def count_trunk_work() -> dict[str, int]:
    """Count every trunk forward pass of this process (each arm has its own): molecules and padded tokens.

    A global forward hook (torch's own API): the trunk is the one pretrained model that is not the classifier.
    """
    counts = {"trunk_molecules": 0, "trunk_tokens": 0}

    def hook(module: Any, args: Any, kwargs: Any, output: Any) -> None:
        if isinstance(module, PreTrainedModel) and not isinstance(module, BinderClassifier):
            batch, length = output.last_hidden_state.shape[:2]
            counts["trunk_molecules"] += batch
            counts["trunk_tokens"] += batch * length

    register_module_forward_hook(hook, with_kwargs=True)
    return counts


def run_arm(arm: str, extra: list[str], out_root: Path) -> dict[str, float]:
    """One arm, timed inside a fresh process so its peak memory is its own."""
    overrides = [*COMMON, *ARMS[arm], *extra, f"paths.output_dir={out_root / arm}", f"paths.outputs_root={out_root}"]
    if arm.startswith("frozen"):
        overrides.append(f"paths.embedding_cache={out_root / 'cache'}")  # starts cold: the embedding cost is counted
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    counts = count_trunk_work()
    start = time.perf_counter()
    metrics = train.run(cfg)
    keep = ("train_runtime_s", "test_hard_auroc", "peak_memory_mb", "embedding_cache_hit")
    return {"s": time.perf_counter() - start, **{k: metrics[k] for k in keep if k in metrics}, **counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--arms", nargs="+", default=["frozen_cached", "frozen_cached_rerun", "frozen_uncached"], choices=sorted(ARMS)
    )
    parser.add_argument("--out", type=Path, default=ROOT / "outputs", help="a new bench-* dir is made here")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides applied to every arm (after --)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    out_root = Path(tempfile.mkdtemp(prefix="bench-", dir=args.out))
    results: dict[str, float | bool] = {}
    for arm in args.arms:
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            r = pool.submit(run_arm, arm, args.overrides, out_root).result()
        results.update({f"{arm}_{k}": v for k, v in r.items()})
        hit = {True: " (cache hit)", False: " (cache miss)"}.get(r.get("embedding_cache_hit"), "")
        print(f"{arm + hit:>32}: run {r['s']:7.1f} s | training phase {r['train_runtime_s']:7.1f} s "
              f"| peak {r['peak_memory_mb']:6.0f} MB | test_hard AUROC {r['test_hard_auroc']:.3f} "
              f"| trunk: {r['trunk_molecules']:,} molecules, {r['trunk_tokens']:,} tokens")  # fmt: skip
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
    print(f"run dirs: {out_root}")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in results.items()}))


if __name__ == "__main__":
    main()
