"""A transformer whose head also reads ECFP4 (arm=lp_ft_ecfp): the bits reach the head in training, in the saved
model and in predict.py, and nothing else changes."""

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from delbind.data.chem import ECFP_BITS, ecfp4_matrix
from delbind.errors import ConfigError
from delbind.models.loading import load_tokenizer_and_model
from delbind.scoring.scorers import load_scorer
from delbind.tasks import train
from tests.helpers import TINY


def test_the_head_reads_the_bits_beside_the_pooled_embedding():
    _, model = load_tokenizer_and_model(OmegaConf.merge(TINY, {"fingerprint": "ecfp4"}))
    model.eval()
    ids = torch.tensor([[2, 5, 6, 3]])
    bits = torch.as_tensor(ecfp4_matrix(["CCO"]))
    other = torch.as_tensor(ecfp4_matrix(["c1ccccc1N"]))
    with torch.no_grad():
        a, b = model(ids, fingerprint=bits).logits, model(ids, fingerprint=other).logits
        pooled = model.embed(ids, torch.ones_like(ids))
        by_hand = model.head(torch.cat([pooled, bits.float()], dim=-1)).squeeze(-1)
    assert not torch.equal(a, b)  # the bits move the logit
    torch.testing.assert_close(a, by_hand)  # concatenated after the pooled embedding, into the one linear head
    with pytest.raises(ValueError, match=f"this head reads {ECFP_BITS} ECFP4 bits per molecule; got None"):
        model(ids)


@pytest.mark.parametrize("arm", ["lp_ft_ecfp", "frozen_ecfp"])
def test_a_fingerprint_arm_trains_saves_and_predicts_with_the_bits(make_cfg, tmp_path, arm):
    cfg = make_cfg(f"arm={arm}")
    metrics = train.run(cfg)
    assert metrics["arm"] == arm and np.isfinite(metrics["test_hard_auroc"])
    hidden = cfg.model.config.hidden_size
    if arm == "frozen_ecfp":  # the head alone trains: one weight per embedding feature and per bit, and a bias
        assert metrics["trainable_params"] == hidden + ECFP_BITS + 1
    else:  # the head's weights over the bits train with the rest
        assert metrics["trainable_params"] == metrics["total_params"] > ECFP_BITS
    run_dir = cfg.paths.output_dir
    preds = pd.read_parquet(f"{run_dir}/predictions.parquet").query("eval_set == 'test_hard'")
    scorer = load_scorer(run_dir, precision="fp32", device=torch.device("cpu"))
    np.testing.assert_allclose(scorer.score(preds["smiles"].tolist()), preds["score"], atol=1e-5)


def test_a_fingerprint_head_refuses_smiles_augmentation(make_cfg):
    with pytest.raises(ConfigError, match="model.fingerprint=ecfp4 with SMILES augmentation is not supported"):
        train.run(make_cfg("arm=lp_ft_ecfp", "augment.train_n=1"))
