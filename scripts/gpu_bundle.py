"""Build the offline GPU check's bundle (at most 64 MiB) on a machine with the package index:
`python scripts/gpu_bundle.py OUT [--python 3.11]`, then on the GPU machine `bash OUT/check.sh`.

docs/performance.md#the-offline-gpu-check: what the bundle holds, what check.sh measures and how to read its table.
"""

import argparse
import logging
from pathlib import Path

from delbind.cli import run_task
from delbind.gpucheck.bundle import MODELS, build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="a new (or empty) dir for the bundle")
    parser.add_argument("--python", help="the GPU machine's Python as X.Y (default: this one's)")
    parser.add_argument("--platform", default="manylinux2014_x86_64", help="its pip platform tag (%(default)s)")
    parser.add_argument("--model", choices=MODELS, default="rxnfp_bert",
                        help="the trunk it carries (%(default)s; tiny: CI's CPU check)")  # fmt: skip
    parser.add_argument("--data", nargs="*", default=[], metavar="OVERRIDE",
                        help="scripts/prepare_data.py overrides (default: GSK3B, fold 0)")  # fmt: skip
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    info = run_task(build, args.out, args.model, tuple(args.data), args.python, args.platform)
    size = info["size_bytes"] / 2**20
    print(f"{args.out}: {size:.1f} MiB for Python {info['python']} on {info['platform']} (trunk {info['model']}, "
          f"commit {info['commit']}). On the GPU machine: bash {args.out}/check.sh")  # fmt: skip


if __name__ == "__main__":
    main()
