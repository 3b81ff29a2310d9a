"""Labelled, split datasets: binders, easy negatives and hard negatives, from a configured source.

Every dataset is one DataFrame with columns ``smiles`` (RDKit canonical), ``label`` (1 binder, 0 not),
``kind`` (``binder`` | ``easy`` | ``hard``), ``split`` (``train`` | ``val`` | ``test``) and ``group``
(the scaffold or other unit that never crosses splits). Every row dropped on the way is counted
in the stats dict that comes with it."""

from __future__ import annotations

from typing import Any

import pandas as pd
from omegaconf import DictConfig

from delbind.data.prepared import read_prepared, read_prepared_external
from delbind.data.sources import SOURCES
from delbind.data.splits import SPLITS
from delbind.errors import DataError

KINDS = ("easy", "hard")
EVAL_SETS = ("val_easy", "val_hard", "test_easy", "test_hard")


def external_sets(cfg: DictConfig, stats: dict[str, Any] | None = None) -> dict[str, pd.DataFrame]:
    """Extra eval sets of the source (smiles, label, kind, + e.g. ``kd``); counts go into ``stats``."""
    if cfg.get("prepared"):
        return read_prepared_external(cfg)
    external = SOURCES.get(cfg.name).external
    return external(cfg, {} if stats is None else stats) if external else {}


def with_external(
    df: pd.DataFrame, external: dict[str, pd.DataFrame], stats: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """The eval frames, plus the external sets appended to ``df`` (split ``external``, never trained on).

    A molecule of an external set is removed from the training split (counted), so held-out scores are
    never on molecules the model was trained on.
    """
    held_out = set().union(*(set(frame["smiles"]) for frame in external.values())) if external else set()
    leak = (df["split"] == "train") & df["smiles"].isin(held_out)
    stats["external_in_train_dropped"] = int(leak.sum())
    df = df[~leak].reset_index(drop=True)
    frames = eval_frames(df)
    parts, start = [df], len(df)
    for name, frame in external.items():
        part = frame.assign(split="external", group=f"external:{name}")
        part.index = pd.RangeIndex(start, start + len(part))
        parts.append(part)
        frames[name] = part
        start += len(part)
    return pd.concat(parts), frames


def build_dataset(cfg: DictConfig, seed: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Build the labelled, split dataset for ``cfg.name`` (or read ``cfg.prepared``) and check it."""
    if cfg.get("prepared"):
        df, stats = read_prepared(cfg)
        check_dataset(df)
        return df, stats
    df, stats = SOURCES.get(cfg.name).build(cfg, seed)
    # kfold: folds tile the set (pool out-of-fold predictions); replicate: overlapping resamples; given: the file's
    stats = {"source": cfg.name, "cv": "kfold", **stats, "folds": int(cfg.folds), "fold": int(cfg.fold)}
    check_dataset(df)
    for split in SPLITS:
        for kind in ("binder", *KINDS):
            stats[f"n_{split}_{kind}"] = int(((df["split"] == split) & (df["kind"] == kind)).sum())
        # binder fraction among binders + negatives: AU-PRC's floor, so splits are comparable only if it agrees
        stats[f"prevalence_{split}"] = stats[f"n_{split}_binder"] / int((df["split"] == split).sum())
    return df.reset_index(drop=True), stats


def check_dataset(df: pd.DataFrame) -> None:
    """Every split needs binders and both kinds of negatives; no group or molecule crosses splits."""
    for split in SPLITS:
        part = df[df["split"] == split]
        missing = [k for k in ("binder", *KINDS) if not (part["kind"] == k).any()]
        if missing:
            raise DataError(
                f"split {split} has no {' / '.join(missing)} molecules ({len(part)} rows): use more data "
                "(data.max_molecules), fewer data.folds, or data.split=random"
            )
    for key in ("group", "smiles"):
        crossing = df.groupby(key)["split"].nunique()
        if (crossing > 1).any():
            raise DataError(f"{(crossing > 1).sum()} {key} values are in more than one split")


def eval_frames(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """``<split>_easy`` / ``<split>_hard`` = binders + that kind of negative, for val and test."""
    return {
        f"{split}_{kind}": df[(df["split"] == split) & df["kind"].isin(["binder", kind])]
        for split in ("val", "test")
        for kind in KINDS
    }


def eval_counts(frames: dict[str, pd.DataFrame]) -> dict[str, int]:
    """``n_<set>_binders`` / ``n_<set>_negatives`` of every val / test eval set (for metrics.json and size guards)."""
    out = {}
    for name in EVAL_SETS:
        labels = frames[name]["label"]
        out[f"n_{name}_binders"], out[f"n_{name}_negatives"] = int((labels == 1).sum()), int((labels == 0).sum())
    return out


def check_eval_sizes(counts: dict[str, int], min_per_class: int, folds: int | None) -> None:
    """Refuse eval sets too small to mean anything: fewer than ``min_per_class`` binders or negatives of a kind.

    With 10 hard negatives a single molecule moves hard AUROC by up to 0.1; the floor keeps one ranking mistake
    from reading as a difference between arms (``eval.min_per_class``; debug subsets lower it explicitly)."""
    small = {k: v for k, v in counts.items() if v < min_per_class}
    if small:
        shown = ", ".join(f"{k.removeprefix('n_')} {v}" for k, v in small.items())
        fewer = f"fewer data.folds (now {folds}) for larger test folds, " if folds else ""
        raise DataError(
            f"eval sets below eval.min_per_class={min_per_class} ({shown}): use {fewer}more data, or lower "
            "eval.min_per_class knowingly (the figures will then be noise-dominated)"
        )
