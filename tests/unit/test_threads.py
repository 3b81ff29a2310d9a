"""Threads per process: jobs side by side share the cores instead of multiplying them."""

import pytest
import torch

from delbind import threads


@pytest.fixture(autouse=True)
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_auto_divides_the_cores_among_this_launchs_processes(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "cores", lambda: 16)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert threads.resolve_threads("auto") == 4
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "32")  # more processes than cores: one each, never zero
    assert threads.resolve_threads(None) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # set by the user or by joblib's worker: kept
    assert threads.set_threads("auto") == 3 == torch.get_num_threads()


def test_a_number_is_taken_as_is_and_nonsense_is_refused(monkeypatch):
    assert threads.set_threads(1) == 1 == torch.get_num_threads()
    with pytest.raises(ValueError, match="threads=0"):
        threads.resolve_threads(0)


def test_a_parallel_hydra_launcher_divides_by_its_n_jobs(tmp_path, monkeypatch):
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.setattr(threads, "cores", lambda: 8)
    # what a job process of hydra/launcher=local_parallel sees (the hydra node of its config)
    cfg = OmegaConf.create({"hydra": {"mode": RunMode.MULTIRUN, "launcher": {"n_jobs": 2}}})
    HydraConfig.instance().cfg = cfg
    try:
        assert threads.resolve_threads("auto") == 4
        cfg.hydra.launcher.n_jobs = -1  # joblib: one job per core
        assert threads.resolve_threads("auto") == 1
        cfg.hydra.mode = RunMode.RUN  # a single run has the machine to itself
        assert threads.resolve_threads("auto") == 8
    finally:
        HydraConfig.instance().cfg = None
