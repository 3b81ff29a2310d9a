"""Two training jobs side by side on one machine, against the same two jobs one at a time.

    python scripts/bench_parallel.py                                  # two finetune folds of 48 steps, rxnfp
    python scripts/bench_parallel.py --arm lp_ft -- trainer.max_steps=-1    # two whole lp_ft folds
    python scripts/bench_parallel.py --cost results/course_gsk3b/comparison.csv --save results/bench_parallel

The same Hydra multirun (`arm=<arm> data.fold=0,1 logger=none threads=auto`) twice, each in a fresh process:
one job at a time (the basic launcher: `threads=auto` gives the job every core), then side by side
(`hydra/launcher=local_parallel`, n_jobs 2: each job gets cores // 2). Run it with nothing else on the machine.
Printed: each way's wall time, its jobs' training time, threads and peak memory, and the throughput ratio.
`--cost` turns a committed comparison's per-fold train times (compare.py's comparison.csv: mean train time x folds
per row) into what the comparison costs one job at a time, and at the measured ratio side by side. `--save`
writes the printed table, with the command, under results/ (rendered into the docs by scripts/results.py).
The last line is one JSON object.
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("DELBIND_ROOT", str(ROOT))

import pandas as pd  # noqa: E402

from delbind.results import save  # noqa: E402
from delbind.rundirs import metrics_files  # noqa: E402

WAYS = {"one at a time": [], "side by side": ["hydra/launcher=local_parallel", "hydra.launcher.n_jobs=2"]}


def sweep(way: str, arm: str, extra: list[str], out: Path) -> dict[str, Any]:
    """One multirun of two folds, timed from outside; its jobs' metrics.json read back."""
    sweep_dir = out / way.replace(" ", "_")
    command = [sys.executable, str(ROOT / "scripts" / "train.py"), "-m", f"arm={arm}", "data.fold=0,1",
               "logger=none", "threads=auto", *WAYS[way], *extra, f"hydra.sweep.dir={sweep_dir}"]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{way}: the sweep failed ({shlex.join(command)}):\n{done.stderr[-3000:]}")
    jobs = [json.loads(f.read_text()) for f in metrics_files([sweep_dir])]
    return {"wall_s": wall, "jobs": [{k: j[k] for k in ("fold", "threads", "train_runtime_s", "peak_memory_mb")}
                                     for j in jobs]}  # fmt: skip


def table(ways: dict[str, dict[str, Any]]) -> str:
    """Markdown: one row per way, then the ratio of the wall times."""
    rows = ["| way | wall (s) | jobs' training (s) | threads per job | peak memory per job (MB) |", "|---" * 5 + "|"]
    for way, r in ways.items():
        training = " + ".join(f"{j['train_runtime_s']:,.1f}" for j in r["jobs"])
        threads = ", ".join(str(j["threads"]) for j in r["jobs"])
        memory = ", ".join(f"{j['peak_memory_mb']:,.0f}" for j in r["jobs"])
        rows.append(f"| {way} | {r['wall_s']:,.1f} | {training} | {threads} | {memory} |")
    return "\n".join(rows) + f"\n\nSide by side: **{ratio(ways):.2f}x** the throughput of one at a time.\n"


def ratio(ways: dict[str, dict[str, Any]]) -> float:
    """Throughput of two jobs side by side over one at a time: the inverse ratio of their wall times."""
    return ways["one at a time"]["wall_s"] / ways["side by side"]["wall_s"]


def comparison_cost(csv: Path, speedup: float) -> str:
    """A comparison's training cost from its committed table: each row's mean train time x its folds."""
    rows = pd.read_csv(csv)
    if "train_runtime_s" not in rows or "n_units" not in rows:
        raise SystemExit(f"{csv}: not a comparison.csv of scripts/compare.py (train_runtime_s, n_units)")
    rows["cost"] = rows["train_runtime_s"] * rows["n_units"]
    lines = ["| row | folds | training (s) |", "|---|---|---|"]
    lines += [f"| {r.arm} | {r.n_units} | {r.cost:,.0f} |" for r in rows.itertuples()]
    total = rows["cost"].sum()
    return ("\n".join(lines) + f"\n\n`{csv}`: {total:,.0f} s of training one job at a time ({total / 3600:.1f} h, "
            f"the train times as recorded, setup not counted); at {speedup:.2f}x side by side, "
            f"{total / speedup:,.0f} s ({total / speedup / 3600:.1f} h).\n")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arm", default="finetune", help="the arm both ways train (default: %(default)s)")
    parser.add_argument("--cost", type=Path, help="a comparison.csv whose cost to state at the measured ratio")
    parser.add_argument("--save", type=Path, help="results dir for the printed table (bench_parallel.md)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for both sweeps (after --; default: "
                        "trainer.max_steps=48)")  # fmt: skip
    args = parser.parse_args()
    extra = args.overrides or ["trainer.max_steps=48"]
    with tempfile.TemporaryDirectory(dir=ROOT / "outputs" if (ROOT / "outputs").is_dir() else None) as tmp:
        ways = {way: sweep(way, args.arm, extra, Path(tmp)) for way in WAYS}
    text = f"Two `{args.arm}` folds ({shlex.join(extra)}), {os.cpu_count()} cores:\n\n{table(ways)}"
    if args.cost:
        text += "\n" + comparison_cost(args.cost, ratio(ways))
    print(text)
    if args.save:
        command = shlex.join(["python", "scripts/bench_parallel.py", *sys.argv[1:]])
        print(f"written: {save(args.save, 'bench_parallel', text, command, ROOT)}")
    print(json.dumps({"arm": args.arm, "speedup": ratio(ways), **{w.replace(" ", "_"): r for w, r in ways.items()}}))


if __name__ == "__main__":
    main()
