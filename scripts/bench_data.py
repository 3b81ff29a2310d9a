"""Time parquet -> labelled, split KinDEL dataset on a synthetic 1M-row screen in the KinDEL schema.

`python scripts/bench_data.py [--split disynthon|random|scaffold] [--dir DIR]` writes DIR/mapk14_1M.parquet
(100 x 100 x 100 synthons, SMILES by string template), then builds the dataset in a fresh process and
prints each stage's wall time and the peak RSS after it.
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

from delbind.data import build_dataset
from delbind.profiling import peak_rss_mb

ROOT = Path(__file__).resolve().parents[1]
N_PER_POSITION = 100  # 100^3 = 1M molecules
HOT = [(list(range(40)),) * 3]  # binders cluster on synthons 0..39; 40..99 leave room for easy negatives


class Stages(logging.Handler):
    """Collects the 'stage ...' records that delbind.profiling.stage logs during the KinDEL build."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("stage "):
            self.lines.append(record.getMessage().removeprefix("stage "))


def build(folder: Path, split: str) -> None:
    handler = Stages()
    logging.getLogger("delbind").addHandler(handler)
    logging.getLogger("delbind").setLevel(logging.INFO)
    cfg = OmegaConf.merge(
        OmegaConf.load(ROOT / "conf/data/kindel.yaml"), {"source": str(folder), "split": split, "heldout": False}
    )
    start = time.perf_counter()
    df, stats = build_dataset(cfg, seed=0)
    total = time.perf_counter() - start
    for line in handler.lines:
        print(f"  {line}")
    rss = peak_rss_mb()
    rdkit_rows = stats["binders_used"] + stats["hard_sampled"] + stats["easy_candidates"]
    print(
        f"build total: {total:.1f} s, peak RSS {rss:.0f} MB; rows read {stats['rows_read']}, through RDKit {rdkit_rows}"
    )
    print(df.groupby(["split", "kind"]).size().unstack(fill_value=0).to_string())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="disynthon", choices=["disynthon", "random", "scaffold"])
    parser.add_argument("--dir", type=Path, default=None, help="where the synthetic file goes (default: a temp dir)")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)  # the timed child process
    args = parser.parse_args()
    if args.build_only:
        build(args.dir, args.split)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        screen = synthetic_screen(N_PER_POSITION, HOT, seed=0)
        screen.to_parquet(folder / "mapk14_1M.parquet", index=False)
        size_mb = (folder / "mapk14_1M.parquet").stat().st_size / 2**20
        print(f"generated {len(screen)} rows ({size_mb:.0f} MB parquet) in {time.perf_counter() - start:.1f} s")
        del screen
        print(f"building the dataset (data.split={args.split}) in a fresh process:")
        cmd = [sys.executable, __file__, "--build-only", "--dir", str(folder), "--split", args.split]
        out = subprocess.run(cmd, capture_output=True, text=True)
        print(re.sub(r"\n+$", "", out.stdout))
        if out.returncode:
            sys.exit(out.stderr[-3000:])


if __name__ == "__main__":
    main()
