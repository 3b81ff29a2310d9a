"""SMILES augmentation through the real train task (tiny model): what the Trainer trains on, and TTA scores."""

import json
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pytest
import torch
from scipy.special import expit
from transformers import AutoModel, AutoTokenizer

from delbind.data.chem import canonical_smiles
from delbind.errors import ConfigError
from delbind.evaluation import binary_metrics
from delbind.models import augment
from delbind.tasks import train
from delbind.training import BinderTrainer
from tests.helpers import check_run_dir


@pytest.fixture
def trainers(monkeypatch):
    """Every BinderTrainer the arms build (subclasses too), as built (their train_dataset is what training draws
    from)."""
    built = []
    real = BinderTrainer.__init__

    def recording(self, *args, **kwargs):
        real(self, *args, **kwargs)
        built.append(self)

    monkeypatch.setattr(BinderTrainer, "__init__", recording)
    return built


@pytest.fixture
def drawn(monkeypatch):
    """Every set of views drawn (fixed training draws and TTA), by stream, with the molecules they came from."""
    out = []
    real = augment.views

    def recording(molecules, n, seed, stream, epoch=0):
        frame = real(molecules, n, seed, stream, epoch)
        out.append((stream, molecules, frame))
        return frame

    monkeypatch.setattr(augment, "views", recording)
    return out


def _same_molecules(views: pd.DataFrame, molecules: pd.DataFrame) -> bool:
    return canonical_smiles(views["smiles"]) == canonical_smiles(molecules.loc[views["row"], "smiles"])


def test_per_epoch_views_are_training_molecules_drawn_afresh_each_epoch(make_cfg, trainers, monkeypatch):
    served = []  # (epoch, index, smiles) of every view the Trainer's dataloader took
    real_getitem = augment.RandomViews.__getitem__

    def recording(self, i):
        served.append((self.epoch, i, self.smiles_at(i)))
        return real_getitem(self, i)

    monkeypatch.setattr(augment.RandomViews, "__getitem__", recording)
    cfg = make_cfg("augment.train_n=2")
    metrics = train.run(cfg)
    check_run_dir(Path(cfg.paths.output_dir), metrics)
    (trainer,) = trainers
    canonical, views = trainer.train_dataset.datasets  # the canonical training rows, then their views
    assert len(canonical) == metrics["n_train"] and len(views) == 2 * metrics["n_train"]
    assert metrics["n_train_per_epoch"] == 3 * metrics["n_train"] and metrics["augment_train_draws"] == "per_epoch"
    eval_molecules = set(pd.read_parquet(Path(cfg.paths.output_dir) / "predictions.parquet")["smiles"])
    train_molecules = set(views.smiles)
    assert not train_molecules & eval_molecules and len(train_molecules) == metrics["n_train"]
    by_epoch = {e: {i: s for e2, i, s in served if e2 == e} for e in {e for e, _, _ in served}}
    assert sorted(by_epoch) == [0, 1] and all(len(d) == len(views) for d in by_epoch.values())  # 2 epochs, all rows
    for epoch_views in by_epoch.values():
        molecules = canonical_smiles([views.smiles.iat[i // 2] for i in sorted(epoch_views)])
        assert canonical_smiles([epoch_views[i] for i in sorted(epoch_views)]) == molecules  # training molecules
    changed = sum(by_epoch[0][i] != by_epoch[1][i] for i in by_epoch[0])
    assert changed > len(views) // 2  # drawn afresh each epoch


def test_cached_frozen_draws_training_views_once_from_training_rows_only(make_cfg, trainers, drawn):
    cfg = make_cfg("mode=frozen", "augment.train_n=3")
    metrics = train.run(cfg)
    (trainer,) = trainers
    ((stream, molecules, views),) = drawn  # one draw, before training
    assert stream == augment.TRAIN_STREAM and len(views) == 3 * metrics["n_train"] and _same_molecules(views, molecules)
    eval_molecules = set(pd.read_parquet(Path(cfg.paths.output_dir) / "predictions.parquet")["smiles"])
    assert len(molecules) == metrics["n_train"] and not set(molecules["smiles"]) & eval_molecules
    assert isinstance(trainer.train_dataset, datasets.Dataset) and len(trainer.train_dataset) == 4 * metrics["n_train"]
    assert metrics["augment_train_draws"] == "fixed" and metrics["n_train_per_epoch"] == 4 * metrics["n_train"]
    assert metrics["augment_s"] > 0


# Rates that move the tiny model off a constant score on the smoke fold (1e-2 collapses full fine-tuning to one).
LR = {"finetune": 1e-3, "frozen": 1e-2}


@pytest.mark.parametrize("mode", ["finetune", "frozen"])  # tokens, and cached embeddings
def test_tta_score_is_the_mean_of_the_saved_models_scores_over_the_drawn_smiles(make_cfg, drawn, mode):
    cfg = make_cfg(f"mode={mode}", "augment.test_n=3", f"trainer.learning_rate={LR[mode]}")  # spread scores apart
    metrics = train.run(cfg)
    run_dir = Path(cfg.paths.output_dir)
    ((stream, molecules, views),) = drawn
    assert stream == augment.TEST_STREAM and _same_molecules(views, molecules)
    preds = pd.read_parquet(run_dir / "predictions.parquet")
    assert set(molecules["smiles"]) == set(preds["smiles"])  # every eval set's molecules, each drawn once
    tok, model = AutoTokenizer.from_pretrained(run_dir / "model"), AutoModel.from_pretrained(run_dir / "model")

    def score(smiles: str) -> float:  # the saved model alone, one SMILES at a time
        with torch.no_grad():
            return float(expit(model.eval()(torch.tensor([tok(smiles)["input_ids"]])).logits.item()))

    row_of = dict(zip(molecules["smiles"], molecules.index))
    for name in ("val_hard", "test_hard"):
        rows = preds[preds["eval_set"] == name]
        per_smiles = [[score(s), *map(score, views.loc[views["row"] == row_of[s], "smiles"])] for s in rows["smiles"]]
        np.testing.assert_allclose(rows["score"], np.mean(per_smiles, axis=1), rtol=0, atol=1e-6)
        assert np.abs(rows["score"] - np.asarray(per_smiles)[:, 0]).max() > 1e-4  # not just the canonical score
    assert metrics["augment_test_n"] == 3 and metrics["tta_smiles"] == 3 * len(molecules) and metrics["tta_s"] > 0
    on_disk = json.loads((run_dir / "metrics.json").read_text())
    val_hard = preds.query("eval_set == 'val_hard'")  # the recorded val metrics are TTA's, as the test ones
    assert on_disk["val_hard_auprc"] == binary_metrics(val_hard["label"], val_hard["score"])["auprc"]
    assert "val_hard_auprc_canonical" in on_disk


def test_without_augmentation_the_trainer_gets_the_canonical_training_rows(make_cfg, trainers, drawn):
    metrics = train.run(make_cfg("mode=frozen"))
    (trainer,) = trainers
    assert isinstance(trainer.train_dataset, datasets.Dataset) and len(trainer.train_dataset) == metrics["n_train"]
    assert drawn == [] and metrics["augment_train_n"] == metrics["augment_test_n"] == 0
    assert "tta_s" not in metrics and "val_hard_auprc_canonical" not in metrics


def test_a_negative_count_stops_the_run_before_training(make_cfg, trainers):
    with pytest.raises(ConfigError, match="augment.test_n=-1"):
        train.run(make_cfg("augment.test_n=-1"))
    assert trainers == []


@pytest.mark.parametrize("mode", ["partial", "lora", "lp_ft"])
def test_every_transformer_mode_trains_and_scores_with_augmentation(make_cfg, trainers, mode):
    cfg = make_cfg(f"mode={mode}", "augment.train_n=1", "augment.test_n=1")
    metrics = train.run(cfg)
    check_run_dir(Path(cfg.paths.output_dir), metrics)
    assert all(len(t.train_dataset) == 2 * metrics["n_train"] for t in trainers)  # lp_ft: the probe's too
    assert metrics["augment_train_draws"] == "per_epoch" and metrics["tta_smiles"] > 0  # the trunk trains
    if mode == "lp_ft":  # its probe trained on cached embeddings: fixed draws
        assert isinstance(trainers[0].train_dataset, datasets.Dataset)
