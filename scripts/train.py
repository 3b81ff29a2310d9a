"""Train and evaluate one binder classifier: `python scripts/train.py mode=finetune|frozen [overrides]`."""

import os
from pathlib import Path

os.environ.setdefault("DELBIND_ROOT", str(Path(__file__).resolve().parents[1]))

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from hydra.types import RunMode  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from delbind.cli import run_task  # noqa: E402
from delbind.tasks import train, train_ensemble  # noqa: E402


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float:
    task = train_ensemble.run if cfg.ensemble.size != 1 else train.run  # a seed ensemble in one job
    metrics = run_task(task, cfg, in_sweep=HydraConfig.get().mode == RunMode.MULTIRUN)
    print(f"\n{cfg.run_name}\n{train.summary_table(metrics)}\nrun dir: {cfg.paths.output_dir}")
    return metrics[cfg.optimized_metric]  # what a sweeper optimizes


if __name__ == "__main__":
    main()
