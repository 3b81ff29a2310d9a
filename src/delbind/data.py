"""Labelled, split datasets: binders, easy negatives and hard negatives, from a configured source.

Every dataset is one DataFrame with columns ``smiles`` (RDKit canonical), ``label`` (1 binder, 0 not),
``kind`` (``binder`` | ``easy`` | ``hard``), ``split`` (``train`` | ``val`` | ``test``) and ``group``
(the scaffold or other unit that never crosses splits). Every row dropped on the way is counted
in the stats dict that comes with it.
"""

from __future__ import annotations

import importlib
import io
import json
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pandas as pd
from omegaconf import DictConfig
from rdkit import Chem, DataStructs, RDLogger
from rdkit.Chem import rdFingerprintGenerator
from rdkit.Chem.Scaffolds import MurckoScaffold
from transformers import PreTrainedTokenizerBase

from delbind.assets import MOLECULEACE, list_members, read_member

SPLITS = ("train", "val", "test")
KINDS = ("easy", "hard")
MOLECULEACE_DIR = "MoleculeACE/Data/benchmark_data/"
# Kinase targets among the MoleculeACE sets; every other set is a non-kinase target.
KINASE_TARGETS = frozenset(
    {"CHEMBL1862", "CHEMBL2147", "CHEMBL262", "CHEMBL2835", "CHEMBL2971", "CHEMBL4005", "CHEMBL4203"}
)

RDLogger.DisableLog("rdApp.*")  # invalid SMILES are counted and reported, not printed one by one


class DataError(ValueError):
    """The input data cannot make a valid dataset; the message names the problem and the fix."""


def canonical_smiles(smiles: Iterable[str]) -> list[str | None]:
    """RDKit canonical isomeric SMILES, or None where RDKit cannot parse the input."""
    out: list[str | None] = []
    for s in smiles:
        mol = Chem.MolFromSmiles(s) if isinstance(s, str) and s else None
        out.append(Chem.MolToSmiles(mol) if mol is not None else None)
    return out


def scaffold(smiles: str) -> str:
    """Bemis-Murcko scaffold; acyclic molecules are their own group (keyed by their SMILES)."""
    scaf = MurckoScaffold.MurckoScaffoldSmiles(smiles=smiles)
    return scaf if scaf else f"acyclic:{smiles}"


def ecfp4(smiles: Sequence[str]) -> list[Any]:
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    return [gen.GetFingerprint(Chem.MolFromSmiles(s)) for s in smiles]


def max_tanimoto(query: Sequence[str], reference: Sequence[str]) -> np.ndarray:
    """For each query molecule, its highest ECFP4 Tanimoto similarity to any reference molecule."""
    ref = ecfp4(reference)
    return np.array([max(DataStructs.BulkTanimotoSimilarity(fp, ref)) for fp in ecfp4(query)])


def assign_splits(
    groups: pd.Series, fractions: Sequence[float], seed: int, labels: pd.Series | None = None
) -> pd.Series:
    """Assign whole groups to train/val/test so no group is in two splits.

    With ``labels``, groups are dealt within two strata (mostly binders / mostly not), so every split
    keeps about the overall binder fraction and AU-PRC means the same across splits and seeds.
    """
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-6:
        raise DataError(f"data.split_fractions must be three numbers summing to 1, got {list(fractions)}")
    if labels is None:
        return _deal_groups(groups, fractions, seed)
    mostly_binders = groups.map(labels.groupby(groups).mean() >= 0.5)
    strata = [groups[mostly_binders == stratum] for stratum in (False, True)]
    return pd.concat([_deal_groups(part, fractions, seed) for part in strata if len(part)]).reindex(groups.index)


def _deal_groups(groups: pd.Series, fractions: Sequence[float], seed: int) -> pd.Series:
    """Groups too large to fit val or test go to train first; the rest are placed in a seeded random
    order (as chemprop's balanced scaffold split), filling train, then val, then test."""
    n = len(groups)
    sizes = groups.value_counts(sort=False)
    big = sizes[sizes > n * min(fractions[1:]) / 2].sort_values(ascending=False, kind="stable")
    small = sizes.drop(big.index)
    rng = np.random.default_rng(seed)
    order = list(big.index) + list(small.index[rng.permutation(len(small))])
    cap = {"train": fractions[0] * n, "val": fractions[1] * n}
    filled = {"train": 0, "val": 0}
    assigned = {}
    for g in order:
        split = next((s for s in ("train", "val") if filled[s] + sizes[g] <= cap[s]), "test")
        filled[split] = filled.get(split, 0) + sizes[g]
        assigned[g] = split
    return groups.map(assigned)


def _split_groups(smiles: pd.Series, how: str) -> pd.Series:
    if how == "scaffold":
        return smiles.map(scaffold)
    if how == "random":
        return smiles.copy()
    raise DataError(f"data.split={how!r} is not available for this data source: use scaffold or random")


def geometric_mean(values: pd.Series) -> float:
    """Geometric mean, rounded to 10 significant digits so 100 nM stays exactly 100 nM at a threshold."""
    return float(f"{np.exp(np.log(values.to_numpy(dtype=float)).mean()):.10g}")


def _read_moleculeace(target_file: str) -> pd.DataFrame:
    df = pd.read_csv(io.BytesIO(read_member(MOLECULEACE, MOLECULEACE_DIR + target_file)))
    return df.rename(columns={"exp_mean [nM]": "value_nm"})[["smiles", "value_nm"]]


def _canonicalize_frame(df: pd.DataFrame, stats: dict[str, int], prefix: str) -> pd.DataFrame:
    df = df.assign(smiles=canonical_smiles(df["smiles"]))
    stats[f"{prefix}_invalid_smiles_dropped"] = int(df["smiles"].isna().sum())
    return df.dropna(subset=["smiles"])


def _moleculeace_files() -> dict[str, str]:
    """CHEMBL id -> file name for every benchmark set in the wheel."""
    files = {}
    for member in list_members(MOLECULEACE, MOLECULEACE_DIR):
        m = re.fullmatch(r".*/(CHEMBL\d+)_(Ki|EC50)\.csv", member)
        if m:
            files.setdefault(m.group(1), member.rsplit("/", 1)[1])
    return files


def build_chembl_kinase(cfg: DictConfig, seed: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Binders and hard negatives measured against one kinase; easy negatives from non-kinase sets."""
    files = _moleculeace_files()
    if cfg.target not in files:
        raise DataError(f"data.target={cfg.target} is not in MoleculeACE; kinase targets: {sorted(KINASE_TARGETS)}")
    stats: dict[str, Any] = {"target": cfg.target, "target_file": files[cfg.target]}
    raw = _read_moleculeace(files[cfg.target])
    stats["target_rows"] = len(raw)
    raw = _canonicalize_frame(raw, stats, "target")
    # Repeated measurements of one molecule: geometric mean of the values.
    target = raw.groupby("smiles", as_index=False)["value_nm"].agg(geometric_mean)
    stats["target_duplicates_merged"] = len(raw) - len(target)
    binder = target["value_nm"] <= cfg.binder_max_nm
    hard = target["value_nm"] >= cfg.hard_min_nm
    stats["target_between_thresholds_dropped"] = int((~binder & ~hard).sum())
    target = target[binder | hard].assign(label=binder[binder | hard].astype(int))
    target["kind"] = np.where(target["label"] == 1, "binder", "hard")
    if cfg.get("max_molecules"):  # debug subsets: stratified by label so both classes survive
        frac = min(1.0, cfg.max_molecules / len(target))
        target = target.groupby("label", group_keys=False).sample(frac=frac, random_state=seed)
    target["group"] = _split_groups(target["smiles"], cfg.split)
    target["split"] = assign_splits(target["group"], cfg.split_fractions, seed, target["label"])

    easy = _easy_pool(files, target, cfg, seed, stats)
    df = pd.concat([target, _sample_easy(easy, target, cfg, seed, stats)], ignore_index=True)
    return df[["smiles", "label", "kind", "split", "group", "value_nm"]], stats


def _easy_pool(files: dict[str, str], target: pd.DataFrame, cfg: DictConfig, seed: int, stats: dict) -> pd.DataFrame:
    """Ligands of non-kinase targets, unlike every binder, sharing no scaffold group with the target set.

    Only a seeded random subset of ``easy_candidates_per_hard`` x (hard negatives) source rows goes
    through RDKit: the sets hold ~40k ligands and a few hundred are needed.
    """
    others = [f for chembl, f in sorted(files.items()) if chembl not in KINASE_TARGETS]
    pool = pd.concat([_read_moleculeace(f) for f in others], ignore_index=True)
    stats["easy_source_files"] = len(others)
    stats["easy_source_rows"] = len(pool)
    n_candidates = int(cfg.easy_candidates_per_hard * cfg.easy_per_hard * (target["kind"] == "hard").sum())
    pool = pool.sample(n=min(len(pool), max(n_candidates, 1)), random_state=seed)
    stats["easy_candidates"] = len(pool)
    pool = _canonicalize_frame(pool, stats, "easy").drop_duplicates("smiles")
    pool = pool[~pool["smiles"].isin(target["smiles"])]
    sim = max_tanimoto(pool["smiles"].tolist(), target.loc[target["label"] == 1, "smiles"].tolist())
    stats["easy_similar_to_binder_dropped"] = int((sim >= cfg.easy_max_similarity).sum())
    pool = pool[sim < cfg.easy_max_similarity].copy()
    pool["group"] = _split_groups(pool["smiles"], cfg.split)
    overlap = pool["group"].isin(target["group"])
    stats["easy_shared_group_dropped"] = int(overlap.sum())
    pool = pool[~overlap]
    stats["easy_pool"] = len(pool)
    return pool.assign(label=0, kind="easy", value_nm=np.nan)  # never measured against the target


def _sample_easy(pool: pd.DataFrame, target: pd.DataFrame, cfg: DictConfig, seed: int, stats: dict) -> pd.DataFrame:
    """Split the easy pool by group (unless it has a split), then sample each split to ``easy_per_hard`` x hard."""
    if "split" not in pool:
        pool = pool.assign(split=assign_splits(pool["group"], cfg.split_fractions, seed))
    widen = (
        f"data.easy_max_similarity (now {cfg.easy_max_similarity})"
        if "easy_max_similarity" in cfg
        else f"data.easy_candidates_per_hard (now {cfg.easy_candidates_per_hard})"
    )
    parts = []
    for split in SPLITS:
        want = round(cfg.easy_per_hard * int(((target["split"] == split) & (target["kind"] == "hard")).sum()))
        have = pool[pool["split"] == split]
        if len(have) < want:
            raise DataError(
                f"only {len(have)} easy negatives for split {split}, {want} wanted: lower data.easy_per_hard "
                f"or raise {widen}"
            )
        parts.append(have.sample(n=want, random_state=seed))
    return pd.concat(parts)


def _lazy(target: str) -> Callable[..., Any]:
    """``module:function``, imported on first call: those modules import this one's helpers."""
    module, name = target.split(":")
    return lambda *args: getattr(importlib.import_module(module), name)(*args)


BUILDERS = {
    "chembl_kinase": build_chembl_kinase,
    "kindel": _lazy("delbind.kindel:build_kindel"),
    "table": _lazy("delbind.table:build_table"),
}
# Sources with external evaluation sets, scored after training: cfg, stats -> {name: frame}.
EXTERNAL = {"kindel": _lazy("delbind.kindel:heldout_sets")}


def external_sets(cfg: DictConfig, stats: dict[str, Any] | None = None) -> dict[str, pd.DataFrame]:
    """Extra eval sets of the source (smiles, label, kind, + e.g. ``kd``); counts go into ``stats``."""
    if cfg.get("prepared"):
        folder = _prepared_dir(cfg.prepared) / "external"
        return {p.stem: pd.read_parquet(p) for p in sorted(folder.glob("*.parquet"))}
    return EXTERNAL[cfg.name](cfg, stats) if cfg.name in EXTERNAL else {}


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


def write_dataset(out_dir: Path, df: pd.DataFrame, stats: dict[str, Any], external: dict[str, pd.DataFrame]) -> None:
    """``<out_dir>/{train,val,test}.parquet``, ``stats.json`` and ``external/<name>.parquet``."""
    (out_dir / "external").mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        df[df["split"] == split].to_parquet(out_dir / f"{split}.parquet", index=False)
    for name, frame in external.items():
        frame.to_parquet(out_dir / "external" / f"{name}.parquet", index=False)
    (out_dir / "stats.json").write_text(json.dumps(stats, indent=2, default=float))


def _prepared_dir(path: str) -> Path:
    """A prepare_data run dir or its ``dataset/`` folder."""
    folder = Path(path).expanduser()
    folder = folder / "dataset" if (folder / "dataset" / "train.parquet").is_file() else folder
    if not all((folder / f"{split}.parquet").is_file() for split in SPLITS):
        raise DataError(
            f"data.prepared={path} holds no prepared dataset ({', '.join(s + '.parquet' for s in SPLITS)}): "
            "give the run dir of scripts/prepare_data.py"
        )
    return folder


def read_prepared(cfg: DictConfig) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The dataset written by scripts/prepare_data.py, checked against this run's data source."""
    folder = _prepared_dir(cfg.prepared)
    stats = json.loads((folder / "stats.json").read_text()) if (folder / "stats.json").is_file() else {}
    if stats.get("source", cfg.name) != cfg.name:
        raise DataError(
            f"data.prepared={cfg.prepared} was built from data={stats['source']}, this run has data={cfg.name}: "
            f"add data={stats['source']} to the command"
        )
    df = pd.concat([pd.read_parquet(folder / f"{split}.parquet") for split in SPLITS], ignore_index=True)
    return df, {**stats, "prepared_from": str(folder)}


def build_dataset(cfg: DictConfig, seed: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Build the labelled, split dataset for ``cfg.name`` (or read ``cfg.prepared``) and check it."""
    if cfg.get("prepared"):
        df, stats = read_prepared(cfg)
        check_dataset(df)
        return df, stats
    if cfg.name not in BUILDERS:
        raise DataError(f"unknown data source {cfg.name!r}; available: {sorted(BUILDERS)}")
    df, stats = BUILDERS[cfg.name](cfg, seed)
    stats = {"source": cfg.name, **stats}
    check_dataset(df)
    for split in SPLITS:
        for kind in ("binder", *KINDS):
            stats[f"n_{split}_{kind}"] = int(((df["split"] == split) & (df["kind"] == kind)).sum())
    return df.reset_index(drop=True), stats


def check_dataset(df: pd.DataFrame) -> None:
    """Every split needs binders and both kinds of negatives; no group or molecule crosses splits."""
    for split in SPLITS:
        part = df[df["split"] == split]
        missing = [k for k in ("binder", *KINDS) if not (part["kind"] == k).any()]
        if missing:
            raise DataError(
                f"split {split} has no {' / '.join(missing)} molecules ({len(part)} rows): use more data "
                "(data.max_molecules), other data.split_fractions, or data.split=random"
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


def tokenize(df: pd.DataFrame, tokenizer: PreTrainedTokenizerBase, max_length: int) -> datasets.Dataset:
    """Tokenize every molecule once (truncated to ``max_length``); row order matches ``df``."""
    ds = datasets.Dataset.from_dict({"smiles": df["smiles"].tolist(), "labels": df["label"].astype("float32").tolist()})
    return ds.map(
        lambda batch: tokenizer(batch["smiles"], truncation=True, max_length=max_length),
        batched=True,
        remove_columns=["smiles"],
        desc="tokenizing",
    )
