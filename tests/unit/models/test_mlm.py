"""Forgetting, measured: the masked-LM loss of a trunk with a saved MLM head, fixed masking, bit for bit."""

import logging
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file
from transformers import AutoConfig, BertForMaskedLM
from transformers.modeling_outputs import MaskedLMOutput

from delbind.models import mlm
from delbind.models.loading import load_tokenizer_and_model
from delbind.models.mlm import (
    MLM_HEAD_FILE,
    _masked_examples,
    build_masked_lm,
    masked_lm_loss,
    mlm_loss,
    mlm_train_loss,
    save_mlm_head,
)
from tests.helpers import SMILES, TINY, tiny, tiny_tokenizer

MOLECULES = SMILES * 5  # enough masked tokens that a changed weight shows


@pytest.fixture(scope="module")
def mlm_dir(tmp_path_factory):
    """A tiny BertForMaskedLM (random init, tied decoder) saved with its tokenizer: a stand-in pretrained model."""
    out = tmp_path_factory.mktemp("tiny_mlm")
    tok = tiny_tokenizer(TINY.config.max_position_embeddings)
    config = AutoConfig.for_model(**TINY.config, vocab_size=len(tok), pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    BertForMaskedLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _trunk(model_dir):
    tok, model = load_tokenizer_and_model(OmegaConf.merge(TINY, {"name_or_path": str(model_dir)}))
    return tok, model.trunk


def test_mlm_loss_cache_gives_the_measured_loss_keyed_by_weights_and_inputs(mlm_dir, tmp_path, monkeypatch, caplog):
    tok, trunk = _trunk(mlm_dir)
    cache = tmp_path / "mlm_loss"
    measured = mlm_loss(trunk, tok, MOLECULES, mlm_dir)
    assert mlm_loss(trunk, tok, MOLECULES, mlm_dir, cache_dir=cache) == measured
    assert len(list(cache.glob("*.json"))) == 1

    runs = []
    real = mlm._loss_of
    monkeypatch.setattr(mlm, "_loss_of", lambda *a: runs.append(1) or real(*a))
    assert mlm_loss(trunk, tok, MOLECULES, mlm_dir, cache_dir=cache) == measured and runs == []  # read, not run
    assert mlm_loss(trunk, tok, MOLECULES, mlm_dir, seed=1, cache_dir=cache) != measured and len(runs) == 1
    assert mlm_loss(trunk, tok, MOLECULES[:-1], mlm_dir, cache_dir=cache) != measured and len(runs) == 2
    with torch.no_grad():
        weight = trunk.encoder.layer[0].output.dense.weight  # changed weights: a new entry, measured
        weight.add_(0.1 * torch.randn(weight.shape, generator=torch.Generator().manual_seed(0)))
    moved = mlm_loss(trunk, tok, MOLECULES, mlm_dir, cache_dir=cache)
    assert moved == mlm_loss(trunk, tok, MOLECULES, mlm_dir) != measured and len(runs) == 4
    assert len(list(cache.glob("*.json"))) == 4

    for entry in cache.glob("*.json"):
        Path(entry).write_text('{"mlm_loss": ')  # damaged: measured again, with a warning, and rewritten
    with caplog.at_level(logging.WARNING, logger="delbind.models.mlm"):
        assert mlm_loss(trunk, tok, MOLECULES, mlm_dir, cache_dir=cache) == moved
    assert "unreadable" in caplog.text and len(runs) == 5
    assert mlm_loss(trunk, tok, MOLECULES, mlm_dir, cache_dir=cache) == moved and len(runs) == 5  # rewritten


def test_mlm_loss_is_fixed_and_moves_with_the_trunk(mlm_dir):
    tok, trunk = _trunk(mlm_dir)
    torch.manual_seed(0)
    state = torch.random.get_rng_state()
    first = mlm_loss(trunk, tok, MOLECULES, mlm_dir)
    assert torch.equal(torch.random.get_rng_state(), state)  # a measurement never moves a training run's RNG
    assert first == mlm_loss(trunk, tok, MOLECULES, mlm_dir)  # same masking, same batches: bit-identical
    assert first != mlm_loss(trunk, tok, MOLECULES, mlm_dir, seed=1)  # the seed is the masking
    # the loss the measured model gives is the pretrained MLM's own: trunk and head both landed where they belong
    reference = masked_lm_loss(BertForMaskedLM.from_pretrained(mlm_dir), tok, MOLECULES)
    assert first == pytest.approx(reference, rel=1e-6)
    with torch.no_grad():
        weight = trunk.encoder.layer[0].output.dense.weight
        weight.add_(0.1 * torch.randn(weight.shape, generator=torch.Generator().manual_seed(0)))
    assert mlm_loss(trunk, tok, MOLECULES, mlm_dir) != first


def test_a_tied_decoder_follows_fine_tuned_embeddings(mlm_dir):
    tok, trunk = _trunk(mlm_dir)
    with torch.no_grad():
        trunk.embeddings.word_embeddings.weight.mul_(1.5)
    model, reason = build_masked_lm(trunk, mlm_dir)
    assert reason is None
    decoder = model.get_output_embeddings().weight
    assert decoder is model.base_model.embeddings.word_embeddings.weight
    torch.testing.assert_close(decoder, trunk.embeddings.word_embeddings.weight)


def test_no_mlm_head_is_none_with_a_reason(tmp_path, caplog):
    tok, classifier = tiny()
    with caplog.at_level(logging.INFO, logger="delbind.models.mlm"):
        assert mlm_loss(classifier.trunk, tok, MOLECULES, None) is None  # `tiny`: a config, no weights
    assert "initialized from a config" in caplog.text
    classifier.save_pretrained(tmp_path)  # a binder classifier's weights: a trunk and a 1-logit head
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="delbind.models.mlm"):
        assert mlm_loss(classifier.trunk, tok, MOLECULES, tmp_path) is None
        assert not save_mlm_head(tmp_path, tmp_path / "run_model")
    assert "holds no MLM head" in caplog.text
    assert not (tmp_path / "run_model" / MLM_HEAD_FILE).exists()


def test_a_saved_head_measures_as_its_source(mlm_dir, tmp_path):
    tok, trunk = _trunk(mlm_dir)
    assert save_mlm_head(mlm_dir, tmp_path / "model")
    head = load_file(tmp_path / "model" / MLM_HEAD_FILE)
    assert "cls.predictions.transform.dense.weight" in head
    assert "cls.predictions.decoder.weight" not in head  # tied: it is the trunk's word embeddings
    assert mlm_loss(trunk, tok, MOLECULES, tmp_path / "model") == mlm_loss(trunk, tok, MOLECULES, mlm_dir)
    assert save_mlm_head(tmp_path / "model", tmp_path / "again")  # a run's model/ passes its head on
    assert load_file(tmp_path / "again" / MLM_HEAD_FILE).keys() == head.keys()


def test_training_loss_is_the_same_gradient_with_accumulation():
    """Two micro-batches of an accumulated batch sum to the one-batch loss (the Trainer passes the batch's count)."""
    logits = torch.randn(4, 7, 11, generator=torch.Generator().manual_seed(0))
    labels = torch.full((4, 7), -100)
    labels[0, 1], labels[0, 3], labels[2, 2], labels[3, 5], labels[3, 6] = 1, 2, 3, 4, 5  # uneven per half
    whole = mlm_train_loss(MaskedLMOutput(logits=logits), labels, num_items_in_batch=5)
    halves = [mlm_train_loss(MaskedLMOutput(logits=logits[i : i + 2]), labels[i : i + 2], 5) for i in (0, 2)]
    torch.testing.assert_close(whole, sum(halves))
    full = torch.nn.functional.cross_entropy(logits.view(-1, 11), labels.view(-1), ignore_index=-100)
    torch.testing.assert_close(whole, full)  # the mean over masked tokens


def test_a_molecule_is_masked_alike_in_every_set():
    """Masks depend on (seed, SMILES) only: runs whose held-out sets differ by a few molecules share the rest."""
    tok = tiny_tokenizer()
    one = _masked_examples(tok, [SMILES[0], SMILES[1]], 0, 0.5, 64)[0]
    other = _masked_examples(tok, [SMILES[2], SMILES[3], SMILES[0]], 0, 0.5, 64)[2]
    assert torch.equal(one["input_ids"], other["input_ids"]) and torch.equal(one["labels"], other["labels"])
    assert (one["labels"] != -100).any()
    reseeded = _masked_examples(tok, [SMILES[0]], 1, 0.5, 64)[0]
    assert not torch.equal(one["labels"], reseeded["labels"])


def test_forgetting_off_measures_nothing_even_for_a_trunk_with_an_mlm_head(mlm_dir, monkeypatch):
    from types import SimpleNamespace

    import pandas as pd

    from delbind.arms import forgetting

    monkeypatch.setattr(forgetting, "mlm_loss", lambda *a, **k: pytest.fail("forgetting is off: no MLM pass"))
    monkeypatch.setattr(forgetting, "heldout_smiles", lambda *a, **k: pytest.fail("no held-out molecules drawn"))
    cfg = OmegaConf.create({"eval": {"forgetting": {"n_molecules": 0, "seed": 0}},
                            "model": {**OmegaConf.to_container(TINY), "name_or_path": str(mlm_dir)}})  # fmt: skip
    tok, model = load_tokenizer_and_model(cfg.model)
    inputs = SimpleNamespace(cfg=cfg, df=pd.DataFrame({"smiles": SMILES}))
    probe = forgetting.ForgettingProbe.measure(inputs, tok, model)
    assert probe.before is None and probe.smiles == [] and probe.embedded is None
    assert probe.after(inputs, tok, model) == {"mlm_loss_before": None, "mlm_loss_after": None, "forgetting": None,
                                               "representation_drift": None}  # fmt: skip


def test_representation_drift_is_zero_for_an_unchanged_trunk_and_grows_with_the_change(mlm_dir, tmp_path):
    from types import SimpleNamespace

    import pandas as pd

    from delbind.arms.forgetting import ForgettingProbe

    cfg = OmegaConf.create({"eval": {"forgetting": {"n_molecules": 64, "seed": 0}}, "paths": {"mlm_loss_cache": None},
                            "model": {**OmegaConf.to_container(TINY), "name_or_path": str(mlm_dir)},
                            "mode": {"trainable_layers": None, "train_embeddings": True, "lora": None}})  # fmt: skip
    tok, model = load_tokenizer_and_model(cfg.model)
    inputs = SimpleNamespace(cfg=cfg, df=pd.DataFrame({"smiles": SMILES}), precision="fp32", run_dir=tmp_path)
    probe = ForgettingProbe.measure(inputs, tok, model)
    assert probe.embedded.shape == (64, TINY.config.hidden_size)
    assert probe.after(inputs, tok, model)["representation_drift"] == pytest.approx(0.0, abs=1e-6)
    drifts = []
    for scale in (0.05, 0.5):  # the trunk's layers moved a little, then a lot
        torch.manual_seed(0)
        _, moved = load_tokenizer_and_model(cfg.model)
        with torch.no_grad():
            for name, p in moved.trunk.named_parameters():
                if ".layer." in name and p.dim() == 2:
                    p.add_(scale * torch.randn_like(p))
        drifts.append(probe.after(inputs, tok, moved)["representation_drift"])
    assert 0 < drifts[0] < drifts[1] <= 1
    cfg.mode = {"trainable_layers": 0, "train_embeddings": False, "lora": None}  # a frozen trunk: drift 0, not run
    frozen = ForgettingProbe.measure(inputs, tok, model)
    assert frozen.frozen and frozen.embedded is None and frozen.after(inputs, tok, moved)["representation_drift"] == 0
