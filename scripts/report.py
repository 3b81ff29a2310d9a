"""The course report: `python scripts/report.py <run or sweep dirs...> [--out DIR]`.

Reads every run below the given dirs and writes report.html (self-contained: figures inline), report.ipynb
(rebuilds every section from the run files) and cost_quality.png (to --out, default: the single dir given,
else outputs/reports/<time>).
"""

import argparse
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("DELBIND_ROOT", str(ROOT))

from hydra import compose, initialize_config_dir  # noqa: E402

from delbind.cli import run_task  # noqa: E402
from delbind.tasks import report  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", nargs="+", type=Path, help="run dirs, sweep dirs or metrics.json files")
    parser.add_argument("--out", type=Path, help="where to write report.html and report.ipynb")
    args = parser.parse_args()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("report")
    cfg.dirs, cfg.out = [str(d) for d in args.dirs], None if args.out is None else str(args.out)
    run_task(report.run, cfg)


if __name__ == "__main__":
    main()
