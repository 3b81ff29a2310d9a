"""What trains under each mode: parameter groups, frozen groups untouched, per-group learning rates, LoRA."""

from pathlib import Path

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf
from transformers import DataCollatorWithPadding, TrainingArguments, set_seed

from delbind.models.policies import apply_policy, learning_rates, merge_adapters, parameter_group
from delbind.models.tokenizers import tokenize
from delbind.training import BinderTrainer
from tests.helpers import SMILES, TINY_MODELS, compose_cfg, mode_cfg, tiny

TINY_LAYERS = 2  # conf/model/tiny.yaml


def trainable(model) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_parameter_groups_by_name():
    assert parameter_group("head.weight") == "head"
    assert parameter_group("trunk.embeddings.word_embeddings.weight") == "embeddings"
    assert parameter_group("trunk.encoder.layer.11.attention.self.query.weight") == "layer_11"
    assert parameter_group("trunk.base_model.model.encoder.layer.3.attention.self.query.lora_A.default.weight") == (
        "layer_3"
    )
    assert parameter_group("trunk.final_layernorm.weight") == "trunk"
    # Marian's encoder (annalog): two embedding tables beside the layers
    assert parameter_group("trunk.embed_tokens.weight") == parameter_group("trunk.embed_positions.weight")
    assert parameter_group("trunk.embed_positions.weight") == "embeddings"
    assert parameter_group("trunk.layers.2.self_attn.q_proj.weight") == "layer_2"


@pytest.mark.parametrize(
    ("mode", "overrides", "expected_groups"),
    [
        ("finetune", {}, {"head", "embeddings", "layer_0", "layer_1"}),
        ("frozen", {}, {"head"}),
        ("partial", {"trainable_layers": 1}, {"head", "layer_1"}),
        ("partial", {"trainable_layers": 1, "train_embeddings": True}, {"head", "layer_1", "embeddings"}),
    ],
)
@pytest.mark.parametrize("arch", TINY_MODELS)
def test_each_modes_trainable_set_by_parameter_name(mode, overrides, expected_groups, arch):
    _, model = tiny(model=arch)
    apply_policy(model, mode_cfg(mode, **overrides))
    names = trainable(model)
    assert {parameter_group(n) for n in names} == expected_groups
    every = {n for n, _ in model.named_parameters() if parameter_group(n) in expected_groups}
    assert names == every  # a group trains whole or not at all
    model.train()
    frozen = [
        m
        for n, m in model.named_modules()
        if n.startswith("trunk.") and not any(p.requires_grad for p in m.parameters())
    ]
    assert all(not m.training for m in frozen if list(m.parameters()))  # frozen groups: dropout off


@pytest.mark.parametrize(("arch", "query"), [("tiny", "query"), ("tiny_annalog", "q_proj")])
def test_lora_trains_adapters_and_head_only_and_merges_to_a_plain_model(arch, query):
    _, model = tiny(model=arch)
    cfg = compose_cfg(Path("/nonexistent/run"), ["mode=lora", f"model={arch}"]).mode  # targets: the model's own
    apply_policy(model, cfg)
    names = trainable(model)
    assert names and all("lora_" in n or n.startswith("head.") for n in names)
    assert any(n.startswith("head.") for n in names) and any(f".{query}.lora_A." in n for n in names)
    assert not any(".intermediate." in n or ".fc1." in n for n in names)  # FFN adapters only when configured
    merge_adapters(model)
    assert not any("lora_" in n or "base_model" in n for n, _ in model.named_parameters())


def test_partial_refuses_more_layers_than_the_trunk_has():
    _, model = tiny()
    with pytest.raises(ValueError, match="trainable_layers=3"):
        apply_policy(model, mode_cfg("partial", trainable_layers=TINY_LAYERS + 1))


def test_layer_decay_and_head_lr_give_each_group_its_rate():
    _, model = tiny()
    rates = learning_rates(model, mode_cfg("finetune", layer_decay=0.5, head_lr=0.01), base_lr=1.0)
    assert rates == {"head": 0.01, "trunk": 0.5, "layer_1": 0.5, "layer_0": 0.25, "embeddings": 0.125}
    assert learning_rates(model, mode_cfg("finetune"), base_lr=1.0) is None  # the stock optimizer
    explicit = OmegaConf.merge(OmegaConf.to_container(mode_cfg("finetune", layer_decay=0.5)), {"group_lr": {"head": 3}})
    assert learning_rates(model, explicit, base_lr=1.0)["head"] == 3.0  # group_lr is applied last
    with pytest.raises(ValueError, match="unknown groups"):
        learning_rates(model, OmegaConf.create({"group_lr": {"layer_7": 0.1}}), base_lr=1.0)


def _train_steps(tmp_path, mode: str, arch: str = "tiny", **overrides):
    """A few AdamW steps with weight decay under ``mode``; (weights before, after, the trainer)."""
    set_seed(0)
    tok, model = tiny(model=arch)
    cfg = mode_cfg(mode, **overrides)
    apply_policy(model, cfg)
    df = pd.DataFrame({"smiles": SMILES * 4, "label": [1, 0] * 8})
    args = TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=4, learning_rate=1e-2,
        weight_decay=0.1, optim="adamw_torch", report_to=[], use_cpu=True, save_strategy="no",
        label_names=["labels"], disable_tqdm=True, lr_scheduler_type="constant",
    )  # fmt: skip
    trainer = BinderTrainer(
        model=model, args=args, train_dataset=tokenize(df, tok, 64), data_collator=DataCollatorWithPadding(tok),
        group_lrs=learning_rates(model, cfg, args.learning_rate),
    )  # fmt: skip
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer.train()
    return before, model.state_dict(), trainer


@pytest.mark.parametrize(("arch", "overrides"), [("tiny", {}), ("tiny", {"layer_decay": 0.5}), ("tiny_annalog", {})])
def test_frozen_groups_are_bit_identical_after_adamw_steps_while_the_others_move(tmp_path, arch, overrides):
    before, after, trainer = _train_steps(tmp_path, "partial", arch, trainable_layers=1, **overrides)
    for name, value in before.items():
        moved = not torch.equal(value, after[name])
        assert moved == (parameter_group(name) in {"head", "layer_1"}), name
    optimized = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    frozen = [p for n, p in trainer.model.named_parameters() if parameter_group(n) not in {"head", "layer_1"}]
    assert frozen and not any(id(p) in optimized for p in frozen)  # no optimizer state, no weight decay
    assert not any(p.grad is not None for p in frozen)


def test_the_optimizer_gets_the_per_group_rates(tmp_path):
    _, _, trainer = _train_steps(tmp_path, "finetune", layer_decay=0.5, head_lr=0.02)
    by_group = {g["group"]: g["initial_lr"] for g in trainer.optimizer.param_groups}
    assert by_group["head"] == 0.02 and by_group["layer_1"] == pytest.approx(5e-3)
    assert by_group["layer_0"] == pytest.approx(2.5e-3) and by_group["embeddings"] == pytest.approx(1.25e-3)
    decays = {(g["group"], g["weight_decay"]) for g in trainer.optimizer.param_groups}
    assert ("head", 0.0) in decays and ("head", 0.1) in decays  # biases and norms never decay


def test_a_model_config_without_attention_modules_gets_berts_names_for_lora():
    cfg = compose_cfg(Path("/nonexistent/run"), ["mode=lora", "model=tiny", "~model.attention_modules"])
    assert list(cfg.mode.lora.target_modules) == ["query", "key", "value"]


@pytest.mark.parametrize("arm, key, rxnfp", [("finetune", "finetune", 1e-4), ("contrastive", "lp_ft", 1e-4),
                                             ("lp_ft_ecfp", "lp_ft", 1e-4), ("partial", "partial", 2e-4),
                                             ("lora", "lora", 2e-3)])  # fmt: skip
def test_a_trunks_own_learning_rate_replaces_the_modes_and_the_command_line_wins(arm, key, rxnfp):
    run = Path("/nonexistent/run")
    assert compose_cfg(run, [f"arm={arm}", "model=tiny"]).trainer.learning_rate == rxnfp  # no rate of its own
    own = compose_cfg(run, [f"arm={arm}", "model=tiny", f"+model.learning_rates.{key}=7e-4"])
    assert own.trainer.learning_rate == 7e-4
    asked = compose_cfg(
        run, [f"arm={arm}", "model=tiny", f"+model.learning_rates.{key}=7e-4", "trainer.learning_rate=3e-5"]
    )
    assert asked.trainer.learning_rate == 3e-5


@pytest.mark.parametrize("arm", ["lp_ft", "contrastive", "lp_ft_ecfp"])
def test_a_trunks_own_probe_rate_sets_lp_fts_stage_1_and_leaves_stage_2_alone(arm):
    run = Path("/nonexistent/run")
    stock = compose_cfg(run, [f"arm={arm}", "model=tiny"])
    assert stock.mode.linear_probe.learning_rate == 1e-2  # rxnfp's
    own = compose_cfg(run, [f"arm={arm}", "model=tiny", "+model.learning_rates.linear_probe=0.3"])
    assert own.mode.linear_probe.learning_rate == 0.3 and own.trainer.learning_rate == stock.trainer.learning_rate
    stage_1 = OmegaConf.merge(own.trainer, own.mode.linear_probe)  # stage 1's trainer, as lp_ft builds it
    assert stage_1.learning_rate == 0.3
    own_rate = "+model.learning_rates.linear_probe=0.3"
    asked = compose_cfg(run, [f"arm={arm}", "model=tiny", own_rate, "mode.linear_probe.learning_rate=0.05"])
    assert asked.mode.linear_probe.learning_rate == 0.05


def test_a_trunks_own_lora_head_rate_sets_loras_head_lr_only_and_the_command_line_wins():
    run = Path("/nonexistent/run")
    assert compose_cfg(run, ["arm=lora", "model=tiny"]).mode.head_lr is None  # rxnfp's: the head at the adapters' rate
    own = compose_cfg(run, ["arm=lora", "model=tiny", "+model.learning_rates.lora_head=3e-2"])
    assert own.mode.head_lr == 3e-2 and own.trainer.learning_rate == 2e-3
    assert compose_cfg(run, ["arm=finetune", "model=tiny", "+model.learning_rates.lora_head=3e-2"]).mode.head_lr is None
    asked = compose_cfg(run, ["arm=lora", "model=tiny", "+model.learning_rates.lora_head=3e-2", "mode.head_lr=1e-2"])
    assert asked.mode.head_lr == 1e-2
