"""A panel of targets: `python scripts/panel.py <sweep dirs...> [--out DIR] [--reference ARM] [--margin M]`.

Reads every run below the given dirs (experiment=kinase_panel's sweep dir) and writes panel.md, panel.csv and
panel_tally.csv (to --out, default: the single dir given, else outputs/panels/<time>).
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("DELBIND_ROOT", str(ROOT))

from delbind.cli import run_dirs_task  # noqa: E402
from delbind.tasks import panel  # noqa: E402

if __name__ == "__main__":
    run_dirs_task(panel.run, "panel", ROOT / "conf", __doc__)
