"""mode=contrastive end to end on the tiny model: the term trains the trunk (and only what the mode lets train), its
figures reach metrics.json and the logs, and a mode without a trainable trunk refuses it."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from delbind.errors import ConfigError
from delbind.tasks import train
from delbind.training import contrastive
from tests.helpers import assert_saved_model_scores_as_the_run, check_run_dir


def test_contrastive_mode_adds_the_term_to_fine_tuning_only(make_cfg, monkeypatch):
    terms = []
    real = contrastive.supcon_loss

    def recording(embeddings, labels, temperature):
        terms.append((len(labels), int(labels.sum())))
        return real(embeddings, labels, temperature)

    monkeypatch.setattr(contrastive, "supcon_loss", recording)
    cfg = make_cfg("mode=contrastive", "mode.linear_probe.num_train_epochs=2")
    metrics = train.run(cfg)
    run_dir = Path(cfg.paths.output_dir)
    check_run_dir(run_dir, metrics)
    assert metrics["arm"] == "contrastive" and metrics["contrastive_weight"] == 1.0
    assert metrics["contrastive_mining"] == "tanimoto" and metrics["contrastive_nearest_hard_similarity_median"] > 0
    # stage 2 only: one term per fine-tuning step (the probe's steps on cached embeddings have none)
    assert len(terms) == metrics["global_step"]
    assert sum(n for n, _ in terms) == metrics["n_train_per_epoch"] * metrics["epochs"]  # each row once an epoch
    assert sum(binders > 1 for _, binders in terms) >= len(terms) - 1  # binders meet in (nearly) every batch
    state = json.loads(next((run_dir / "checkpoints").glob("checkpoint-*/trainer_state.json")).read_text())
    assert all("contrastive_loss" in row for row in state["log_history"] if "loss" in row)
    assert "forgetting" in metrics  # measured as for every mode (None: the tiny trunk has no MLM head)
    assert_saved_model_scores_as_the_run(run_dir)


def test_the_term_leaves_frozen_groups_bit_identical(make_cfg, initial_weights):
    cfg = make_cfg("mode=partial", "mode.trainable_layers=1", "loss.contrastive.weight=1.0")
    metrics = train.run(cfg)
    assert metrics["contrastive_weight"] == 1.0
    after = load_file(Path(cfg.paths.output_dir) / "model" / "model.safetensors")
    top = max(int(k.split(".")[3]) for k in after if ".layer." in k)
    for key, before in initial_weights.items():
        trains = key.startswith("head.") or f".layer.{top}." in key
        if key in after and not trains:
            assert torch.equal(before, after[key]), key
    assert any(not torch.equal(initial_weights[k], after[k]) for k in after if f".layer.{top}." in k)


def test_a_frozen_trunk_refuses_the_term(make_cfg):
    with pytest.raises(ConfigError, match="mode=frozen trains no trunk weight"):
        train.run(make_cfg("mode=frozen", "loss.contrastive.weight=0.1"))
