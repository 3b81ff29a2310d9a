"""Time parquet -> labelled, split KinDEL dataset on a realistic synthetic 1M-row screen in the KinDEL schema.

`python scripts/bench_data.py [--split disynthon|random] [--rows N] [--dir DIR]` writes
DIR/mapk14_1M.parquet (KinDEL's 377 / 1,127 / 190 building blocks, products a-c-b, a few active blocks and
disynthons, Poisson noise elsewhere), then builds the dataset with default label settings in a fresh process
and prints each stage's wall time and the peak RSS after it, the label counts and each split's counts.
"""

import argparse
import logging
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from omegaconf import OmegaConf
from synthetic_screens import synthetic_screen

from delbind import results
from delbind.data import build_dataset
from delbind.profiling import peak_rss_mb

ROOT = Path(__file__).resolve().parents[1]
LABEL_COUNTS = ("binders_found", "binder_cut_ties_dropped", "top_low_reads_dropped", "neg_evidence",
                "neg_control_to_target_reads", "binder_point_fold_median", "neg_min_control_reads", "neg_pool",
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


def build(folder: Path, split: str, rows: int, out: Path | None) -> None:
    handler = Stages()
    logging.getLogger("delbind").addHandler(handler)
    logging.getLogger("delbind").setLevel(logging.INFO)
    cfg = OmegaConf.merge(
        OmegaConf.load(ROOT / "conf/data/kindel.yaml"), {"source": str(folder), "split": split, "heldout": False}
    )
    start = time.perf_counter()
    df, stats = build_dataset(cfg, seed=0)
    total = time.perf_counter() - start
    table = df.groupby(["split", "kind"]).size().unstack(fill_value=0)
    table["prevalence"] = [round(stats[f"prevalence_{split}"], 3) for split in table.index]
    rdkit_rows = stats["binders_used"] + stats["hard_sampled"] + stats["easy_candidates"]
    lines = [
        f"{stats['rows_read']:,}-row synthetic screen, data.split={split}: build {total:.1f} s, peak RSS "
        f"{peak_rss_mb():,.0f} MB, {rdkit_rows:,} molecules through RDKit.",
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
    text = "\n".join(lines) + "\n"
    print(text)
    if out is not None:
        command = f"python scripts/bench_data.py --split {split}" + (f" --rows {rows}" if rows != 1_000_000 else "")
        print(f"written: {results.save(out, 'build', text, f'{command} --out {out}', ROOT)}")


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="disynthon", choices=["disynthon", "random"])
    parser.add_argument("--rows", type=int, default=1_000_000, help="screen rows (default: KinDEL's 1M)")
    parser.add_argument("--dir", type=Path, default=None, help="where the synthetic file goes (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures to OUT/build.md + meta.json")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)  # the timed child process
    args = parser.parse_args()
    if args.build_only:
        build(args.dir, args.split, args.rows, args.out)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        screen = synthetic_screen(args.rows, seed=0)
        screen.to_parquet(folder / "mapk14_1M.parquet", index=False)
        size_mb = (folder / "mapk14_1M.parquet").stat().st_size / 2**20
        print(f"generated {len(screen)} rows ({size_mb:.0f} MB parquet) in {time.perf_counter() - start:.1f} s")
        del screen
        print(f"building the dataset (data.split={args.split}) in a fresh process:")
        cmd = [sys.executable, __file__, "--build-only", "--dir", str(folder), "--split", args.split]
        cmd += ["--rows", str(args.rows)] + (["--out", str(args.out)] if args.out else [])
        out = subprocess.run(cmd, capture_output=True, text=True)
        print(re.sub(r"\n+$", "", out.stdout))
        if out.returncode:
            sys.exit(out.stderr[-3000:])


if __name__ == "__main__":
    main()
