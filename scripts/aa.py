"""The A/A study: `python scripts/aa.py <dirs of runs of several seeds per recipe> [--out DIR] [--reference ecfp_rf]`.

Seeds of one recipe on the same folds are compared with each other, one repeat against one (a verdict about those
fitted models) and in groups of repeats (the test that counts training noise); every "better" / "worse" between
them is false. Writes aa.md and aa_{spread,pairs,splits,power}.csv (docs/evaluation.md).
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("DELBIND_ROOT", str(ROOT))

from delbind.cli import run_dirs_task  # noqa: E402
from delbind.tasks import aa  # noqa: E402

if __name__ == "__main__":
    run_dirs_task(aa.run, "aa", ROOT / "conf", __doc__)
