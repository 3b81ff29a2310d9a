"""Faults through the real entry point (scripts/train.py as a subprocess): kills, damaged files, divergence, no network.

Each case states what the user sees (exit code, one line) and what stays usable afterwards.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from delbind.integrity import MANIFEST
from delbind.training.resume import checkpoint_problem
from tests.helpers import ROOT

TEST_METRICS = ["test_easy_auroc", "test_easy_auprc", "test_hard_auroc", "test_hard_auprc", "val_hard_auprc"]
FAKE_KEY = "fake-wandb-key-0123456789abcdef0123456789abcdef"
FAKE_TOKEN = "hf_fakeTokenValue0123456789"


def _cmd(run_dir: Path, *args: str) -> list[str]:
    return [sys.executable, str(ROOT / "scripts" / "train.py"), "model=tiny", "debug=smoke", *args,
            f"hydra.run.dir={run_dir}"]  # fmt: skip


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WANDB_API_KEY", "WANDB_MODE")}
    return {**env, "WANDB_SILENT": "true", "OMP_NUM_THREADS": "1", **extra}


def _train(run_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(_cmd(run_dir, *args), capture_output=True, text=True, env=_env(**env), timeout=600)


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def test_killed_run_resumes_to_the_uninterrupted_result_skipping_damaged_checkpoints(tmp_path):
    whole = _train(tmp_path / "whole", "logger=none")
    assert whole.returncode == 0, whole.stderr[-3000:]
    ckpts = sorted((tmp_path / "whole" / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name[11:]))
    epoch = int(ckpts[0].name[11:])  # steps per epoch of the smoke fold: one checkpoint an epoch, two epochs
    assert [c.name for c in ckpts] == [f"checkpoint-{epoch}", f"checkpoint-{2 * epoch}"]
    mid, last = f"checkpoint-{epoch + epoch // 2}", f"checkpoint-{2 * epoch}"
    assert all((c / MANIFEST).is_file() for c in ckpts)

    # kill -9 once the first checkpoint is complete (its manifest is written last)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        _cmd(killed, "logger=none"), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    first = killed / "checkpoints" / ckpts[0].name / MANIFEST
    deadline = time.time() + 300
    while not first.is_file() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert first.is_file() and not (killed / "metrics.json").exists()

    # two newer checkpoints that must not be used: one whose save was cut short (no trainer state, no manifest),
    # one complete but truncated since
    shutil.copytree(ckpts[1], killed / "checkpoints" / mid)
    for name in ("trainer_state.json", MANIFEST):
        (killed / "checkpoints" / mid / name).unlink()
    shutil.copytree(ckpts[1], killed / "checkpoints" / last)
    weights = killed / "checkpoints" / last / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])

    resumed = _train(tmp_path / "resumed", "logger=none", f"resume={killed}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = (tmp_path / "resumed" / "train.log").read_text()
    assert f"{last} is not usable (model.safetensors is 1000 bytes" in log
    assert f"{mid} is not usable (no trainer_state.json: its save never finished)" in log
    assert f"resuming from {killed / 'checkpoints' / ckpts[0].name}, the newest complete checkpoint" in log
    assert _metrics(tmp_path / "resumed")["resumed_from"] == str(killed / "checkpoints" / ckpts[0].name)
    for key in TEST_METRICS:
        assert abs(_metrics(tmp_path / "resumed")[key] - _metrics(tmp_path / "whole")[key]) < 1e-6, key


def test_divergence_stops_at_the_first_bad_step_in_one_line_and_keeps_the_last_good_checkpoint(tmp_path):
    every_2 = [f"trainer.{k}" for k in ("eval_strategy=steps", "eval_steps=2", "save_strategy=steps", "save_steps=2")]
    proc = _train(tmp_path / "run", "logger=none", "trainer.learning_rate=1e4", *every_2)
    assert proc.returncode == 2
    out = proc.stdout + proc.stderr
    errors = [line for line in out.splitlines() if "DivergedError" in line]
    assert len(errors) == 1 and "Traceback" not in out
    line = errors[0]
    assert "training diverged at step" in line and "precision fp32" in line and "(configured 1e+04)" in line
    assert "Likely causes: a learning rate too high" in line
    good = Path(line.split("last good checkpoint: ")[1].split(" (resume=")[0])
    assert f"(resume={tmp_path / 'run'} with a lower learning rate continues from it)" in line
    step = int(line.split("diverged at step ")[1].split()[0])
    assert good.parent == tmp_path / "run" / "checkpoints" and int(good.name[11:]) < step
    assert checkpoint_problem(good) is None  # complete, and resumable with a lower learning rate
    assert all(torch.isfinite(t).all() for t in load_file(good / "model.safetensors").values())
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_damaged_cache_and_no_network_with_a_key_still_finish_offline_without_leaking_it(tmp_path):
    frozen = ["mode=frozen", f"paths.embedding_cache={tmp_path / 'cache'}"]
    first = _train(tmp_path / "first", "logger=none", *frozen)
    assert first.returncode == 0, first.stderr[-3000:]
    (entry,) = (tmp_path / "cache").glob("*.npy")
    entry.write_bytes(b"\x93NUMPY garbage, not an array")

    with socket.socket() as s:  # a local port nothing listens on: refused at once, no external address involved
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    proc = _train(tmp_path / "run", "logger=wandb", *frozen, WANDB_API_KEY=FAKE_KEY, HF_TOKEN=FAKE_TOKEN,
                  WANDB_BASE_URL=f"http://127.0.0.1:{port}")  # fmt: skip
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out and elapsed < 100  # an online init used to wait 111 s, then raise CommError
    assert f"embedding cache entry {entry} is damaged" in out and "computing it again" in out
    assert _metrics(tmp_path / "run")["embedding_cache_hit"] is False
    wandb_lines = [line for line in out.splitlines() if "is unreachable" in line]
    assert len(wandb_lines) == 1 and "wandb sync" in wandb_lines[0]
    assert list((tmp_path / "run" / "wandb").glob("offline-run-*/run-*.wandb"))
    for path in (tmp_path / "run").rglob("*"):  # configs, logs, the wandb run, metrics: every byte
        if path.is_file():
            data = path.read_bytes()
            assert FAKE_KEY.encode() not in data and FAKE_TOKEN.encode() not in data, path


# --- what delbind reads back: verified or refused in one line; one run per dir ---------------------------------------


def _script(name: str, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "scripts" / f"{name}.py"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=600)


def _one_error_line(proc: subprocess.CompletedProcess, error: str) -> str:
    out = proc.stdout + proc.stderr
    lines = [line for line in out.splitlines() if error in line]
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in out, out[-3000:]
    return lines[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """Two finished runs in one sweep dir: a transformer arm (frozen) and a baseline (ecfp_rf)."""
    root = tmp_path_factory.mktemp("finished")
    for name, arm in (("0", "mode=frozen"), ("1", "arm=ecfp_rf")):
        proc = _train(root / "sweep" / name, "logger=none", arm)
        assert proc.returncode == 0, proc.stderr[-3000:]
    molecules = pd.read_parquet(root / "sweep" / "0" / "predictions.parquet")[["smiles"]].head(20)
    molecules.to_csv(root / "library.csv", index=False)
    return root


def test_damaged_or_unfinished_models_are_refused_by_predict_and_train_in_one_line(finished, tmp_path):
    for name, weights in (("0", "model.safetensors"), ("1", "estimator.joblib")):
        run = shutil.copytree(finished / "sweep" / name, tmp_path / name)
        predict = ("predict", f"model={run}", f"input={finished / 'library.csv'}")
        assert _script(*predict, f"output={tmp_path / f'{name}.parquet'}").returncode == 0  # verified: scores
        (run / "model" / weights).write_bytes((run / "model" / weights).read_bytes()[:500])
        line = _one_error_line(_script(*predict, f"output={tmp_path / f'{name}-cut.parquet'}"), "UnreadableRunError")
        assert f"{run / 'model'}: {weights} is 500 bytes" in line and f"resume={run}" in line
        if name == "0":  # a damaged trunk is refused before it trains anything
            proc = _train(tmp_path / "on-it", "logger=none", "mode=frozen", f"model.name_or_path={run / 'model'}")
            assert f"{weights} is 500 bytes" in _one_error_line(proc, "UnreadableRunError")
        (run / "metrics.json").unlink()  # killed after model/ was saved, before its scores were written
        line = _one_error_line(_script(*predict, f"output={tmp_path / f'{name}-x.parquet'}"), "UnreadableRunError")
        assert f"{run}: the run did not finish (no metrics.json" in line
    assert not list(tmp_path.glob("*-cut.parquet*")) and not list(tmp_path.glob("*-x.parquet*"))


def test_compare_report_and_ensemble_leave_out_cut_runs_by_name_and_strict_stops(finished, tmp_path):
    sweep = shutil.copytree(finished / "sweep", tmp_path / "sweep")
    shutil.copytree(sweep / "0", sweep / "2")
    (sweep / "2" / "metrics.json").write_text('{"arm": "frozen", "seed"')  # a disk filled mid-write
    preds = sweep / "1" / "predictions.parquet"
    preds.write_bytes(preds.read_bytes()[:300])
    proc = _script("compare", str(sweep))
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert f"left out: {sweep / '1'}: predictions.parquet is unreadable" in log and "Traceback" not in log
    assert f"left out: {sweep / '2'}: metrics.json is unreadable (JSONDecodeError" in log
    table = (sweep / "comparison.md").read_text()
    assert "Left out: 2 run dir(s), unreadable or unfinished" in table and table.count("| frozen (") == 1
    assert "2 run dir(s) left out" in _report_text(sweep, tmp_path)
    for script in ("compare", "report", "ensemble"):
        line = _one_error_line(_script(script, str(sweep), "--strict", "--out", str(tmp_path / script)),
                               "UnreadableRunError")  # fmt: skip
        assert "2 run dir(s) unreadable or unfinished (strict)" in line


def _report_text(sweep: Path, tmp_path: Path) -> str:
    proc = _script("report", str(sweep), "--out", str(tmp_path / "report"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return (tmp_path / "report" / "report.html").read_text()


def test_two_runs_started_together_on_one_dir_one_runs_and_the_other_stops_in_one_line(tmp_path):
    run_dir = tmp_path / "run"
    procs = [subprocess.Popen(_cmd(run_dir, "logger=none", "mode=frozen"), env=_env(), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]  # fmt: skip
    done = [(p, *p.communicate(timeout=600)) for p in procs]
    assert sorted(p.returncode for p, _, _ in done) == [0, 2]
    loser = next(subprocess.CompletedProcess(p.args, p.returncode, out, err) for p, out, err in done if p.returncode)
    line = _one_error_line(loser, "RunDirExistsError")
    assert f"{run_dir} already holds a run (claimed by pid" in line
    winner = next(p for p, _, _ in done if p.returncode == 0)
    assert json.loads((run_dir / ".delbind_run").read_text())["pid"] == winner.pid
    assert _metrics(run_dir)["test_hard_auroc"] >= 0  # the one run's files, whole


def test_a_resumed_run_whose_best_checkpoint_is_damaged_ends_on_the_best_complete_one(tmp_path):
    whole = _train(tmp_path / "whole", "logger=none")
    assert whole.returncode == 0, whole.stderr[-3000:]
    last = max((tmp_path / "whole" / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name[11:]))
    best = Path(json.loads((last / "trainer_state.json").read_text())["best_model_checkpoint"])
    shutil.copytree(last, tmp_path / "killed" / "checkpoints" / last.name)  # resumed at its last step
    (best / "model.safetensors").write_bytes(b"")  # the best, in the earlier run dir, damaged since
    other = next(c for c in (tmp_path / "whole" / "checkpoints").glob("checkpoint-*") if c != best)
    resumed = _train(tmp_path / "resumed", "logger=none", f"resume={tmp_path / 'killed'}")
    assert resumed.returncode == 0 and "Traceback" not in resumed.stderr, resumed.stderr[-3000:]
    log = (tmp_path / "resumed" / "train.log").read_text()
    assert f"best checkpoint not usable ({best}: model.safetensors is 0 bytes" in log
    metrics = _metrics(tmp_path / "resumed")
    assert metrics["best_checkpoint"] in (str(other), str(tmp_path / "killed" / "checkpoints" / last.name))
    assert metrics["best_checkpoint_skipped"][0].startswith(f"{best}: model.safetensors is 0 bytes")
