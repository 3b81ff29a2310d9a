"""Pre-train, then fine-tune: the real pretrain task on the tiny model, its model/ dir loaded by train.py."""

import json
from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer

from delbind.data import build_dataset
from delbind.data.corpus import CORPUS_FILE, heldout_smiles, read_corpus
from delbind.models.mlm import MLM_HEAD_FILE, mlm_loss, save_mlm_head
from delbind.tasks import pretrain, train
from tests.helpers import SMOKE, check_run_dir, compose_cfg


def test_pretrain_then_fine_tune_on_its_trunk(tmp_path):
    cfg = compose_cfg(
        tmp_path / "pretrain",
        [*SMOKE, "trainer.max_steps=6", "trainer.learning_rate=1e-3", f"pretrain.runs_root={tmp_path}"],
        config_name="pretrain",
    )
    metrics = pretrain.run(cfg)
    run_dir = Path(cfg.paths.output_dir)
    assert json.loads((run_dir / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    assert metrics["global_step"] == 6 and metrics["corpus_splits"] == ["train"]
    assert metrics["head_initialized"]  # `tiny` is a config: the MLM head starts fresh
    assert metrics["mlm_loss_after"] < metrics["mlm_loss_before"]  # from scratch, it learns SMILES
    assert metrics["forgetting"] == metrics["mlm_loss_after"] - metrics["mlm_loss_before"]
    assert (run_dir / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert list((run_dir / "checkpoints").glob("checkpoint-*"))

    # The saved model/ alone reproduces the run's final held-out loss, through the public measurement.
    model_dir = run_dir / "model"
    tok, trunk = AutoTokenizer.from_pretrained(model_dir), AutoModel.from_pretrained(model_dir)
    corpus, _ = read_corpus(cfg.corpus, cfg.data, cfg.seed)
    assert (model_dir / CORPUS_FILE).read_text().split() == corpus  # kept beside the model for train.py's check
    heldout = heldout_smiles(cfg.pretrain.heldout_molecules, exclude=set(corpus))
    assert mlm_loss(trunk, tok, heldout, model_dir, max_length=cfg.model.max_length) == metrics["mlm_loss_after"]

    finetune = compose_cfg(tmp_path / "finetune", [*SMOKE, f"model.name_or_path={model_dir}"])
    result = train.run(finetune)
    check_run_dir(Path(finetune.paths.output_dir), result)
    # the run measured forgetting itself and kept the MLM head in model/, so it can be measured from there alone
    fine_dir = Path(finetune.paths.output_dir) / "model"
    assert (fine_dir / MLM_HEAD_FILE).is_file()
    assert result["forgetting"] == result["mlm_loss_after"] - result["mlm_loss_before"] != 0
    fine_trunk = AutoModel.from_pretrained(fine_dir).trunk
    assert not torch.equal(fine_trunk.embeddings.word_embeddings.weight, trunk.embeddings.word_embeddings.weight)
    heldout_of_run = heldout_smiles(
        finetune.eval.forgetting.n_molecules, 0, exclude=set(build_dataset(finetune.data, 0)[0]["smiles"])
    )  # the run's molecules
    assert (
        mlm_loss(fine_trunk, tok, heldout_of_run, fine_dir, max_length=cfg.model.max_length) == result["mlm_loss_after"]
    )
    frozen = train.run(compose_cfg(tmp_path / "frozen", [*SMOKE, "mode=frozen", f"model.name_or_path={model_dir}"]))
    assert frozen["forgetting"] == 0.0  # a frozen trunk forgets nothing, measured
    assert save_mlm_head(model_dir, tmp_path / "copy") and (tmp_path / "copy" / MLM_HEAD_FILE).is_file()
