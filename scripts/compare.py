"""Compare runs: `python scripts/compare.py <run or sweep dirs...> [--out DIR]`.

Reads every metrics.json below the given dirs and writes comparison.md, comparison.csv and
comparison.png (to --out, default: the single dir given, else outputs/comparisons/<time>).
"""

import argparse
import sys
import time
from pathlib import Path

from delbind.compare import to_markdown, write_comparison


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", nargs="+", type=Path, help="run dirs, sweep dirs or metrics.json files")
    parser.add_argument("--out", type=Path, help="where to write comparison.{md,csv,png}")
    args = parser.parse_args()
    out = args.out
    if out is None:
        root = Path(__file__).resolve().parents[1]
        one_dir = len(args.dirs) == 1 and args.dirs[0].is_dir()
        out = args.dirs[0] if one_dir else root / "outputs" / "comparisons" / time.strftime("%Y-%m-%d_%H-%M-%S")
    try:
        summary = write_comparison(args.dirs, out)
    except FileNotFoundError as e:
        sys.exit(f"compare: {e}")
    print(to_markdown(summary))
    print(f"written: {out}/comparison.md, comparison.csv, comparison.png")


if __name__ == "__main__":
    main()
