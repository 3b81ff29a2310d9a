"""wandb without a network, and secrets kept out of what a run records."""

import socket
import time

from delbind.tracking import REDACTED, init_wandb, redact


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_online_init_without_a_server_falls_back_to_offline_in_seconds(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("WANDB_API_KEY", "fake0123456789abcdef0123456789abcdef0123")
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{_unused_port()}")
    start = time.perf_counter()
    run = init_wandb("online", tmp_path, project="delbind-test", reinit="finish_previous")
    elapsed = time.perf_counter() - start
    try:
        assert run.settings.mode == "offline"
        assert elapsed < 15  # wandb's own online init waited 111 s here before raising CommError
    finally:
        run.finish()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "is unreachable" in warnings[0]
    assert f"upload it later with `wandb sync {tmp_path / 'wandb' / 'offline-run-*'}`" in warnings[0]
    assert list((tmp_path / "wandb").glob("offline-run-*"))


def test_secrets_from_the_environment_are_redacted(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_abcdefghijklmnop")
    monkeypatch.setenv("SHORT_KEY", "1")  # too short to be a credential: never redacts every "1"
    cfg = {"a": {"b": ["x", "Bearer hf_abcdefghijklmnop"]}, "n": 1, "s": "1", "plain": "ok"}
    assert redact(cfg) == {"a": {"b": ["x", REDACTED]}, "n": 1, "s": "1", "plain": "ok"}
