"""What fails a row of the offline GPU check (its end-to-end run on CPU: tests/integration/test_gpu_bundle.py)."""

import math

import pytest

from delbind.gpucheck.check import MAX_SKIPPED, row_problems, table

PASSING = {"test_easy_auroc": 0.9, "test_hard_auroc": 0.8, "test_hard_auprc": 0.7, "optimizer_steps_skipped": 3,
           "activation_checkpointing": True}  # fmt: skip


def test_a_run_whose_loss_fell_with_finite_metrics_passes():
    assert row_problems(PASSING, 0.69, 0.41, checkpointing=True) == []


@pytest.mark.parametrize(
    ("change", "first", "last", "ckpt", "reason"),
    [
        ({}, 0.69, 0.69, True, "loss did not fall"),
        ({}, 0.69, math.nan, True, "loss did not fall"),
        ({"test_hard_auprc": math.nan}, 0.69, 0.4, True, "not finite"),
        ({"optimizer_steps_skipped": MAX_SKIPPED + 1}, 0.69, 0.4, True, "fp16 skipped 17 steps"),
        ({}, 0.69, 0.4, False, "asked off, ran otherwise"),
    ],
)
def test_each_way_a_row_fails_is_named(change, first, last, ckpt, reason):
    problems = row_problems(PASSING | change, first, last, checkpointing=ckpt)
    assert len(problems) == 1 and reason in problems[0]


def test_the_table_names_the_device_and_every_row():
    result = {
        "device": {"kind": "cuda-fp16", "gpu": "Tesla T4", "machine": "x", "torch": "2.13", "transformers": "5"},
        "bundle": {"commit": "abc1234", "model": "rxnfp_bert"}, "steps": 60, "ok": False,
        "rows": [
            {"mode": "finetune", "precision": "fp16", "checkpointing": True, "status": "ok", "note": "",
             "samples_per_s": 812.4, "peak_memory_mb": 1530.0, "loss_first": 0.69, "loss_last": 0.41,
             "optimizer_steps_skipped": 4, "test_hard_auroc": 0.8, "peak_memory_kind": "cuda_max_allocated"},
            {"mode": "lora", "precision": "fp16", "checkpointing": False, "status": "failed",
             "note": "RuntimeError: boom"},
        ],
        "scoring": {"status": "failed", "note": "no fine-tuned fp32 model to score with (its row failed)"},
    }  # fmt: skip
    text = table(result)
    assert text.startswith("# delbind GPU check: Tesla T4") and "SOME ROWS FAILED" in text
    assert "| finetune | fp16 | on | 812 | 1530 | 0.690 -> 0.410 | 4 | 0.800 | ok |" in text
    assert "| lora | fp16 | off |  |  |  |  |  | failed: RuntimeError: boom |" in text
    assert "Scoring: failed: no fine-tuned fp32 model" in text
