"""Activation checkpointing (the GPU memory saver) with each mode's frozen parts, checked on CPU: the gradient reaches
exactly the parameters the mode trains, and equals the one without checkpointing. The known failure it guards
against: with reentrant checkpointing and no input that requires grad, a checkpointed layer above frozen ones gets no
gradient at all (delbind enables it non-reentrant; transformers' reentrant form hooks the embeddings' output)."""

import pytest
import torch

from delbind.models.policies import apply_policy
from tests.helpers import SMILES, mode_cfg, tiny


def _batch(tok) -> dict:
    return dict(tok(SMILES, padding=True, return_tensors="pt"))


def _reached(model, tok) -> set[str]:
    """Names of the parameters a backward pass of one batch gives a non-zero gradient."""
    model.zero_grad(set_to_none=True)
    model.train()
    model(**_batch(tok)).logits.sum().backward()
    return {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}


@pytest.mark.parametrize(
    ("mode", "overrides"),
    [
        ("finetune", {}),
        ("partial", {"trainable_layers": 1}),  # embeddings and layer 0 frozen, under a checkpointed layer 1
        ("partial", {"trainable_layers": 1, "train_embeddings": True}),  # a frozen layer between trained ones
        ("lora", {"lora.dropout": 0.0}),  # frozen trunk weights, adapters inside them (no dropout: comparable)
    ],
)
def test_with_checkpointing_the_gradient_reaches_exactly_what_each_mode_trains(mode, overrides):
    tok, model = tiny(dropout=0.0)
    apply_policy(model, mode_cfg(mode, activation_checkpointing=True, **overrides))
    assert model.trunk.is_activation_checkpointing
    with torch.no_grad():  # LoRA's B starts at zero, which gives A a zero gradient: start it off zero
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(0.01 * torch.randn_like(p))
    trains = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trains and _reached(model, tok) == trains
    torch.manual_seed(0)
    _, plain = tiny(dropout=0.0)
    apply_policy(plain, mode_cfg(mode, activation_checkpointing=False, **overrides))
    plain.load_state_dict(model.state_dict())
    _reached(plain, tok)
    for (name, p), (_, q) in zip(model.named_parameters(), plain.named_parameters()):
        if p.requires_grad:  # checkpointing recomputes the forward: the same gradient, to float precision
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_a_frozen_trunk_refuses_checkpointing_and_auto_leaves_it_off():
    tok, model = tiny(dropout=0.0)
    with pytest.raises(ValueError, match="frozen trunk would backprop through it"):
        apply_policy(model, mode_cfg("frozen", activation_checkpointing=True))
    tok, model = tiny(dropout=0.0)
    apply_policy(model, mode_cfg("frozen", activation_checkpointing="auto"))
    assert not model.trunk.is_activation_checkpointing and _reached(model, tok) == {"head.weight", "head.bias"}


@pytest.mark.parametrize("reentrant", [False, True])
def test_either_checkpointing_form_above_frozen_embeddings_trains_the_layers_above(reentrant):
    """The top layer trains under a frozen embedding layer and a frozen layer 0 whichever way checkpointing is on:
    non-reentrant (what delbind enables) needs no input to require grad; transformers' reentrant form makes the
    embeddings' output require it."""
    tok, model = tiny(dropout=0.0)
    apply_policy(model, mode_cfg("partial", trainable_layers=1, activation_checkpointing=False))
    model.trunk.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": reentrant})
    trains = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(n.startswith("trunk.") for n in trains) and _reached(model, tok) == trains


@pytest.mark.parametrize("mode", ["lp_ft", "contrastive"])
def test_the_second_stage_after_a_probe_checkpoints_and_trains_everything(mode):
    """lp_ft and contrastive train the head alone first (no checkpointing: the trunk is cached), then re-apply their
    own policy to the same model: checkpointing turns on and the gradient reaches every weight."""
    from omegaconf import OmegaConf

    from delbind.arms.lp_ft import PROBE

    tok, model = tiny(dropout=0.0)
    cfg = mode_cfg(mode, activation_checkpointing=True)
    apply_policy(model, OmegaConf.merge(cfg, PROBE))
    assert not model.trunk.is_activation_checkpointing and _reached(model, tok) == {"head.weight", "head.bias"}
    apply_policy(model, cfg)
    assert model.trunk.is_activation_checkpointing
    assert _reached(model, tok) == {n for n, _ in model.named_parameters()}
