"""Time parquet -> labelled, split KinDEL dataset on a realistic synthetic 1M-row screen in the KinDEL schema.

`python scripts/bench_data.py [--split disynthon|random] [--depth synthetic|kindel] [--rows N] [--part N] [--dir DIR]`
writes DIR/mapk14_1M.parquet (KinDEL's 377 / 1,127 / 190 building blocks, products a-c-b, a few active blocks and
disynthons, Poisson noise elsewhere, sequenced at the depth profile's reads: synthetic_screens.DEPTHS), then builds
the dataset with default label settings in a fresh process and prints each stage's wall time and the peak RSS after
it, the label counts and each split's counts. ``--part N`` builds on the screen's first N rows (a part of it, rows
being in random order); a build the screen cannot supply prints its one-line error, which names the settings that
would build.
"""

import argparse
import logging
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf
from synthetic_screens import DEPTHS, synthetic_screen

from delbind import results
from delbind.data import build_dataset
from delbind.errors import DataError
from delbind.profiling import peak_rss_mb

ROOT = Path(__file__).resolve().parents[1]
LABEL_COUNTS = ("binders_found", "binder_cut_ties_dropped", "top_low_reads_dropped", "neg_evidence",
                "neg_control_to_target_reads", "neg_median_control_reads", "binder_point_fold_median",
                "neg_depth_fold", "neg_max_fold", "neg_max_fold_rule", "neg_min_control_reads", "neg_pool",
                "neg_no_evidence_dropped", "pool_hard", "pool_easy", "pool_enriched_block_dropped",
                "enriched_blocks_a", "enriched_blocks_b", "enriched_blocks_c", "unplaced_rows",
                "disynthon_pure_rows", "disynthon_mixed_dropped", "disynthon_mixed_to_train",
                "split_kept_fraction_binders", "split_kept_fraction_labelled_rows",
                "duplicate_smiles_dropped")  # fmt: skip


class Stages(logging.Handler):
    """Collects the 'stage ...' records that delbind.profiling.stage logs during the KinDEL build."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("stage "):
            self.lines.append(record.getMessage().removeprefix("stage "))

    def stages(self) -> list[tuple[str, str, str]]:
        """(stage, seconds, peak RSS MB) per 'stage NAME: S s, peak RSS M MB' line."""
        found = (re.fullmatch(r"(\w+): ([\d.]+) s, peak RSS (\d+) MB", line) for line in self.lines)
        return [m.groups() for m in found if m]


def build(folder: Path, split: str, depth: str, command: str, out: Path | None) -> None:
    handler = Stages()
    logging.getLogger("delbind").addHandler(handler)
    logging.getLogger("delbind").setLevel(logging.INFO)
    cfg = OmegaConf.merge(
        OmegaConf.load(ROOT / "conf/data/kindel.yaml"), {"source": str(folder), "split": split, "heldout": False}
    )
    start = time.perf_counter()
    try:
        df, stats = build_dataset(cfg, seed=0)
    except DataError as e:  # the screen cannot supply the defaults: what the user sees, with what would build
        rows = len(pd.read_parquet(folder / "mapk14_1M.parquet", columns=["molecule_hash"]))
        _report(f"{rows:,}-row synthetic screen ({depth} depth), data.split={split}: no dataset at the defaults.\n\n"
                f"`DataError: {e}`\n", command, out)  # fmt: skip
        return
    total = time.perf_counter() - start
    table = df.groupby(["split", "kind"]).size().unstack(fill_value=0)
    table["prevalence"] = [round(stats[f"prevalence_{split}"], 3) for split in table.index]
    rdkit_rows = stats["binders_used"] + stats["hard_sampled"] + stats["easy_candidates"]
    lines = [
        f"{stats['rows_read']:,}-row synthetic screen ({depth} depth), data.split={split}: build {total:.1f} s, "
        f"peak RSS {peak_rss_mb():,.0f} MB, {rdkit_rows:,} molecules through RDKit.",
        "",
        "| stage | wall s | peak RSS MB after |",
        "| --- | ---: | ---: |",
        *(f"| {name} | {secs} | {rss} |" for name, secs, rss in handler.stages()),
        "",
        "| label rule (dataset/stats.json) | value |",
        "| --- | ---: |",
        *(f"| `{k}` | {_fmt(stats[k])} |" for k in LABEL_COUNTS if k in stats),
        "",
        "| split | " + " | ".join(table.columns) + " |",
        "| --- |" + " ---: |" * len(table.columns),
        *(
            f"| {split} | " + " | ".join(f"{int(n):,}" for n in row[:-1]) + f" | {row[-1]:.3f} |"
            for split, row in zip(table.index, table.to_numpy().tolist())
        ),
    ]
    _report("\n".join(lines) + "\n", command, out)


def _report(text: str, command: str, out: Path | None) -> None:
    print(text)
    if out is not None:
        print(f"written: {results.save(out, 'build', text, f'{command} --out {out}', ROOT)}")


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="disynthon", choices=["disynthon", "random"])
    parser.add_argument("--depth", default="synthetic", choices=list(DEPTHS), help="read depth profile")
    parser.add_argument("--rows", type=int, default=1_000_000, help="screen rows (default: KinDEL's 1M)")
    parser.add_argument("--part", type=int, default=None, help="build on the screen's first N rows only")
    parser.add_argument("--dir", type=Path, default=None, help="where the synthetic file goes (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures to OUT/build.md + meta.json")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)  # the timed child process
    args = parser.parse_args()
    command = f"python scripts/bench_data.py --split {args.split}" + "".join(
        f" --{k} {v}" for k, v in (("depth", args.depth), ("rows", args.rows), ("part", args.part))
        if v not in ("synthetic", 1_000_000, None)
    )  # fmt: skip
    if args.build_only:
        build(args.dir, args.split, args.depth, command, args.out)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        screen = synthetic_screen(args.rows, seed=0, depth=args.depth)
        screen.head(args.part or len(screen)).to_parquet(folder / "mapk14_1M.parquet", index=False)
        size_mb = (folder / "mapk14_1M.parquet").stat().st_size / 2**20
        print(f"generated {len(screen)} rows ({size_mb:.0f} MB parquet) in {time.perf_counter() - start:.1f} s")
        del screen
        print(f"building the dataset (data.split={args.split}) in a fresh process:")
        cmd = [sys.executable, __file__, "--build-only", "--dir", str(folder), "--split", args.split]
        cmd += ["--depth", args.depth, "--rows", str(args.rows)] + (["--part", str(args.part)] if args.part else [])
        cmd += ["--out", str(args.out)] if args.out else []
        out = subprocess.run(cmd, capture_output=True, text=True)
        print(re.sub(r"\n+$", "", out.stdout))
        if out.returncode:
            sys.exit(out.stderr[-3000:])


if __name__ == "__main__":
    main()
