"""Masked-LM pre-training on SMILES: `python scripts/pretrain.py model=tiny|rxnfp_bert [corpus.path=FILE] [overrides]`.

Its run dir's `model/` is a trunk for train.py: `python scripts/train.py model.name_or_path=<run dir>/model`.
"""

import os
from pathlib import Path

os.environ.setdefault("DELBIND_ROOT", str(Path(__file__).resolve().parents[1]))

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from delbind.cli import run_task  # noqa: E402
from delbind.tasks import pretrain  # noqa: E402


@hydra.main(version_base="1.3", config_path="../conf", config_name="pretrain")
def main(cfg: DictConfig) -> None:
    metrics = run_task(pretrain.run, cfg)
    print(f"\nmlm loss on held-out SMILES: {metrics['mlm_loss_before']:.4f} -> {metrics['mlm_loss_after']:.4f}")
    print(f"model: {cfg.paths.output_dir}/model")


if __name__ == "__main__":
    main()
