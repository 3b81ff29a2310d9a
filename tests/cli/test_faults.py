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
