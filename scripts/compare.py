"""Compare runs: `python scripts/compare.py <run or sweep dirs...> [--out DIR]`.

Reads every metrics.json below the given dirs and writes comparison.md, comparison.csv and
comparison.png (to --out, default: the single dir given, else outputs/comparisons/<time>).
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("DELBIND_ROOT", str(ROOT))

from delbind.cli import run_dirs_task  # noqa: E402
from delbind.tasks import compare  # noqa: E402

if __name__ == "__main__":
    run_dirs_task(compare.run, "compare", ROOT / "conf", __doc__)
