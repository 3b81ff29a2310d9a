"""The course report: `python scripts/report.py <run or sweep dirs...> [--out DIR]`.

Reads every run below the given dirs and writes report.html (self-contained: figures inline), report.ipynb
(rebuilds every section from the run files) and cost_quality.png (to --out, default: the single dir given,
else outputs/reports/<time>).
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("DELBIND_ROOT", str(ROOT))

from delbind.cli import run_dirs_task  # noqa: E402
from delbind.tasks import report  # noqa: E402

if __name__ == "__main__":
    run_dirs_task(report.run, "report", ROOT / "conf", __doc__)
