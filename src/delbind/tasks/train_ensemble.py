"""A seed ensemble in one job (``ensemble.size`` > 1): its members trained one after another on one split, each a
full run dir under ``members/``, then the job's run dir is their ensemble (the members' mean P(binder), scored
as ``scripts/ensemble.py`` scores one). What makes ``arm=lp_ft_ensemble`` a row of ``experiment=frozen_vs_finetune``."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from delbind import distributed
from delbind.ensemble import find_members, group_members, write_ensemble
from delbind.errors import ConfigError
from delbind.rundirs import claim_run_dir
from delbind.tasks import train

log = logging.getLogger(__name__)


def member_seeds(cfg: DictConfig) -> list[int]:
    """The members' seeds: ``seed``, then ``seed`` + k x ``ensemble.seed_stride`` (a stride above the sweep's seeds
    keeps one job's members apart from another job's)."""
    size, stride = cfg.ensemble.size, cfg.ensemble.seed_stride
    if not isinstance(size, int) or size < 2:
        raise ConfigError(f"ensemble.size={size!r}: a seed ensemble needs an integer of 2 or more (1 = one model)")
    if not isinstance(stride, int) or stride < 1:
        raise ConfigError(f"ensemble.seed_stride={stride!r}: give a positive integer (members' seeds must differ)")
    if cfg.resume not in (None, False):
        raise ConfigError("resume is per run: resume one member (resume=<its run dir>), then scripts/ensemble.py")
    return [cfg.seed + k * stride for k in range(size)]


def member_config(cfg: DictConfig, seed: int, run_dir: Path) -> DictConfig:
    """The job's config for one member: its seed, the job's split (``data_seed`` fixed to the job's value, so
    every member sees the same molecules), its run dir ``members/s<seed>``; the recipe (ensemble.* included)
    untouched, so the members share one recipe key and no plain run of the same arm has it."""
    member = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    member.seed, member.data_seed = seed, cfg.data_seed  # data_seed resolved on the job's config: ${seed} no more
    member.paths.output_dir = str(run_dir / "members" / f"s{seed}")
    return member


def run(cfg: DictConfig) -> dict[str, Any]:
    """Train ``ensemble.size`` members, write the ensemble into the run dir; return its metrics (metrics.json)."""
    seeds = member_seeds(cfg)
    run_dir = claim_run_dir(Path(cfg.paths.output_dir))
    for seed in seeds:
        member = member_config(cfg, seed, run_dir)
        log.info("ensemble member %d of %d: seed %d on data_seed %d", seeds.index(seed) + 1, len(seeds), seed,
                 member.data_seed)  # fmt: skip
        if distributed.is_main_process():  # as Hydra keeps a run's config: scripts/ensemble.py groups by it
            (Path(member.paths.output_dir) / ".hydra").mkdir(parents=True, exist_ok=True)
            OmegaConf.save(member, Path(member.paths.output_dir) / ".hydra" / "config.yaml")
        train.run(member)
    if distributed.is_main_process():  # rank 0 writes (torchrun / accelerate); every rank returns the metrics
        groups, left_out = group_members(find_members([run_dir / "members"]))
        if len(groups) != 1 or len(groups[0]) != len(seeds):
            raise RuntimeError(f"the members under {run_dir / 'members'} are not one ensemble: {left_out}")
        write_ensemble(groups[0], run_dir, cfg.eval.n_bootstrap, cfg.eval.confidence)
    distributed.barrier()
    return json.loads((run_dir / "metrics.json").read_text())
