"""SMILES augmentation (Bjerrum 2017, arXiv 1703.07076): a molecule seen through randomized SMILES of itself.

Training (``augment.train_n``): each training molecule keeps its canonical SMILES and is also seen as ``train_n``
randomized ones per epoch, drawn afresh each epoch and tokenized at access time (:class:`RandomViews`). A stage that
trains on cached frozen-trunk embeddings draws them once instead (the views of epoch 0) and embeds them once through
the cache: re-embedding each epoch would undo the cache. Only training rows are ever drawn from.
Testing (``augment.test_n``): a molecule's score is the mean P(binder) over its canonical SMILES and ``test_n``
randomized ones, for every eval set (:meth:`Augment.tta`) and in ``scripts/predict.py`` (:func:`tta_views`).
Every training draw is fixed by (run seed, stream, epoch, molecule's row, copy), so a rerun draws the same SMILES;
a test-time draw by (run seed, stream, the molecule's SMILES, copy), so a molecule gets the same views, and the same
score, in the run's eval sets and wherever it stands in a library scored later.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import datasets
import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig
from transformers import PreTrainedTokenizerBase, TrainerCallback

from delbind.data.chem import MAX_RDKIT_SEED, randomized_smiles
from delbind.errors import ConfigError
from delbind.models.embeddings import embedding_dataset
from delbind.models.tokenizers import encode, tokenize

TRAIN_STREAM, TEST_STREAM = 1, 2  # training and test-time draws never share a seed

Embedder = Callable[[datasets.Dataset], tuple[np.ndarray, dict[str, Any]]]
Predictor = Callable[[datasets.Dataset, pd.Series], np.ndarray]  # a dataset + its labels -> P(binder) per row


def draw(smiles: str, seed: int, stream: int, epoch: int, row: int, copy: int) -> str:
    """One randomized SMILES of a molecule, the same for the same (seed, stream, epoch, row, copy)."""
    state = np.random.SeedSequence([seed, stream, epoch, row, copy]).generate_state(1)[0]
    return randomized_smiles(smiles, 1, int(state) % MAX_RDKIT_SEED + 1)[0]


def views(molecules: pd.DataFrame, n: int, seed: int, stream: int, epoch: int = 0) -> pd.DataFrame:
    """``n`` randomized SMILES of each molecule (``molecules``: smiles, label; index = row), molecule by molecule,
    as columns smiles, label, row."""
    repeated = molecules.loc[np.repeat(molecules.index.to_numpy(), n)]
    rows, copies = repeated.index.to_numpy(), np.tile(np.arange(n), len(molecules))
    drawn = [draw(s, seed, stream, epoch, int(r), int(c)) for s, r, c in zip(repeated["smiles"], rows, copies)]
    return pd.DataFrame({"smiles": drawn, "label": repeated["label"].to_numpy(), "row": rows})


def view_count(name: str, n: Any) -> int:
    """``n`` when it is a count of randomized SMILES per molecule (0 = off); else a ConfigError naming ``name``."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ConfigError(f"{name}={n!r}: give a count of randomized SMILES per molecule (0 = off)")
    return n


def molecule_key(smiles: str) -> int:
    """A stable 64-bit key of a SMILES string: test-time draws are keyed by the molecule, not by its row."""
    return int.from_bytes(hashlib.blake2b(smiles.encode(), digest_size=8).digest(), "big")


def tta_views(smiles: Sequence[str], n: int, seed: int) -> list[str]:
    """``n`` test-time randomized SMILES of each molecule, molecule by molecule (``n`` x ``len(smiles)``)."""
    unique = list(dict.fromkeys(smiles))  # a molecule listed twice is drawn once
    keyed = pd.DataFrame({"smiles": unique, "label": 0}, index=[molecule_key(s) for s in unique])
    drawn = views(keyed, n, seed, TEST_STREAM)["smiles"].to_numpy().reshape(len(unique), n)
    at = {s: i for i, s in enumerate(unique)}
    return [view for s in smiles for view in drawn[at[s]]]


def tta_mean(canonical: np.ndarray, view_scores: np.ndarray) -> np.ndarray:
    """Each molecule's mean P(binder) over its canonical SMILES (``canonical``) and its views (a row of
    ``view_scores``, one column per view)."""
    return (canonical + view_scores.sum(axis=1)) / (1 + view_scores.shape[1])


class RandomViews(torch.utils.data.Dataset):
    """``n`` randomized SMILES of each training molecule, drawn afresh each epoch and tokenized when accessed."""

    def __init__(self, train: pd.DataFrame, n: int, seed: int, tokenize_one: Callable[[str], Any]):
        self.smiles, self.labels = train["smiles"], train["label"].astype("float32").tolist()
        self.n, self.seed, self.tokenize_one, self.epoch = n, seed, tokenize_one, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.smiles) * self.n

    def smiles_at(self, i: int) -> str:
        k, copy = divmod(i, self.n)
        return draw(self.smiles.iat[k], self.seed, TRAIN_STREAM, self.epoch, int(self.smiles.index[k]), copy)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {**self.tokenize_one(self.smiles_at(i)), "labels": self.labels[i // self.n]}


class DrawEachEpoch(TrainerCallback):
    """Sets the views' epoch before the epoch's first batch is drawn (also the right epoch after a resume)."""

    def __init__(self, random_views: RandomViews):
        self.views = random_views

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.views.set_epoch(int(state.epoch or 0))  # state.epoch = epochs done (+ the fraction of a resumed one)


@dataclass(frozen=True)
class InputSpace:
    """How extra SMILES become a stage's inputs: tokens, or (``embed``: a cached frozen trunk) their embeddings."""

    tokenizer: PreTrainedTokenizerBase
    max_length: int
    embed: Embedder | None = None

    def encode(self, frame: pd.DataFrame) -> tuple[datasets.Dataset, float]:
        """``frame`` (smiles, label) as inputs, and the seconds a cache hit saved (0 on a miss or for tokens):
        wall time + that is the cost from scratch, as ``train_runtime_s`` counts a cached arm's embeddings."""
        tokens = tokenize(frame, self.tokenizer, self.max_length)
        if self.embed is None:
            return tokens, 0.0
        vectors, info = self.embed(tokens)
        saved = info["embedding_s"] if info["embedding_cache_hit"] else 0.0
        return embedding_dataset(vectors, frame["label"].to_numpy()), saved


@dataclass(frozen=True)
class Augment:
    """``augment.train_n`` / ``augment.test_n`` (0 = off), drawn with the run's seed."""

    train_n: int
    test_n: int
    seed: int

    @classmethod
    def from_cfg(cls, cfg: DictConfig) -> Augment:
        train_n, test_n = (view_count(f"augment.{key}", cfg.augment[key]) for key in ("train_n", "test_n"))
        return cls(train_n, test_n, cfg.seed)

    def train_set(
        self, canonical: datasets.Dataset, train: pd.DataFrame, space: InputSpace
    ) -> tuple[torch.utils.data.Dataset, list[TrainerCallback], dict[str, Any]]:
        """The training rows' canonical inputs plus their views, callbacks to pass the Trainer, and facts.

        ``train`` holds the training rows only (smiles, label; index = row): nothing else is ever drawn from.
        """
        facts: dict[str, Any] = {"augment_train_n": self.train_n, "augment_train_draws": None}
        if not self.train_n:
            return canonical, [], facts
        if space.embed is not None:  # cached embeddings: drawn once, embedded once
            start = time.perf_counter()
            extra, saved = space.encode(views(train, self.train_n, self.seed, TRAIN_STREAM))
            facts |= {"augment_train_draws": "fixed", "augment_s": time.perf_counter() - start + saved}
            return datasets.concatenate_datasets([canonical, extra]), [], facts
        random_views = RandomViews(train, self.train_n, self.seed, partial(_encode_one, space))
        facts["augment_train_draws"] = "per_epoch"
        return torch.utils.data.ConcatDataset([canonical, random_views]), [DrawEachEpoch(random_views)], facts

    def tta(
        self, scores: dict[str, np.ndarray], frames: dict[str, pd.DataFrame], space: InputSpace, predict: Predictor
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Each eval set's scores as the mean P(binder) over the canonical SMILES (``scores``) and ``test_n`` views.

        Every molecule in any eval set is drawn once (a binder in val_easy and val_hard gets one score).
        """
        facts: dict[str, Any] = {"augment_test_n": self.test_n}
        if not self.test_n:
            return scores, facts
        start = time.perf_counter()
        molecules = pd.concat([frame[["smiles", "label"]] for frame in frames.values()]).drop_duplicates("smiles")
        drawn = pd.DataFrame({
            "smiles": tta_views(molecules["smiles"].tolist(), self.test_n, self.seed),
            "label": np.repeat(molecules["label"].to_numpy(), self.test_n),
        })  # fmt: skip
        ds, saved = space.encode(drawn)
        view_scores = predict(ds, drawn["label"]).reshape(len(molecules), self.test_n)
        of = pd.DataFrame(view_scores, index=molecules["smiles"].to_numpy())  # a molecule's views' scores
        out = {name: tta_mean(scores[name], of.loc[frame["smiles"]].to_numpy()) for name, frame in frames.items()}
        facts |= {"tta_s": time.perf_counter() - start + saved, "tta_smiles": len(drawn)}
        return out, facts


def _encode_one(space: InputSpace, smiles: str) -> dict[str, Any]:
    return dict(encode(space.tokenizer, smiles, space.max_length))
