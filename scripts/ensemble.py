"""Seed ensembles: `python scripts/ensemble.py <run or sweep dirs...> [--out DIR]`.

Groups the finished runs below the given dirs by recipe and split (arm, model, pooling, data, target, data_seed);
each group of two or more seeds becomes one run dir (ensemble-<arm>-...-d<data_seed>) whose P(binder) is the mean
of its members', with metrics.json and predictions.parquet as a run's (to --out, default: the single dir given,
else outputs/ensembles/<time>). Train the members with `scripts/train.py -m data_seed=D seed=0,1,2,3,4`.
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("DELBIND_ROOT", str(ROOT))

from delbind.cli import run_dirs_task  # noqa: E402
from delbind.tasks import ensemble  # noqa: E402

if __name__ == "__main__":
    run_dirs_task(ensemble.run, "ensemble", ROOT / "conf", __doc__)
