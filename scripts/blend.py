"""Cross-family blends: `python scripts/blend.py <runs of two arms...> [--arms A B] [--weight val|W] [--out DIR]`.

Pairs the two arms' runs fold by fold (the same data, data_seed and fold) and writes one run dir per fold whose score
is the weighted mean of the arms' ranks, each rank taken against that run's own val scores; the weight is fixed or
chosen per fold on val hard AU-PRC (default). compare.py then reads the blend as one more row, e.g.
`python scripts/blend.py results/gsk3b_cv/runs --arms lp_ft ecfp_rf --out outputs/blends/lp_ft+ecfp_rf`.
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("DELBIND_ROOT", str(ROOT))

from delbind.cli import run_dirs_task  # noqa: E402
from delbind.tasks import blend  # noqa: E402

if __name__ == "__main__":
    run_dirs_task(blend.run, "blend", ROOT / "conf", __doc__)
