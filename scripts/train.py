"""Train and evaluate one binder classifier: `python scripts/train.py mode=finetune|frozen [overrides]`."""

import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("DELBIND_ROOT", str(Path(__file__).resolve().parents[1]))

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from hydra.types import RunMode  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from delbind.errors import USER_ERRORS  # noqa: E402
from delbind.pipeline import run_experiment, summary_table  # noqa: E402

log = logging.getLogger("delbind")


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float:
    try:
        metrics = run_experiment(cfg)
    except USER_ERRORS as e:  # bad input or a missing asset: one clear line, no traceback wall
        log.error("%s: %s", type(e).__name__, e)
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # a failed job of a sweep: Hydra records it and the sweep goes on (sys.exit would end it)
        sys.exit(2)
    print(f"\n{cfg.run_name}\n{summary_table(metrics)}\nrun dir: {cfg.paths.output_dir}")
    return metrics[cfg.get("optimized_metric", "val_hard_auprc")]  # what a sweeper optimizes


if __name__ == "__main__":
    main()
