"""The frozen-trunk recipe at its own scale: both ways of freezing agree bit for bit, the trunk never moves."""

import numpy as np
import pytest
import torch

from delbind.training.frozen_recipe import TRUNK, frozen_trunk_recipe, run_recipe


@pytest.fixture
def data():
    """A broad pre-training task and a shifted fine-tuning one (as a trunk is pre-trained, then adapted)."""
    rng = np.random.default_rng(7)
    x_pre, x_fine = rng.normal(size=(64, 5)), rng.normal(0.5, 1.0, size=(32, 5))
    w = rng.normal(size=5)
    return x_pre, np.tanh(x_pre @ w), x_fine, np.tanh(x_fine @ w) + 0.3 * x_fine[:, 0]


def test_the_recipe_returns_its_final_fine_tuning_loss_as_a_one_element_array(data):
    loss = frozen_trunk_recipe(0, *data, lr_pre=0.1, lr_fine=0.05, finetune_steps=20)
    assert isinstance(loss, np.ndarray) and loss.shape == (1,) and np.isfinite(loss).all() and loss[0] > 0
    again = frozen_trunk_recipe(0, *data, lr_pre=0.1, lr_fine=0.05, finetune_steps=20)
    other_seed = frozen_trunk_recipe(1, *data, lr_pre=0.1, lr_fine=0.05, finetune_steps=20)
    assert np.array_equal(loss, again) and not np.array_equal(loss, other_seed)  # the seed decides the init
    start = frozen_trunk_recipe(0, *data, lr_pre=0.1, lr_fine=0.05, finetune_steps=0)
    assert loss[0] < start[0]  # fine-tuning the head lowers the fine-tuning loss


@pytest.mark.parametrize("steps", [1, 25])
def test_a_zero_update_group_and_a_mask_over_leaves_give_identical_results(data, steps):
    group = run_recipe(3, *data, lr_pre=0.1, lr_fine=0.05, finetune_steps=steps, freeze="group")
    mask = run_recipe(3, *data, lr_pre=0.1, lr_fine=0.05, finetune_steps=steps, freeze="mask")
    assert np.array_equal(group.loss, mask.loss)
    for name in group.finetuned:
        assert torch.equal(group.finetuned[name], mask.finetuned[name]), name


@pytest.mark.parametrize("freeze", ["group", "mask"])
def test_frozen_leaves_are_bit_identical_after_fine_tuning_and_the_head_moves(data, freeze):
    run = run_recipe(0, *data, lr_pre=0.1, lr_fine=0.05, finetune_steps=10, freeze=freeze)
    for name, before in run.pretrained.items():
        moved = not torch.equal(before, run.finetuned[name])
        assert moved == (name not in TRUNK), name
    full = run_recipe(0, *data, lr_pre=0.1, lr_fine=0.05, finetune_steps=10, freeze=None)
    assert not torch.equal(full.pretrained[TRUNK[0]], full.finetuned[TRUNK[0]])  # unfrozen, the trunk moves
    assert {n: torch.equal(v, run.pretrained[n]) for n, v in full.pretrained.items()} == dict.fromkeys(
        run.pretrained, True
    )  # the same pre-trained model, whichever way it is fine-tuned


def test_bad_input_is_refused(data):
    x_pre, y_pre, x_fine, y_fine = data
    with pytest.raises(ValueError, match="freeze='all'"):
        frozen_trunk_recipe(0, *data, lr_pre=0.1, lr_fine=0.1, finetune_steps=1, freeze="all")
    with pytest.raises(ValueError, match="two \\(n, features\\) arrays"):
        frozen_trunk_recipe(0, x_pre, y_pre, x_fine[:, :3], y_fine, lr_pre=0.1, lr_fine=0.1, finetune_steps=1)
