"""Artifacts that prove themselves, run dirs one run owns, readers that skip loudly, a verified best checkpoint."""

import json
import multiprocessing
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from transformers import TrainerState

from delbind import artifacts
from delbind.comparison import compare
from delbind.errors import NoRunsError, RunDirExistsError, UnreadableRunError
from delbind.integrity import MANIFEST, write_manifest
from delbind.rundirs import RUN_MARKER, claim_run_dir, finished_runs
from delbind.training.resume import best_complete
from tests.helpers import write_cv_sweep


def _staged_model(run_dir: Path) -> Path:
    staged = artifacts.staging(run_dir / "model")
    (staged / "model.safetensors").write_bytes(b"w" * 4096)
    (staged / "config.json").write_text("{}")
    return staged


def test_a_model_dir_appears_only_when_published_whole_with_its_manifest(tmp_path):
    claim_run_dir(tmp_path)
    staged = _staged_model(tmp_path)
    assert not (tmp_path / "model").exists()
    with pytest.raises(UnreadableRunError, match="stopped while writing its model/"):
        artifacts.check_finished(tmp_path)
    artifacts.publish(tmp_path / "model")
    assert not staged.exists()
    recorded = json.loads((tmp_path / "model" / MANIFEST).read_text())
    assert set(recorded) == {"model.safetensors", "config.json"} and recorded["model.safetensors"]["size"] == 4096
    with pytest.raises(UnreadableRunError, match=r"did not finish \(no metrics.json"):
        artifacts.check_finished(tmp_path)  # model/ saved, killed before scoring
    (tmp_path / "metrics.json").write_text("{}")
    artifacts.check_finished(tmp_path)
    assert artifacts.verify(tmp_path / "model") == tmp_path / "model"


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete", "no manifest"])
def test_a_damaged_or_unsealed_run_model_is_refused_in_one_line_with_the_fix(tmp_path, damage):
    claim_run_dir(tmp_path)
    _staged_model(tmp_path)
    model = artifacts.publish(tmp_path / "model")
    weights = model / "model.safetensors"
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage == "flip":
        weights.write_bytes(b"x" + weights.read_bytes()[1:])
    elif damage == "delete":
        weights.unlink()
    else:
        (model / MANIFEST).unlink()
    with pytest.raises(UnreadableRunError) as err:
        artifacts.verify(model)
    message = str(err.value)
    assert "\n" not in message and str(model) in message and f"resume={tmp_path}" in message
    expected = {"truncate": "model.safetensors is 100 bytes, 4096 were recorded",
                "flip": "model.safetensors does not match its recorded sha256",
                "delete": "model.safetensors is missing", "no manifest": "has no delbind_manifest.json"}  # fmt: skip
    assert expected[damage] in message


def test_a_model_dir_outside_any_run_is_taken_as_it_is_but_checked_when_it_has_a_manifest(tmp_path):
    external = tmp_path / "downloaded"
    external.mkdir()
    (external / "config.json").write_text("{}")
    assert artifacts.verify(external) == external  # a hub download: nothing recorded to check
    write_manifest(external)
    (external / "config.json").write_text('{"changed": 1}')
    with pytest.raises(UnreadableRunError, match="config.json is 14 bytes, 2 were recorded"):
        artifacts.verify_local(external)
    artifacts.verify_local("some-org/some-hub-model")  # a hub name: nothing local to verify


def _claim(path: str, start: multiprocessing.Event, results: multiprocessing.Queue) -> None:
    start.wait()
    try:
        claim_run_dir(Path(path))
        results.put("won")
    except RunDirExistsError as e:
        results.put(str(e))


def _claim_parts(output: str, start: multiprocessing.Event, results: multiprocessing.Queue) -> None:
    from delbind.scoring.parts import PartStore

    start.wait()
    try:
        PartStore(Path(output)).claim({"input": "library.csv"}, resume=False)
        results.put("won")
    except RunDirExistsError as e:
        results.put(str(e))


def _race(claim, path: Path, n: int = 6) -> tuple[list[str], list[int]]:
    """``n`` processes released together, each calling ``claim`` on ``path``: their outcomes and pids."""
    ctx = multiprocessing.get_context("fork")
    start, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=claim, args=(str(path), start, results)) for _ in range(n)]
    for p in procs:
        p.start()
    start.set()  # released together: each checks and creates at the same moment
    outcomes = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join()
    return outcomes, [p.pid for p in procs]


def test_of_runs_started_together_on_one_dir_exactly_one_claims_it(tmp_path):
    outcomes, pids = _race(_claim, tmp_path / "run")
    assert outcomes.count("won") == 1
    refusals = [o for o in outcomes if o != "won"]
    assert all("already holds a run (claimed by pid" in o and "give a new hydra.run.dir" in o for o in refusals)
    owner = json.loads((tmp_path / "run" / RUN_MARKER).read_text())
    assert owner["pid"] in pids


def test_a_dir_holding_an_older_run_without_a_marker_is_refused_too(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(RunDirExistsError, match="already holds a run;"):
        claim_run_dir(tmp_path)


def _damage(sweep: Path) -> dict[str, str]:
    """Three runs a reader cannot use: a cut metrics.json, a cut predictions.parquet, a run that never finished."""
    (sweep / "1" / "metrics.json").write_text('{"mode": "frozen", "seed": ')
    preds = sweep / "7" / "predictions.parquet"
    preds.write_bytes(preds.read_bytes()[:200])
    (sweep / "99" / ".hydra").mkdir(parents=True)
    return {str(sweep / "1"): "metrics.json is unreadable (JSONDecodeError",
            str(sweep / "7"): "predictions.parquet is unreadable",
            str(sweep / "99"): "no metrics.json: the run did not finish"}  # fmt: skip


def test_readers_leave_unreadable_and_unfinished_runs_out_one_line_each_and_count_them(tmp_path, caplog):
    write_cv_sweep(tmp_path, {"frozen": (1.0, 0.6), "finetune": (2.0, 0.7)})
    expected = _damage(tmp_path)
    runs, skipped = finished_runs([tmp_path])
    assert len(runs) == 10 - 2 and {s.path for s in skipped} == set(expected)
    for s in skipped:
        assert expected[s.path] in s.reason
        assert sum(f"left out: {s.path}: " in r.getMessage() for r in caplog.records) == 1
    table = compare([tmp_path]).markdown()
    assert "Left out: 3 run dir(s), unreadable or unfinished" in table
    assert all(f"`{path}`" in table for path in expected)
    with pytest.raises(UnreadableRunError, match=r"3 run dir\(s\) unreadable or unfinished \(strict\)"):
        finished_runs([tmp_path], strict=True)


def test_no_readable_run_says_how_many_were_left_out(tmp_path):
    (tmp_path / "run" / ".hydra").mkdir(parents=True)
    with pytest.raises(NoRunsError, match=r"1 left out: .*run: no metrics.json"):
        finished_runs([tmp_path])


def _checkpoint(folder: Path, step: int) -> Path:
    ckpt = folder / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    save_file({"w": torch.full((4,), float(step))}, ckpt / "model.safetensors")
    TrainerState(global_step=step).save_to_json(str(ckpt / "trainer_state.json"))
    write_manifest(ckpt)
    return ckpt


def test_the_best_complete_checkpoint_by_its_recorded_evaluation_replaces_a_damaged_best(tmp_path):
    ckpts = {step: _checkpoint(tmp_path, step) for step in (10, 20, 30, 40)}
    history = [{"step": s, "eval_val_hard_auprc": v} for s, v in ((10, 0.5), (20, 0.9), (30, 0.7), (40, 0.6))]
    weights = ckpts[20] / "model.safetensors"
    size = weights.stat().st_size
    weights.write_bytes(weights.read_bytes()[:50])  # the best one, damaged
    skipped: list[str] = []
    found = best_complete(list(ckpts.values()), history, "val_hard_auprc", True, skipped)
    assert found == (ckpts[30], 0.7)
    assert skipped == [f"checkpoint-20: model.safetensors is 50 bytes, {size} were recorded"]
    assert best_complete(list(ckpts.values()), history, "eval_val_hard_auprc", False, [])[0] == ckpts[10]
    assert best_complete([ckpts[20]], history, "val_hard_auprc", True, []) is None


def test_an_ensemble_refuses_a_member_whose_model_changed_since_it_was_made(tmp_path):
    from delbind.scoring.scorers import ensemble_members

    members = []
    for seed in (0, 1):
        run = tmp_path / f"s{seed}"
        claim_run_dir(run)
        _staged_model(run)
        artifacts.publish(run / "model")
        members.append({"run_dir": str(run), "seed": seed, "data_seed": 0})
    digests = {m["run_dir"]: artifacts.manifest_digest(Path(m["run_dir"]) / "model") for m in members}
    ensemble = tmp_path / "ensemble"
    ensemble.mkdir()
    recorded = {"ensemble_members": list(digests), "ensemble_member_models": digests}
    (ensemble / "metrics.json").write_text(json.dumps(recorded))
    assert ensemble_members(ensemble) == list(digests)
    staged = _staged_model(tmp_path / "s1")  # the member retrained: a new model/, sound on its own
    (staged / "config.json").write_text('{"retrained": true}')
    artifacts.publish(tmp_path / "s1" / "model")
    with pytest.raises(UnreadableRunError, match=r"member .*s1 holds another model/ than the one the ensemble"):
        ensemble_members(ensemble)


def test_of_scoring_jobs_started_together_on_one_output_exactly_one_writes_its_parts(tmp_path):
    outcomes, _ = _race(_claim_parts, tmp_path / "s.parquet")
    assert outcomes.count("won") == 1
    assert all("s.parquet.parts" in o for o in outcomes if o != "won")
