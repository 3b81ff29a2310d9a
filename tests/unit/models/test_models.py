import io
import json

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf
from transformers import AutoModel, AutoTokenizer

from delbind.assets import MOLECULEACE, read_member
from delbind.data.chem import canonical_smiles
from delbind.data.sources.chembl_kinase import MOLECULEACE_DIR
from delbind.errors import ConfigError, ModelLoadError
from delbind.models import BinderClassifier
from delbind.models.loading import load_tokenizer_and_model
from delbind.models.policies import apply_policy, checkpointing_on, count_parameters
from delbind.models.rxnfp import rxnfp_model_dir
from tests.helpers import ROOT, SMILES, TINY, compose_cfg, mode_cfg, tiny, tiny_tokenizer


def test_tiny_tokenizer_round_trips():
    tok = tiny_tokenizer()
    for smi in SMILES + ["F/C=C\\F"]:
        ids = tok(smi)["input_ids"]
        tokens = tok.convert_ids_to_tokens(ids)
        assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
        assert "[UNK]" not in tokens
        assert "".join(tokens[1:-1]) == smi


def test_rxnfp_tokenizer_round_trips_real_smiles_without_unk():
    tok = AutoTokenizer.from_pretrained(rxnfp_model_dir())
    raw = pd.read_csv(io.BytesIO(read_member(MOLECULEACE, MOLECULEACE_DIR + "CHEMBL262_Ki.csv")))["smiles"]
    smiles = [s for s in canonical_smiles(raw) if s]
    assert len(smiles) > 800
    for smi in smiles:
        tokens = tok.convert_ids_to_tokens(tok(smi)["input_ids"])
        assert "[UNK]" not in tokens, smi
        assert "".join(tokens[1:-1]) == smi


def test_rxnfp_conversion_is_a_real_bert():
    model = AutoModel.from_pretrained(rxnfp_model_dir())
    cfg = model.config
    assert (cfg.model_type, cfg.num_hidden_layers, cfg.hidden_size, cfg.vocab_size) == ("bert", 12, 256, 591)
    # pretrained, not random: embedding rows of used tokens differ clearly from a fresh init's scale
    assert model.embeddings.word_embeddings.weight.std() > 0.03


def test_damaged_converted_model_is_converted_again(tmp_path, monkeypatch, caplog):
    from delbind.assets import cache_root

    wheels = cache_root() / "wheels"
    rxnfp_model_dir()  # the wheel is in the real cache (fetched once); the converted copies go to tmp_path
    monkeypatch.setenv("DELBIND_CACHE", str(tmp_path))
    (tmp_path / "wheels").symlink_to(wheels)
    weights = rxnfp_model_dir() / "model.safetensors"
    size = weights.stat().st_size
    weights.write_bytes(b"garbage")
    again = rxnfp_model_dir()
    assert "is damaged (model.safetensors is 7 bytes" in caplog.text and "converting it again" in caplog.text
    assert (again / "model.safetensors").stat().st_size == size
    assert AutoModel.from_pretrained(again).config.hidden_size == 256


def test_mean_pooling_ignores_padding():
    tok, model = tiny("mean")
    model.eval()
    alone = tok(SMILES[:1], return_tensors="pt")
    padded = tok(SMILES, padding=True, return_tensors="pt")
    with torch.no_grad():
        a = model.embed(alone["input_ids"], alone["attention_mask"])[0]
        b = model.embed(padded["input_ids"], padded["attention_mask"])[0]
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("overrides", "pooling"),
    [
        (["mode=finetune"], "mean"),  # chosen on val for finetune and frozen
        (["mode=lp_ft"], "mean"),  # chosen on val too
        (["mode=partial", "model=tiny"], "mean"),  # chosen on CV val over [CLS]
        (["mode=lora"], "mean"),  # chosen on val too
        (["mode=frozen"], "mean"),  # the frozen-trunk arms pool by mean, whatever the model
        (["arm=frozen", "model=chemberta_77m_mlm"], "mean"),
        (["baseline=embeddings_logreg"], "mean"),
        (["arm=embeddings_logreg", "model.pooling=cls"], "cls"),  # the command line still wins
        (["mode=frozen", "model.pooling=cls"], "cls"),
    ],
)
def test_frozen_trunk_arms_default_to_mean_pooling(tmp_path, overrides, pooling):
    assert compose_cfg(tmp_path / "run", overrides).model.pooling == pooling


def test_save_pretrained_loads_on_its_own(tmp_path):
    tok, model = tiny("cls")
    model.eval()
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    again = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(again, BinderClassifier) and again.config.pooling == "cls"
    batch = AutoTokenizer.from_pretrained(tmp_path)(SMILES, padding=True, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).logits, again(**batch).logits)


def test_frozen_mode_freezes_trunk_and_keeps_it_in_eval():
    _, model = tiny()
    apply_policy(model, mode_cfg("frozen"))
    trainable, total = count_parameters(model)
    assert trainable == sum(p.numel() for p in model.head.parameters()) < total
    model.train()
    assert model.training and model.head.training
    assert not any(m.training for m in model.trunk.modules())


def test_frozen_mode_refuses_checkpointing():
    _, model = tiny()
    with pytest.raises(ValueError, match="checkpointing"):
        apply_policy(model, mode_cfg("frozen", activation_checkpointing=True))


def test_checkpointing_auto_follows_the_hardware(monkeypatch):
    for cuda in (True, False):
        monkeypatch.setattr(torch.cuda, "is_available", lambda cuda=cuda: cuda)
        assert checkpointing_on("auto") is cuda
    assert checkpointing_on(True) and not checkpointing_on(False)
    with pytest.raises(ValueError, match="auto, true or false"):
        checkpointing_on("yes")
    _, model = tiny()
    apply_policy(model, mode_cfg("frozen", activation_checkpointing="auto"))
    assert not model.trunk.is_activation_checkpointing  # frozen: never, whatever the hardware


def test_finetune_checkpointing_gives_the_same_gradients():
    tok, plain = tiny(dropout=0.0)
    _, ckpt = tiny(dropout=0.0)
    ckpt.load_state_dict(plain.state_dict())
    apply_policy(ckpt, mode_cfg("finetune", activation_checkpointing=True))
    assert ckpt.trunk.is_activation_checkpointing and not plain.trunk.is_activation_checkpointing
    batch = tok(SMILES, padding=True, return_tensors="pt")
    for m in (plain, ckpt):
        m.train()
        m(**batch).logits.sum().backward()
    for (name, p), q in zip(plain.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=name)


def test_remote_code_in_a_model_dir_is_never_run_unless_the_config_allows_it(tmp_path):
    """A model dir whose config points at its own Python: off by default, so that code is not executed."""
    folder = tmp_path / "custom"
    tiny_tokenizer().save_pretrained(folder)
    marker = tmp_path / "code_ran"
    config = {"model_type": "evil", "auto_map": {"AutoConfig": "cfg.EvilConfig", "AutoModel": "cfg.EvilModel"}}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "cfg.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    model_cfg = OmegaConf.merge(TINY, {"name_or_path": str(folder)})
    assert model_cfg.trust_remote_code is False
    with pytest.raises(ModelLoadError, match="trust_remote_code"):
        load_tokenizer_and_model(model_cfg)
    assert not marker.exists()


def test_missing_local_model_dir_is_one_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    cfg = OmegaConf.merge(TINY, {"name_or_path": str(tmp_path / "empty")})
    with pytest.raises(ModelLoadError, match="not a loadable model dir"):
        load_tokenizer_and_model(cfg)


def test_unreachable_hub_fails_fast_with_how_to(monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    cfg = OmegaConf.merge(TINY, {"name_or_path": "someone/not-cached-model"})
    with pytest.raises(ModelLoadError, match="hf download someone/not-cached-model --local-dir"):
        load_tokenizer_and_model(cfg)


def test_converting_the_default_model_leaves_the_rng_alone(tmp_path, monkeypatch):
    from delbind.assets import RXNFP, fetch_wheel

    monkeypatch.setenv("DELBIND_RXNFP_WHEEL", str(fetch_wheel(RXNFP)))
    monkeypatch.setenv("DELBIND_CACHE", str(tmp_path))  # a cold cache: the conversion runs
    torch.manual_seed(0)
    state = torch.random.get_rng_state()
    assert (rxnfp_model_dir() / "model.safetensors").is_file()
    assert torch.equal(torch.random.get_rng_state(), state)  # a run on a cold cache trains as one on a warm cache


def test_trunk_layers_keeps_the_pretrained_lower_layers_and_pools_their_output(tmp_path):
    rxnfp = OmegaConf.load(ROOT / "conf" / "model" / "rxnfp_bert.yaml")
    tok, model = load_tokenizer_and_model(OmegaConf.merge(rxnfp, {"trunk_layers": 4}))
    assert model.trunk.config.num_hidden_layers == len(model.trunk.encoder.layer) == 4
    full = AutoModel.from_pretrained(rxnfp_model_dir()).eval()
    batch = tok(SMILES, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = full(**batch, output_hidden_states=True).hidden_states[4]  # [0] is the embedding layer's output
        torch.testing.assert_close(model.trunk.eval()(**batch).last_hidden_state, expected)
    model.save_pretrained(tmp_path)  # what predict.py loads: four layers, not twelve with eight random
    assert len(AutoModel.from_pretrained(tmp_path).trunk.encoder.layer) == 4
    for bad in (0, 13, "six"):
        with pytest.raises(ConfigError, match="model.trunk_layers"):
            load_tokenizer_and_model(OmegaConf.merge(rxnfp, {"trunk_layers": bad}))
