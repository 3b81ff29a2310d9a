"""The modes between frozen and full, end to end through the train task on the tiny model."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from delbind.arms import transformer
from delbind.data.corpus import CORPUS_FILE
from delbind.tasks import train
from tests.helpers import assert_saved_model_scores_as_the_run, check_run_dir


@pytest.mark.parametrize("mode", ["partial", "lora"])
def test_mode_runs_and_its_saved_model_scores_as_the_run(make_cfg, mode):
    cfg = make_cfg(f"mode={mode}", "mode.trainable_layers=1" if mode == "partial" else "mode.lora.r=4")
    metrics = train.run(cfg)
    run_dir = Path(cfg.paths.output_dir)
    check_run_dir(run_dir, metrics)
    assert metrics["arm"] == mode and 0 < metrics["trainable_params"] < metrics["total_params"]
    saved = load_file(run_dir / "model" / "model.safetensors")
    assert not any("lora_" in k or "base_model" in k for k in saved)  # LoRA: merged into plain weights
    assert_saved_model_scores_as_the_run(run_dir)


def test_lp_ft_fine_tunes_from_the_probed_head_and_counts_both_stages(make_cfg, monkeypatch):
    heads = []
    real_fit = transformer.fit

    def recording_fit(inputs, tokenizer, model, *args, **kwargs):
        heads.append(model.head.weight.detach().clone())  # the head each stage starts from
        stage = real_fit(inputs, tokenizer, model, *args, **kwargs)
        heads.append(model.head.weight.detach().clone())  # the best head the stage ends with
        return stage

    monkeypatch.setattr(transformer, "fit", recording_fit)
    cfg = make_cfg("mode=lp_ft", "mode.linear_probe.num_train_epochs=3")
    metrics = train.run(cfg)
    probe_start, probe_end, tune_start, _ = heads
    assert not torch.equal(probe_start, probe_end)  # stage 1 trained the head
    assert torch.equal(probe_end, tune_start)  # stage 2 starts from it
    on_disk = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert on_disk["train_runtime_s"] == pytest.approx(on_disk["probe_runtime_s"] + on_disk["finetune_runtime_s"])
    assert on_disk["probe_epochs"] == 3 and on_disk["probe_val_hard_auprc"] is not None
    assert metrics["trainable_params"] == metrics["total_params"]  # stage 2: every weight
    assert (Path(cfg.paths.output_dir) / "loss_curve_probe.png").is_file()
    # the probe is a candidate of the same selection: the run never ends below it on val
    assert metrics["val_hard_auprc"] >= metrics["probe_val_hard_auprc"] - 1e-6
    # a trunk that stage 2 trained carries the training molecules; one that went back to the probe's does not
    assert (Path(cfg.paths.output_dir) / "model" / CORPUS_FILE).exists() == (not metrics["probe_kept"])


def test_lp_ft_ends_on_the_probe_when_fine_tuning_never_beats_it(make_cfg, monkeypatch):
    ends = []
    real_fit = transformer.fit

    def worse_fine_tuning(inputs, tokenizer, model, *args, **kwargs):
        stage = real_fit(inputs, tokenizer, model, *args, **kwargs)
        ends.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        if len(ends) == 2:  # stage 2: as if no evaluation had beaten the probe
            stage.trainer.state.best_metric = -1.0
        return stage

    monkeypatch.setattr(transformer, "fit", worse_fine_tuning)
    cfg = make_cfg("mode=lp_ft", "mode.linear_probe.num_train_epochs=3", "trainer.learning_rate=1e-3")
    metrics = train.run(cfg)
    probe, tuned = ends
    assert not all(torch.equal(probe[k], tuned[k]) for k in probe)  # stage 2 did move the weights
    assert metrics["probe_kept"]
    saved = load_file(Path(cfg.paths.output_dir) / "model" / "model.safetensors")
    assert all(torch.equal(saved[k], probe[k]) for k in saved)  # the saved model is the probe's, trunk and head
    assert metrics["val_hard_auprc"] == pytest.approx(metrics["probe_val_hard_auprc"], abs=1e-6)
    assert "probe" in metrics["best_checkpoint"]
    # its trunk is the pretrained one, which saw no molecule of the run: nothing to carry into a later run
    assert not (Path(cfg.paths.output_dir) / "model" / CORPUS_FILE).exists()


@pytest.mark.parametrize("arm", ["frozen", "partial", "lora", "contrastive"])
def test_every_recipe_runs_on_the_marian_trunk(make_cfg, arm):
    """annalog's architecture (Marian's encoder: embed_tokens / layers.<i> / q_proj names, no masked-LM form) through
    the recipes whose code reads the trunk's structure: the embedding cache, frozen layers, LoRA targets, two stages."""
    cfg = make_cfg("model=tiny_annalog", f"arm={arm}")
    metrics = train.run(cfg)
    run_dir = Path(cfg.paths.output_dir)
    check_run_dir(run_dir, metrics)
    assert metrics["mlm_loss_before"] is None and metrics["molecules_truncated"] == 0
    assert (metrics["representation_drift"] == 0.0) == (arm == "frozen")  # every trunk reports its drift
    assert_saved_model_scores_as_the_run(run_dir)
