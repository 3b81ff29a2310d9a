"""Sweeps and scale-out: grid multirun, the Optuna sweeper, launcher configs, GPU pinning, two-process runs."""

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import RunMode
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from delbind import sweeps
from hydra_plugins.delbind_optuna_sweeper.optuna_sweeper import OptunaSweeper, split_search_space
from tests.helpers import ROOT

SMOKE_CLI = ["model=tiny", "debug=smoke"]
ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "OMP_NUM_THREADS": "1"}


def _train(*args: str, launcher: list[str] | None = None) -> subprocess.CompletedProcess:
    cmd = [*(launcher or [sys.executable]), str(ROOT / "scripts" / "train.py"), *args, *SMOKE_CLI]  # -m first
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=600, cwd=ROOT)


def _wandb_files(job_dir: Path) -> list[Path]:
    return list((job_dir / "wandb").glob("offline-run-*/run-*.wandb"))


def test_grid_gives_each_job_its_dir_its_wandb_run_and_a_summary_row(tmp_path):
    sweep = tmp_path / "grid"
    proc = _train("-m", "logger=wandb", "mode=frozen,finetune", "seed=0,1", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [p.name for p in jobs] == ["0", "1", "2", "3"]
    run_ids = set()
    for job in jobs:
        overrides = OmegaConf.load(job / ".hydra" / "overrides.yaml")
        name = ",".join(sorted(overrides))  # Hydra's override_dirname: the job's overrides, sorted
        (run_file,) = _wandb_files(job)
        run_ids.add(run_file.stem)
        record = run_file.read_bytes()  # the offline run's protobuf records hold its strings verbatim
        assert name.encode() in record  # named by its own overrides
        assert f"{sweep.parent.name}/{sweep.name}".encode() in record  # grouped
        mode = json.loads((job / "metrics.json").read_text())["mode"]
        assert mode.encode() in record and b"sweep" in record  # tagged by mode, and as a sweep job
    assert len(run_ids) == 4  # four distinct runs, none continued another
    summary = pd.read_csv(sweep / "sweep_summary.csv")
    assert summary["job"].tolist() == [0, 1, 2, 3]
    assert (summary["status"] == "COMPLETED").all()
    assert sorted(zip(summary["mode"], summary["seed"])) == [("finetune", 0), ("finetune", 1), ("frozen", 0),
                                                              ("frozen", 1)]  # fmt: skip
    for column in ("test_easy_auroc", "test_easy_auprc", "test_hard_auroc", "test_hard_auprc", "val_hard_auprc"):
        assert summary[column].between(0, 1).all(), column


def test_optuna_search_completes_and_resumes_from_its_sqlite_study(tmp_path):
    sweep = tmp_path / "search"
    args = ["-m", "hparams_search=optuna", "logger=none", "mode=frozen", "trainer.num_train_epochs=choice(1,2)",
            f"hydra.sweep.dir={sweep}"]  # fmt: skip
    first = _train(*args, "hydra.sweeper.n_trials=2")
    assert first.returncode == 0, first.stderr[-3000:]
    storage = f"sqlite:///{sweep / 'optuna.db'}"
    study = optuna.load_study(study_name="delbind", storage=storage)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    first_params = [t.params for t in study.trials]
    assert set(first_params[0]) == {"trainer.learning_rate", "trainer.per_device_train_batch_size",
                                    "trainer.warmup_steps", "trainer.weight_decay", "model.head_dropout",
                                    "trainer.num_train_epochs"}  # fmt: skip
    # a frozen head searches its own learning-rate range (mode.lr_search), not fine-tuning's
    lr = study.trials[0].distributions["trainer.learning_rate"]
    assert (lr.low, lr.high, lr.log) == (1e-4, 1e-1, True)
    for trial in study.trials:  # each trial's value is what its job wrote
        metrics = json.loads((sweep / str(trial.number) / "metrics.json").read_text())
        assert math.isclose(trial.value, metrics["val_hard_auprc"])
        assert metrics["epochs"] == trial.params["trainer.num_train_epochs"]

    second = _train(*args, "hydra.sweeper.n_trials=3")
    assert second.returncode == 0, second.stderr[-3000:]
    study = optuna.load_study(study_name="delbind", storage=storage)
    assert len(study.trials) == 3  # continued the study: one more trial, not three new ones
    assert [t.params for t in study.trials[:2]] == first_params
    assert study.trials[2].params != first_params[0]  # the resumed sampler does not replay the first run
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1", "2"]
    assert pd.read_csv(sweep / "sweep_summary.csv")["job"].tolist() == [0, 1, 2]
    best = OmegaConf.load(sweep / "optuna_best.yaml")
    assert math.isclose(best.best_value, study.best_value)


class FakeLauncher:
    """Returns scripted results in place of running jobs: a number, NaN, or an exception."""

    def __init__(self, outcomes: list) -> None:
        self.outcomes, self.batches = list(outcomes), []

    def launch(self, batch: list[list[str]], initial_job_idx: int) -> list[JobReturn]:
        self.batches.append((initial_job_idx, batch))
        returns = []
        for _ in batch:
            outcome = self.outcomes.pop(0)
            failed = isinstance(outcome, Exception)
            returns.append(JobReturn(_return_value=outcome, status=JobStatus.FAILED if failed else JobStatus.COMPLETED))
        return returns


def _sweeper(
    tmp_path: Path, launcher: FakeLauncher, n_trials: int, n_jobs: int = 1, seeds: list[int] | None = None
) -> OptunaSweeper:
    sweeper = OptunaSweeper("maximize", n_trials, n_jobs, "s", None, "random", 0, {"x": "interval(0, 1)"}, seeds)
    sweeper.config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "sweep")}}})
    sweeper.launcher = launcher
    return sweeper


def test_failed_and_nan_trials_are_recorded_and_the_study_goes_on(tmp_path):
    launcher = FakeLauncher([0.4, float("nan"), RuntimeError("CUDA out of memory"), 0.7])
    study = _sweeper(tmp_path, launcher, n_trials=4, n_jobs=2).sweep(["seed=3", "y=choice(a,b)"])
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL,
                      optuna.trial.TrialState.FAIL, optuna.trial.TrialState.COMPLETE]  # fmt: skip
    assert study.best_value == 0.7
    assert [idx for idx, _ in launcher.batches] == [0, 2]  # job dirs numbered by trial
    first_job = launcher.batches[0][1][0]
    assert first_job[0] == "seed=3" and {o.split("=")[0] for o in first_job} == {"seed", "x", "y"}
    assert (tmp_path / "sweep" / "optuna.db").is_file()


def test_a_trial_over_several_seeds_scores_their_mean_and_fails_with_any_of_them(tmp_path):
    launcher = FakeLauncher([0.6, 0.8, 0.9, 0.5, 0.7, RuntimeError("diverged"), 0.3, 0.4, 0.5])
    study = _sweeper(tmp_path, launcher, n_trials=3, n_jobs=2, seeds=[0, 1, 2]).sweep(["y=1"])
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL,
                                               optuna.trial.TrialState.COMPLETE]  # fmt: skip
    assert study.trials[0].value == pytest.approx(2.3 / 3) and study.trials[2].value == pytest.approx(0.4)
    assert study.trials[0].user_attrs["seed_values"] == {"0": 0.6, "1": 0.8, "2": 0.9}
    (first, batch), (second, _) = launcher.batches
    assert (first, second) == (0, 6)  # trial t's seed i is job t * 3 + i: dirs never collide, resumed or not
    assert [job[-1] for job in batch] == ["seed=0", "seed=1", "seed=2"] * 2
    assert batch[0][:-1] == batch[2][:-1] != batch[3][:-1]  # one trial's jobs differ only in the seed
    with pytest.raises(ValueError, match="not both"):
        _sweeper(tmp_path / "b", FakeLauncher([]), n_trials=1, seeds=[0, 1]).sweep(["seed=3"])


def test_search_space_uses_hydra_sweep_grammar_and_later_keys_win():
    space, fixed = split_search_space(
        ["lr=tag(log, interval(1e-6, 1e-3))", "bs=choice(16, 32)", "ep=range(1, 7, 2)", "n=tag(int, interval(1, 9))",
         "d=interval(0, 0.5)", "d=0.1", "seed=2"]
    )  # fmt: skip
    assert space == {
        "lr": FloatDistribution(1e-6, 1e-3, log=True),
        "bs": CategoricalDistribution([16, 32]),
        "ep": IntDistribution(1, 5, step=2),
        "n": IntDistribution(1, 9),
    }
    assert fixed == ["d=0.1", "seed=2"]


def _hydra_cfg(sweep_dir: Path, job_dir: Path, num: int, overrides: list[str]) -> OmegaConf:
    return OmegaConf.create(
        {"hydra": {"mode": RunMode.MULTIRUN, "sweep": {"dir": str(sweep_dir)}, "runtime": {"output_dir": str(job_dir)},
                   "job": {"num": num}, "overrides": {"task": overrides}}}
    )  # fmt: skip


def test_summary_keeps_a_row_for_a_failed_job(tmp_path):
    callback = sweeps.SweepSummary()
    done = tmp_path / "0"
    done.mkdir()
    (done / "metrics.json").write_text(json.dumps({"test_hard_auprc": 0.6, "test_hard_auprc_ci95": [0.5, 0.7]}))
    ok = JobReturn(_return_value=0.6, status=JobStatus.COMPLETED)
    callback.on_job_end(_hydra_cfg(tmp_path, done, 0, ["seed=0"]), ok)
    crash = JobReturn(_return_value=ValueError("bad batch"), status=JobStatus.FAILED)
    callback.on_job_end(_hydra_cfg(tmp_path, tmp_path / "1", 1, ["seed=1"]), crash)
    summary = pd.read_csv(tmp_path / "sweep_summary.csv")
    assert summary["status"].tolist() == ["COMPLETED", "FAILED"]
    assert summary["seed"].tolist() == [0, 1]
    assert summary.loc[0, "test_hard_auprc"] == 0.6 and pd.isna(summary.loc[1, "test_hard_auprc"])
    assert summary.loc[1, "error"] == "ValueError: bad batch"


def test_each_parallel_job_process_claims_its_own_gpu(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    held = []
    for expected in ("2", "3"):
        monkeypatch.setattr(sweeps, "_gpu_lock", None)  # as if a new worker process
        assert sweeps.claim_gpu(["2", "3"], tmp_path) == expected
        assert os.environ["CUDA_VISIBLE_DEVICES"] == expected
        held.append(sweeps._gpu_lock)
        assert sweeps.claim_gpu(["2", "3"], tmp_path) == expected  # a worker keeps its GPU for its next job
    monkeypatch.setattr(sweeps, "_gpu_lock", None)
    with pytest.raises(RuntimeError, match="all GPUs"):
        sweeps.claim_gpu(["2", "3"], tmp_path)
    held.pop(0).close()  # a worker exits: its GPU is free again
    assert sweeps.claim_gpu(["2", "3"], tmp_path) == "2"
    sweeps._gpu_lock.close()
    assert sweeps.OneGpuPerJob("0, 1").gpus == ["0", "1"] and sweeps.OneGpuPerJob(None).gpus == []


@pytest.mark.parametrize(
    ("launcher", "target"),
    [("local_parallel", "hydra_joblib_launcher.joblib_launcher.JoblibLauncher"),
     ("slurm", "hydra_submitit_launcher.submitit_launcher.SlurmLauncher")],
)  # fmt: skip
def test_launcher_and_search_configs_compose(launcher, target):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", [f"hydra/launcher={launcher}", "hparams_search=optuna"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_.endswith(target)
    assert cfg.hydra.sweeper._target_.endswith("delbind_optuna_sweeper.optuna_sweeper.OptunaSweeper")
    assert cfg.optimized_metric == "val_hard_auprc" and cfg.hydra.sweeper.direction == "maximize"
    assert cfg.hydra.sweeper.params["trainer.learning_rate"] == "tag(log, interval(1e-6, 1e-3))"  # finetune's
    assert set(cfg.hydra.callbacks) == {"sweep_summary", "one_gpu_per_job"}
    if launcher == "slurm":
        assert cfg.hydra.launcher.gpus_per_node == 1 and cfg.hydra.launcher.tasks_per_node == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("launch", ["torchrun", "accelerate"])
def test_two_cpu_processes_share_one_run_dir_and_rank0_writes(tmp_path, launch):
    bin_dir = Path(sys.executable).parent
    launcher = {
        "torchrun": [str(bin_dir / "torchrun"), "--standalone", "--nproc_per_node", "2"],
        # --multi_gpu makes accelerate use torchrun underneath; with no GPU the ranks run on CPU (gloo)
        "accelerate": [str(bin_dir / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2",
                       "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                       "--main_process_port", str(_free_port())],
    }[launch]  # fmt: skip
    run_dir = tmp_path / "run"
    proc = _train("logger=wandb", f"hydra.run.dir={run_dir}", f"paths.outputs_root={tmp_path}", launcher=launcher)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count(f"run dir: {run_dir}") == 2  # both ranks ran the job
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # one run dir, nothing else
    metrics = json.loads((run_dir / "metrics.json").read_text())
    # 2 epochs x 10 steps in one process; each of two ranks takes half of every epoch's batches
    assert metrics["global_step"] == 10
    assert len(_wandb_files(run_dir)) == 1  # rank 0 alone logs
    assert len(pd.read_parquet(run_dir / "predictions.parquet")) == sum(
        metrics[f"n_{s}"] for s in ("val_easy", "val_hard", "test_easy", "test_hard")
    )  # gathered over ranks, every molecule scored once
    again = _train("logger=none", f"hydra.run.dir={run_dir}", f"paths.outputs_root={tmp_path}", launcher=launcher)
    out = again.stdout + again.stderr  # rank 0 finds the dir claimed; every rank stops, none waits for the others
    assert again.returncode != 0 and out.count(f"RunDirExistsError: {run_dir} already holds a run") == 2, out[-3000:]
