"""Build and write the labelled, split dataset without training: `python scripts/prepare_data.py data=kindel`.

Writes `<run dir>/dataset/{train,val,test}.parquet`, `external/*.parquet` and `stats.json`; a train run
reads them back with `data.prepared=<run dir>`.
"""

import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("DELBIND_ROOT", str(Path(__file__).resolve().parents[1]))

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from delbind.data import build_dataset, external_sets, write_dataset  # noqa: E402
from delbind.errors import USER_ERRORS  # noqa: E402

log = logging.getLogger("delbind")


@hydra.main(version_base="1.3", config_path="../conf", config_name="prepare_data")
def main(cfg: DictConfig) -> None:
    run_dir = Path(cfg.paths.output_dir)
    try:
        df, stats = build_dataset(cfg.data, cfg.seed)
        external = external_sets(cfg.data, stats)
    except USER_ERRORS as e:  # bad input or a missing file: one clear line, no traceback wall
        log.error("%s: %s", type(e).__name__, e)
        sys.exit(2)
    write_dataset(run_dir / "dataset", df, stats, external)
    counts = df.groupby(["split", "kind"]).size().unstack(fill_value=0)
    print(f"\n{counts}\nexternal sets: {sorted(external) or 'none'}\ndataset: {run_dir / 'dataset'}")


if __name__ == "__main__":
    main()
