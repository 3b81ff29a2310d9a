"""A seed ensemble trained in one job (ensemble.size): members on one split, the job's run dir their mean."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delbind.artifacts import manifest_digest
from delbind.comparison import load_runs
from delbind.errors import ConfigError, RunDirExistsError
from delbind.tasks import train_ensemble
from tests.helpers import compose_cfg


def test_an_ensemble_job_trains_its_members_on_one_split_and_writes_their_mean(make_cfg):
    cfg = make_cfg("mode=frozen", "seed=3", "ensemble.size=2", "ensemble.seed_stride=10")
    metrics = train_ensemble.run(cfg)
    run_dir = Path(cfg.paths.output_dir)
    assert metrics["ensemble_size"] == 2 and metrics["ensemble_seeds"] == [3, 13]
    assert metrics["seed"] == metrics["data_seed"] == 0  # an ensemble is one model of the folds data_seed deals
    members_fold = json.loads((run_dir / "members" / "s3" / "metrics.json").read_text())
    for key in ("cv", "folds", "fold", "n_test_hard_negatives"):  # its fold, so comparisons pool it with the others
        assert metrics[key] == members_fold[key], key
    on_disk = json.loads((run_dir / "metrics.json").read_text())
    assert on_disk["ensemble_members"] == [str((run_dir / "members" / f"s{s}").resolve()) for s in (3, 13)]
    for member, digest in on_disk["ensemble_member_models"].items():  # what predict.py checks each member against
        assert digest == manifest_digest(Path(member) / "model") and len(digest) == 64
    members = [json.loads((run_dir / "members" / f"s{s}" / "metrics.json").read_text()) for s in (3, 13)]
    assert [m["seed"] for m in members] == [3, 13] and [m["data_seed"] for m in members] == [0, 0]  # the job's folds
    assert all(m["ensemble_member"] for m in members)
    scores = [pd.read_parquet(run_dir / "members" / f"s{s}" / "predictions.parquet") for s in (3, 13)]
    assert scores[0]["smiles"].equals(scores[1]["smiles"])  # one split: the same molecules in the same order
    assert not np.allclose(scores[0]["score"], scores[1]["score"])  # two models, not one twice
    ensemble = pd.read_parquet(run_dir / "predictions.parquet")
    assert np.allclose(ensemble["score"], (scores[0]["score"] + scores[1]["score"]) / 2)
    assert (run_dir / "members" / "s13" / ".hydra" / "config.yaml").is_file()
    labels = set(load_runs([run_dir])["arm"])  # the members are a row of their own, never plain frozen runs
    assert labels == {"frozen (tiny, mean pooling, ensemble of 2)", "frozen (tiny, mean pooling, ensemble member)"}
    with pytest.raises(RunDirExistsError):
        train_ensemble.run(cfg)  # no run overwrites another's output


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["ensemble.size=0"], "ensemble.size=0: a seed ensemble needs an integer of 2 or more"),
        (["ensemble.size=2", "ensemble.seed_stride=0"], "ensemble.seed_stride=0: give a positive integer"),
        (["ensemble.size=2", "resume=true"], "resume is per run"),
    ],
)
def test_bad_ensemble_settings_are_config_errors_before_anything_trains(make_cfg, overrides, message):
    cfg = make_cfg("mode=frozen", *overrides)
    with pytest.raises(ConfigError, match=message):
        train_ensemble.run(cfg)
    assert not Path(cfg.paths.output_dir).exists()


def test_the_lp_ft_ensemble_arm_is_lp_ft_three_times_with_members_apart_from_the_sweep_seeds(tmp_path):
    cfg = compose_cfg(tmp_path / "run", ["model=tiny", "arm=lp_ft_ensemble", "seed=4"])
    assert cfg.arm == "lp_ft" and cfg.ensemble.size == 3
    assert train_ensemble.member_seeds(cfg) == [4, 1004, 2004]
    member = train_ensemble.member_config(cfg, 1004, tmp_path / "run")
    assert (member.seed, member.data_seed, member.run_name) == (1004, 0, "lp_ft-tiny-chembl_kinase-s1004")
    assert member.paths.output_dir == str(tmp_path / "run" / "members" / "s1004")
    assert cfg.seed == 4 and cfg.paths.output_dir == str(tmp_path / "run")  # the job's own config untouched
