"""Build and write the labelled, split dataset without training: `python scripts/prepare_data.py data=kindel`.

Writes `<run dir>/dataset/{train,val,test}.parquet`, `external/*.parquet` and `stats.json`; a train run
reads them back with `data.prepared=<run dir>`.
"""

import os
from pathlib import Path

os.environ.setdefault("DELBIND_ROOT", str(Path(__file__).resolve().parents[1]))

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from delbind.cli import run_task  # noqa: E402
from delbind.tasks import prepare  # noqa: E402


@hydra.main(version_base="1.3", config_path="../conf", config_name="prepare_data")
def main(cfg: DictConfig) -> None:
    run_task(prepare.run, cfg)


if __name__ == "__main__":
    main()
