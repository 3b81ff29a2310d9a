"""``hydra/sweeper=delbind_optuna``: ask Optuna for trials, launch them as Hydra jobs, tell it the results.

The search space uses Hydra's sweep grammar, as the published plugin does: ``choice(16, 32)``,
``range(1, 5)``, ``interval(0.0, 0.5)``, ``tag(log, interval(1e-6, 1e-3))``, ``tag(int, interval(1, 9))``.
"""

# No `from __future__ import annotations`: Hydra executes plugin modules outside sys.modules, where
# dataclasses cannot resolve string annotations.
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

log = logging.getLogger(__name__)


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.delbind_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    direction: str = "maximize"  # or minimize: what the task function returns
    n_trials: int = 20  # finished trials the study should hold; a re-run only runs the missing ones
    n_jobs: int = 1  # trials launched together (useful with a parallel launcher)
    study_name: str = "delbind"
    storage: str | None = None  # an Optuna storage URL; null: sqlite in the sweep dir
    sampler: str = "tpe"  # tpe or random
    seed: int | None = None
    params: dict[str, str] = field(default_factory=dict)
    # null: a trial is one job. A list of seeds: a trial runs once per seed (`seed=` each) and its value is the
    # mean over them, so the search is not steered by one split's noise; one failed seed fails the trial.
    seeds: list[int] | None = None


ConfigStore.instance().store(group="hydra/sweeper", name="delbind_optuna", node=OptunaSweeperConf, provider="delbind")


def to_distribution(sweep: Any) -> BaseDistribution:
    """An Optuna distribution from a parsed Hydra sweep value."""
    if isinstance(sweep, ChoiceSweep):
        return CategoricalDistribution(sweep.list)
    if isinstance(sweep, RangeSweep):
        if any(isinstance(v, float) for v in (sweep.start, sweep.stop, sweep.step)):
            return CategoricalDistribution(list(sweep))
        last = sweep.start + (len(range(sweep.start, sweep.stop, sweep.step)) - 1) * sweep.step
        return IntDistribution(sweep.start, last, step=sweep.step)
    if isinstance(sweep, IntervalSweep):
        log_scale = "log" in sweep.tags
        if "int" in sweep.tags:
            return IntDistribution(int(sweep.start), int(sweep.end), log=log_scale)
        return FloatDistribution(sweep.start, sweep.end, log=log_scale)
    raise ValueError(f"unsupported sweep value {sweep!r}: use choice, range or interval")


def split_search_space(overrides: list[str]) -> tuple[dict[str, BaseDistribution], list[str]]:
    """Sweep overrides become distributions; plain ones stay fixed for every trial. Later keys win."""
    space: dict[str, BaseDistribution] = {}
    fixed: dict[str, str] = {}
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.get_key_element()
        space.pop(key, None)
        fixed.pop(key, None)
        if override.is_sweep_override():
            space[key] = to_distribution(override.value())
        else:
            fixed[key] = f"{key}={override.get_value_element_as_str()}"
    return space, list(fixed.values())


def trial_value(job: JobReturn) -> float | None:
    """The job's objective, or None when the job raised or returned NaN (the trial then fails)."""
    try:
        value = float(job.return_value)  # re-raises the job's exception if it failed
    except Exception as e:  # any failure of one trial must not end the study
        log.warning("trial failed: %s: %s", type(e).__name__, e)
        return None
    if math.isnan(value):
        log.warning("trial returned NaN; recorded as failed")
        return None
    return value


class OptunaSweeper(Sweeper):
    """Runs ``n_trials`` trials of an Optuna study persisted in ``storage``, ``n_jobs`` at a time."""

    def __init__(
        self,
        direction: str,
        n_trials: int,
        n_jobs: int,
        study_name: str,
        storage: str | None,
        sampler: str,
        seed: int | None,
        params: dict[str, str],
        seeds: list[int] | None = None,
    ) -> None:
        self.direction, self.n_trials, self.n_jobs = direction, n_trials, max(1, n_jobs)
        self.study_name, self.storage, self.sampler, self.seed = study_name, storage, sampler, seed
        self.params = dict(params or {})
        self.seeds = [int(s) for s in seeds] if seeds else None
        self.config: DictConfig | None = None
        self.launcher: Launcher | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def _sampler(self, n_existing: int) -> optuna.samplers.BaseSampler:
        # A resumed study must not replay the random start-up trials of the first run: shift the seed.
        seed = None if self.seed is None else self.seed + n_existing
        if self.sampler == "tpe":
            return optuna.samplers.TPESampler(seed=seed)
        if self.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        raise ValueError(f"hydra.sweeper.sampler={self.sampler!r}: choose tpe or random")

    def sweep(self, arguments: list[str]) -> optuna.Study:
        """Run trials until the study holds ``n_trials`` finished ones; return the study."""
        assert self.config is not None and self.launcher is not None
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)  # sqlite cannot create the folder of its file
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        space, fixed = split_search_space([f"{k}={v}" for k, v in self.params.items()] + list(arguments))
        if self.seeds and any(o.startswith("seed=") for o in fixed):
            raise ValueError("give either seed=... or hydra.sweeper.seeds=[...], not both")
        per_trial = [[f"seed={s}"] for s in self.seeds] if self.seeds else [[]]
        study = optuna.create_study(
            study_name=self.study_name,
            storage=self.storage or f"sqlite:///{sweep_dir.resolve() / 'optuna.db'}",
            direction=self.direction,
            load_if_exists=True,  # the same sweep dir resumes the study
        )
        finished = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL, optuna.trial.TrialState.PRUNED
        done = len(study.get_trials(deepcopy=False, states=finished))
        study.sampler = self._sampler(len(study.trials))
        log.info("study %s: %d of %d trials done, search space %s", self.study_name, done, self.n_trials, list(space))
        while done < self.n_trials:
            trials = [study.ask(space) for _ in range(min(self.n_jobs, self.n_trials - done))]
            batch = [
                fixed + [f"{key}={value}" for key, value in trial.params.items()] + seed
                for trial in trials
                for seed in per_trial
            ]
            # Job dirs are numbered by trial (trial t's seed i: job t * len(seeds) + i), so a resumed study never
            # writes into an earlier trial's dir.
            returns = self.launcher.launch(batch, initial_job_idx=trials[0].number * len(per_trial))
            for k, trial in enumerate(trials):
                values = [trial_value(job) for job in returns[k * len(per_trial) : (k + 1) * len(per_trial)]]
                if any(v is None for v in values):
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                else:
                    if self.seeds:
                        trial.set_user_attr("seed_values", {str(s): v for s, v in zip(self.seeds, values)})
                    study.tell(trial, sum(values) / len(values))
            done += len(trials)
        completed = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if completed:
            best = {
                "best_value": study.best_value,
                "best_params": study.best_params,
                "best_trial": study.best_trial.number,
            }
            OmegaConf.save(OmegaConf.create(best), sweep_dir / "optuna_best.yaml")
            log.info("best trial %d: %s = %s", best["best_trial"], best["best_params"], best["best_value"])
        return study
