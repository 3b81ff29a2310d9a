import os
import time

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save_file
from transformers import DataCollatorWithPadding, TrainerState, TrainingArguments, set_seed

from delbind.errors import ResumeError
from delbind.integrity import write_manifest
from delbind.models.tokenizers import tokenize
from delbind.training import BinderTrainer, bce_loss, resolve_precision, resolve_resume
from delbind.training.resume import checkpoint_problem
from tests.helpers import SMILES, tiny


def test_bce_is_fp32_and_matches_formula():
    logits = torch.tensor([2.0, -1.0, 0.5], dtype=torch.bfloat16)
    labels = torch.tensor([1.0, 0.0, 0.0])
    loss = bce_loss(logits, labels)
    assert loss.dtype == torch.float32
    p = torch.sigmoid(logits.float())
    expected = -(labels * p.log() + (1 - labels) * (1 - p).log()).mean()
    torch.testing.assert_close(loss, expected)
    # pos_weight scales only the binder terms
    weighted = bce_loss(logits, labels, pos_weight=3.0)
    expected_w = -(3 * labels * p.log() + (1 - labels) * (1 - p).log()).mean()
    torch.testing.assert_close(weighted, expected_w)


def _weights_after_one_step(tmp_path, batch_size, accumulation, trainer_cls=BinderTrainer):
    set_seed(0)
    tok, model = tiny(dropout=0.0)
    df = pd.DataFrame({"smiles": SMILES * 2, "label": [1, 0, 1, 0, 0, 1, 1, 0]})
    args = TrainingArguments(
        output_dir=str(tmp_path / f"ga{accumulation}"),
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=accumulation,
        max_steps=1,
        optim="sgd",
        learning_rate=1.0,
        lr_scheduler_type="constant",
        weight_decay=0.0,
        max_grad_norm=0.0,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        label_names=["labels"],
        seed=0,
        data_seed=0,
        disable_tqdm=True,
    )
    trainer = trainer_cls(
        model=model, args=args, train_dataset=tokenize(df, tok, 64), data_collator=DataCollatorWithPadding(tok)
    )
    start = {k: v.clone() for k, v in model.state_dict().items()}
    trainer.train()
    return start, model.state_dict()


def test_gradient_accumulation_gives_the_same_update(tmp_path):
    start, one = _weights_after_one_step(tmp_path, batch_size=8, accumulation=1)
    _, two = _weights_after_one_step(tmp_path, batch_size=4, accumulation=2)
    assert not torch.equal(start["head.weight"], one["head.weight"])
    for key in one:
        torch.testing.assert_close(one[key], two[key], atol=1e-6, rtol=1e-5, msg=key)


def test_a_loss_claimed_as_already_scaled_would_double_the_update(tmp_path):
    class Unscaled(BinderTrainer):
        loss_is_scaled_for_ga = True

    start, one = _weights_after_one_step(tmp_path, batch_size=8, accumulation=1)
    _, two = _weights_after_one_step(tmp_path, batch_size=4, accumulation=2, trainer_cls=Unscaled)
    step_one = one["head.bias"] - start["head.bias"]
    step_two = two["head.bias"] - start["head.bias"]
    torch.testing.assert_close(step_two, 2 * step_one, rtol=1e-4, atol=1e-7)


def _trainer(tmp_path, model, tok, **args):
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"), report_to=[], use_cpu=True, label_names=["labels"], disable_tqdm=True, **args
    )
    return BinderTrainer(model=model, args=args, data_collator=DataCollatorWithPadding(tok))


def test_evaluation_keeps_row_order_when_training_groups_by_length(tmp_path):
    tok, model = tiny(dropout=0.0)
    smiles = sorted(SMILES * 3, key=len)  # ascending: a length-grouped sampler would serve the longest first
    df = pd.DataFrame({"smiles": smiles, "label": [i % 2 for i in range(len(smiles))]})
    trainer = _trainer(tmp_path, model, tok, train_sampling_strategy="group_by_length", per_device_eval_batch_size=2)
    out = trainer.predict(tokenize(df, tok, 64))
    with torch.no_grad():
        one_by_one = [model(**tok(s, return_tensors="pt")).logits.item() for s in smiles]
    np.testing.assert_allclose(out.predictions, one_by_one, atol=1e-5)
    assert out.label_ids.tolist() == df["label"].tolist()


def test_length_grouping_is_skipped_for_cached_embeddings(tmp_path):
    tok, model = tiny()
    ds = tokenize(pd.DataFrame({"smiles": SMILES, "label": [1, 0, 1, 0]}), tok, 64)
    trainer = _trainer(tmp_path, model, tok, train_sampling_strategy="group_by_length")
    assert type(trainer._get_train_sampler(ds)).__name__ == "LengthGroupedSampler"
    vectors = ds.remove_columns(["input_ids", "attention_mask"]).add_column("embeddings", [[0.0, 1.0]] * 4)
    assert isinstance(trainer._get_train_sampler(vectors), torch.utils.data.RandomSampler)


@pytest.mark.parametrize(
    ("kind", "auto", "refused"),
    [("cuda-bf16", "bf16", None), ("cuda-fp16", "fp16", "bf16"), ("cpu", "fp32", "fp16")],
)
def test_precision_is_picked_for_every_kind_of_device(monkeypatch, kind, auto, refused):
    from delbind.training import arguments

    monkeypatch.setattr(arguments, "device_kind", lambda: kind)  # the one probe of the hardware
    assert resolve_precision("auto") == auto and resolve_precision("fp32") == "fp32"
    for other in {"fp32", "bf16", "fp16"} - {refused}:
        assert resolve_precision(other) == other
    if refused:
        with pytest.raises(ValueError, match=rf"precision={refused} needs a"):
            resolve_precision(refused)
    with pytest.raises(ValueError, match="choose one of"):
        resolve_precision("fp8")


def test_this_machine_is_probed_once_through_device_kind():
    from delbind.training.arguments import device_kind

    expected = "cpu" if not torch.cuda.is_available() else device_kind()
    assert device_kind() == expected and resolve_precision("auto") == resolve_precision("auto", expected)


def _checkpoint(folder, manifest=True):
    """A complete checkpoint: weights, trainer state and (written last, as BinderTrainer does) the manifest."""
    folder.mkdir(parents=True)
    save_file({"w": torch.ones(3)}, folder / "model.safetensors")
    TrainerState(global_step=int(folder.name.split("-")[1])).save_to_json(str(folder / "trainer_state.json"))
    if manifest:
        write_manifest(folder)
    return folder


def _fake_run(root, name, steps, age_s):
    run = root / name
    for step in steps:
        _checkpoint(run / "checkpoints" / f"checkpoint-{step}")
    t = time.time() - age_s
    os.utime(run, (t, t))
    return run


def test_resume_resolution(tmp_path):
    old = _fake_run(tmp_path, "old", [2], age_s=100)
    new = _fake_run(tmp_path, "new", [2, 4], age_s=10)
    current = tmp_path / "current"
    current.mkdir()
    assert resolve_resume(None, tmp_path, current) is None
    assert resolve_resume(True, tmp_path, current) == str(new / "checkpoints" / "checkpoint-4")
    assert resolve_resume(str(old), tmp_path, current) == str(old / "checkpoints" / "checkpoint-2")
    ckpt = new / "checkpoints" / "checkpoint-2"
    assert resolve_resume(str(ckpt), tmp_path, current) == str(ckpt)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        resolve_resume(str(current), tmp_path, current)
    with pytest.raises(FileNotFoundError, match="no earlier run"):
        resolve_resume(True, current, current)
    newest = _fake_run(tmp_path / "pretrain", "mlm", [8], age_s=1)  # another task's run, newer than every other
    assert resolve_resume(True, tmp_path, current) == str(newest / "checkpoints" / "checkpoint-8")
    assert resolve_resume(True, tmp_path, current, exclude=(tmp_path / "pretrain",)) == str(
        new / "checkpoints" / "checkpoint-4"
    )


def test_resume_skips_damaged_and_unfinished_checkpoints_and_says_why(tmp_path, caplog):
    run = _fake_run(tmp_path, "run", [2, 4], age_s=10)
    ckpts = run / "checkpoints"
    _checkpoint(ckpts / "checkpoint-9", manifest=False)  # from before manifests: checked by loading, usable
    assert resolve_resume(str(run), tmp_path, tmp_path / "current") == str(ckpts / "checkpoint-9")
    (ckpts / "checkpoint-9" / "trainer_state.json").unlink()  # a save killed before its last file
    weights = ckpts / "checkpoint-4" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:40])  # truncated after its manifest was written
    assert resolve_resume(str(run), tmp_path, tmp_path / "current") == str(ckpts / "checkpoint-2")
    assert "checkpoint-9: no trainer_state.json: its save never finished" in caplog.text
    assert "model.safetensors is 40 bytes" in caplog.text
    assert f"resuming from {ckpts / 'checkpoint-2'}, the newest complete checkpoint" in caplog.text
    # a named checkpoint falls back to the newest complete one before it, never a later one
    assert resolve_resume(str(ckpts / "checkpoint-4"), tmp_path, tmp_path / "current") == str(ckpts / "checkpoint-2")
    (ckpts / "checkpoint-2" / "delbind_manifest.json").write_text("{not json")
    with pytest.raises(ResumeError, match="no complete checkpoint there .*checkpoint-2: delbind_manifest.json is unr"):
        resolve_resume(str(run), tmp_path, tmp_path / "current")
    assert checkpoint_problem(ckpts / "checkpoint-4").startswith("model.safetensors is 40 bytes")


def test_trainer_hooks_the_guard_relies_on_still_exist():
    """BinderTrainer overrides these private Trainer methods; a transformers upgrade that renames one fails here."""
    from transformers import Trainer

    for name in ("_get_grad_norm", "_save_checkpoint", "_get_output_dir"):
        assert callable(getattr(Trainer, name, None)), name


def test_skipped_steps_counts_the_steps_the_grad_scaler_dropped():
    from accelerate import Accelerator
    from accelerate.optimizer import AcceleratedOptimizer
    from accelerate.state import AcceleratorState

    from delbind.training.trainer import SkippedSteps

    Accelerator(cpu=True)
    try:
        weight = torch.nn.Parameter(torch.ones(2))
        scaler = torch.amp.GradScaler("cpu")
        optimizer = AcceleratedOptimizer(torch.optim.SGD([weight], lr=0.1), device_placement=False, scaler=scaler)
        counter = SkippedSteps()
        for factor in (float("inf"), 1.0, float("inf"), 1.0):  # an overflowing gradient is dropped, not applied
            optimizer.zero_grad()
            scaler.scale((weight * factor).sum()).backward()
            before = weight.detach().clone()
            optimizer.step()
            counter.on_step_end(None, None, None, optimizer=optimizer)
            assert torch.equal(weight.detach(), before) == (factor == float("inf"))
        assert counter.count == 2
        counter.on_step_end(None, None, None, optimizer=torch.optim.SGD([weight], lr=0.1))  # no scaler: no skips
        assert counter.count == 2
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
