"""KinDEL (Chen et al. 2025): a DNA-encoded library screen against MAPK14 / DDR1, turned into binders,
easy negatives and hard negatives, with DEL-aware splits and the held-out Kd sets.

The files come from the public bucket (anonymous read, cached) or from ``data.source``; the data is
CC BY-NC-SA 4.0 based, so it is fetched from its origin and never re-hosted. Only the rows that end up
in the dataset (binders + sampled negatives) go through RDKit; every rule on the 1M-row screen is
vectorized over whole columns.
"""

from __future__ import annotations

import logging
import os
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from fsspec.callbacks import TqdmCallback
from omegaconf import DictConfig
from scipy import stats

from delbind.assets import cache_root
from delbind.data import (
    SPLITS,
    DataError,
    _sample_easy,
    _split_groups,
    assign_splits,
    canonical_smiles,
)

log = logging.getLogger(__name__)

TARGETS = ("mapk14", "ddr1")
SYNTHONS = ("smiles_a", "smiles_b", "smiles_c")
TARGET_COUNTS = ("seq_target_1", "seq_target_2", "seq_target_3")
MATRIX_COUNTS = ("seq_matrix_1", "seq_matrix_2", "seq_matrix_3")
REQUIRED = ("smiles", "molecule_hash", *SYNTHONS, *TARGET_COUNTS)
SPLIT_NAMES = {"train": "train", "valid": "val", "val": "val", "test": "test"}
HELDOUT = ("ondna", "offdna")
BROWSE_URL = "https://42basepairs.com/browse/s3/kin-del-2024"
# One short try: an unreachable bucket must fail in seconds, not after botocore's retry loop.
S3_CONFIG = {"connect_timeout": 5, "read_timeout": 60, "retries": {"max_attempts": 1}}
_unreachable: dict[str, str] = {}  # bucket -> why; later files skip a bucket that already failed to connect


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Log the wall time and peak RSS of one build stage (scripts/bench_data.py collects these)."""
    start = time.perf_counter()
    yield
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    log.info("kindel stage %s: %.2f s, peak RSS %.0f MB", name, time.perf_counter() - start, rss_mb)


# ---------------------------------------------------------------- files


def _missing(rel: str, reason: str, bucket: str) -> str:
    return (
        f"KinDEL file {rel} is not available ({reason}); it is published at {bucket}/{rel} (anonymous read, "
        f"browse {BROWSE_URL}): download it where there is internet (aws s3 cp --no-sign-request {bucket}/{rel} "
        f"DIR/{rel}) and pass data.source=DIR"
    )


def _filesystem(bucket: str, endpoint_url: str | None) -> Any:
    """Anonymous S3 (one short try) for an ``s3://`` bucket; any other fsspec URL as is (a mirror, a local copy)."""
    protocol = fsspec.utils.get_protocol(bucket)
    if protocol not in ("s3", "s3a"):
        return fsspec.filesystem(protocol)
    import s3fs

    fs = s3fs.S3FileSystem(
        anon=True, skip_instance_cache=True, config_kwargs=S3_CONFIG, client_kwargs={"endpoint_url": endpoint_url}
    )
    fs.retries = 1  # s3fs's own retry loop (default 5) sits on top of botocore's
    return fs


def _download(bucket: str, rel: str, dest: Path, endpoint_url: str | None) -> str | None:
    """Fetch ``bucket/rel`` into ``dest`` (atomic, with a progress bar); None on success, else why it failed."""
    if bucket in _unreachable:
        return _unreachable[bucket]
    try:
        from botocore.exceptions import BotoCoreError, ClientError

        fs = _filesystem(bucket, endpoint_url)
    except ImportError as e:  # s3fs for s3://, or whatever package fsspec needs for the mirror's protocol
        return f"{e.name} is not installed: pip install {e.name}" if e.name else str(e)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    log.info("fetching %s/%s -> %s", bucket, rel, dest)
    progress = TqdmCallback(tqdm_kwargs={"desc": rel, "unit": "B", "unit_scale": True, "unit_divisor": 1024})
    try:
        fs.get(f"{bucket}/{rel}", str(tmp), callback=progress)
        tmp.replace(dest)  # only a complete download enters the cache
    except FileNotFoundError:
        return "not found in the bucket"
    except (OSError, BotoCoreError, ClientError) as e:
        _unreachable[bucket] = f"the bucket is unreachable: {type(e).__name__}"
        return _unreachable[bucket]
    finally:
        tmp.unlink(missing_ok=True)
    return None


def kindel_file(cfg: DictConfig, rel: str, required: bool = True) -> Path | None:
    """Local path of KinDEL file ``rel``: from ``data.source``, else the cache, else fetched from the bucket.

    A missing optional file (split or held-out) gives None and a warning; a missing required one a DataError.
    """
    main = f"{cfg.target}_1M.parquet"
    if cfg.source:
        src = Path(str(cfg.source)).expanduser()
        if not src.exists():
            raise DataError(f"data.source={cfg.source} does not exist: give the directory holding the KinDEL files")
        base = src.parent if src.is_file() else src
        if src.is_file() and rel == main:
            return src
        # Either the bucket's layout (splits/, heldout/) or every file flat in one directory.
        for candidate in (base / rel, base / Path(rel).name):
            if candidate.is_file():
                return candidate
        reason = f"not in data.source={cfg.source}"
    else:
        cached = cache_root() / "kindel" / rel
        if cached.is_file():
            return cached
        reason = _download(cfg.bucket, rel, cached, cfg.get("endpoint_url"))
        if reason is None:
            return cached
    if required:
        raise DataError(_missing(rel, reason, cfg.bucket))
    log.warning("%s; going on without it", _missing(rel, reason, cfg.bucket))
    return None


# ---------------------------------------------------------------- enrichment and labels


def poisson_enrichment(target: np.ndarray, matrix: np.ndarray, confidence: float = 0.95) -> np.ndarray:
    """KinDEL's Poisson enrichment per row: lower bound of the target rate / upper bound of the matrix rate.

    ``target`` and ``matrix`` are (rows, replicates) counts; each sum k over n replicates gets the exact
    Poisson interval from the chi-square distribution, [chi2(a/2, 2k) / 2n, chi2(1 - a/2, 2k + 2) / 2n].
    """
    alpha = 1 - confidence
    n = target.shape[1]
    k_t, k_m = target.sum(axis=1), matrix.sum(axis=1)
    # Counts are small integers: evaluate the quantiles once per distinct sum, then broadcast.
    kt_vals, kt_idx = np.unique(k_t, return_inverse=True)
    km_vals, km_idx = np.unique(k_m, return_inverse=True)
    lower = np.where(kt_vals > 0, stats.chi2.ppf(alpha / 2, 2 * np.maximum(kt_vals, 1)) / (2 * n), 0.0)
    upper = stats.chi2.ppf(1 - alpha / 2, 2 * km_vals + 2) / (2 * n)
    return lower[kt_idx.ravel()] / upper[km_idx.ravel()]


def read_screen(path: Path) -> dict[str, Any]:
    """The screen's label-relevant columns as arrays; SMILES and hashes stay in Arrow until rows are chosen."""
    names = pq.read_schema(path).names
    missing = [c for c in REQUIRED if c not in names]
    if "target_enrichment" not in names:
        missing += [c for c in MATRIX_COUNTS if c not in names]
    if missing:
        raise DataError(
            f"{path} lacks columns {missing}: it must be a KinDEL screen file ({', '.join(REQUIRED)}, "
            "seq_matrix_1..3 or target_enrichment)"
        )
    counts = [c for c in (*TARGET_COUNTS, *MATRIX_COUNTS) if c in names]
    extra = ["target_enrichment"] if "target_enrichment" in names else []
    table = pq.read_table(path, columns=[*SYNTHONS, *counts, *extra], read_dictionary=list(SYNTHONS))
    screen: dict[str, Any] = {"path": path, "n": table.num_rows}
    for col in SYNTHONS:  # dictionary-encoded: integer codes, no per-row strings
        cat = table.column(col).to_pandas()
        screen[col] = cat.cat.codes.to_numpy()
    for col in (*counts, *extra):
        screen[col] = table.column(col).to_numpy(zero_copy_only=False)
    return screen


def enrichment_of(screen: dict[str, Any]) -> np.ndarray:
    """``target_enrichment`` where the file has it, else the same Poisson enrichment from the counts."""
    if "target_enrichment" in screen:
        return np.asarray(screen["target_enrichment"], dtype=float)
    stack = lambda cols: np.column_stack([screen[c] for c in cols]).astype(np.int64)  # noqa: E731
    return poisson_enrichment(stack(TARGET_COUNTS), stack(MATRIX_COUNTS))


def _pair_keys(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> list[np.ndarray]:
    """The three disynthons (a+b, a+c, b+c) of each row as int64 keys, one array per synthon pair."""
    a, b, c = (x.astype(np.int64) for x in (a, b, c))
    width = np.int64(max(int(a.max(initial=0)), int(b.max(initial=0)), int(c.max(initial=0))) + 1)
    return [a * width + b, a * width + c, b * width + c]


def label_rules(screen: dict[str, Any], enrichment: np.ndarray, cfg: DictConfig, st: dict[str, Any]) -> np.ndarray:
    """Per row: ``binder``, ``hard``, ``easy`` or ``""`` (dropped), with a count for every rule in ``st``."""
    n = screen["n"]
    codes = [screen[c] for c in SYNTHONS]
    has_synthons = np.logical_and.reduce([c >= 0 for c in codes])
    st["missing_synthon_dropped"] = int((~has_synthons).sum())
    reads = np.column_stack([screen[c] for c in TARGET_COUNTS]).sum(axis=1)
    n_top = int(np.ceil(cfg.pos_fraction * n))
    top = np.zeros(n, dtype=bool)
    top[np.argsort(-enrichment, kind="stable")[:n_top]] = True  # exact fraction; ties by file order
    binder = top & (reads >= cfg.min_target_count) & has_synthons
    st["top_fraction_rows"] = int(top.sum())
    st["top_low_reads_dropped"] = int((top & (reads < cfg.min_target_count)).sum())
    st["binders_found"] = int(binder.sum())
    if not binder.any():
        raise DataError(
            f"no binders: none of the top {cfg.pos_fraction:.3%} by enrichment has >= {cfg.min_target_count} target "
            "reads; lower data.min_target_count or raise data.pos_fraction"
        )
    threshold = float(np.quantile(enrichment, cfg.neg_quantile))
    pool = (enrichment <= threshold) & ~binder & has_synthons
    st["neg_threshold_enrichment"] = threshold
    st["neg_pool"] = int(pool.sum())
    st["between_thresholds_dropped"] = int((~binder & ~pool & has_synthons).sum())
    shares_pair = np.zeros(n, dtype=bool)
    for keys in _pair_keys(*codes):
        shares_pair |= np.isin(keys, keys[binder])
    shares_any = np.logical_or.reduce([np.isin(c, c[binder]) for c in codes])
    hard, easy = pool & shares_pair, pool & ~shares_any
    st["pool_hard"] = int(hard.sum())
    st["pool_easy"] = int(easy.sum())
    st["pool_one_synthon_dropped"] = int((pool & shares_any & ~shares_pair).sum())
    if not hard.any() or not easy.any():
        raise DataError(
            f"no {'hard' if not hard.any() else 'easy'} negatives: {st['pool_hard']} pool members share a disynthon "
            f"with a binder, {st['pool_easy']} share no synthon; fewer binders (lower data.pos_fraction, raise "
            "data.min_target_count) or a larger pool (raise data.neg_quantile) change that"
        )
    kind = np.full(n, "", dtype=object)
    kind[binder], kind[hard], kind[easy] = "binder", "hard", "easy"
    return kind


# ---------------------------------------------------------------- rows, splits, dataset


def _sample_idx(idx: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(idx, size=min(n, len(idx)), replace=False))


def choose_rows(
    kind: np.ndarray, split_col: np.ndarray | None, cfg: DictConfig, seed: int, st: dict[str, Any]
) -> np.ndarray:
    """Row numbers that go on: binders (capped by ``max_molecules``), sampled hard negatives, easy candidates.

    With a split per row, easy candidates are drawn per split, in proportion to that split's hard negatives.
    """
    rng = np.random.default_rng(seed)
    binders = np.flatnonzero(kind == "binder")
    n_hard = round(cfg.hard_per_binder * len(binders))
    if cfg.get("max_molecules"):  # debug subsets: keep the binder:hard ratio
        share = min(1.0, cfg.max_molecules / (len(binders) + n_hard))
        binders = _sample_idx(binders, max(1, round(share * len(binders))), rng)
        n_hard = round(share * n_hard)
    hard = _sample_idx(np.flatnonzero(kind == "hard"), n_hard, rng)
    per_hard = cfg.easy_candidates_per_hard * cfg.easy_per_hard
    if split_col is None:
        easy = _sample_idx(np.flatnonzero(kind == "easy"), round(per_hard * len(hard)), rng)
    else:
        easy = np.concatenate(
            [
                _sample_idx(
                    np.flatnonzero((kind == "easy") & (split_col == s)),
                    round(per_hard * (split_col[hard] == s).sum()),
                    rng,
                )
                for s in SPLITS
            ]
        )
    st.update({"binders_used": len(binders), "hard_sampled": len(hard), "easy_candidates": len(easy)})
    return np.concatenate([binders, hard, easy])


def rows_frame(screen: dict[str, Any], rows: np.ndarray, kind: np.ndarray, enrichment: np.ndarray) -> pd.DataFrame:
    """The chosen rows with their strings, read from the file only for those rows."""
    table = pq.read_table(screen["path"], columns=["smiles", "molecule_hash", *SYNTHONS]).take(rows)
    df = table.to_pandas()
    for col in ("smiles", "molecule_hash", *SYNTHONS):
        df[col] = df[col].astype(str)
    return df.assign(row=rows, kind=kind[rows], enrichment=enrichment[rows])


def synthon_partition(screen: dict[str, Any], fractions: list[float], seed: int) -> np.ndarray:
    """A disynthon split per screen row: ``train``/``val``/``test``, or ``""`` where the row cannot be placed.

    Each position's synthons are dealt (seeded) into three parts; a molecule goes to a split only when all
    three of its synthons are in that split's part, so every disynthon it holds belongs to that split alone.
    Mixed molecules are dropped. Part sizes are cube roots of the fractions, so kept rows follow the fractions.
    """
    rng = np.random.default_rng(seed)
    p = np.cbrt(np.asarray(fractions, dtype=float))
    parts = [rng.choice(3, size=int(screen[c].max(initial=0)) + 1, p=p / p.sum())[screen[c]] for c in SYNTHONS]
    same = (parts[0] == parts[1]) & (parts[1] == parts[2])
    return np.where(same, np.array(SPLITS, dtype=object)[parts[0]], "")


def kindel_splits(cfg: DictConfig, n_rows: int) -> np.ndarray | None:
    """KinDEL's own split (``split<index>`` of ``splits/{target}_{split}.parquet``) per screen row, if present."""
    if cfg.split not in ("random", "disynthon") or not cfg.use_kindel_splits:
        return None
    path = kindel_file(cfg, f"splits/{cfg.target}_{cfg.split}.parquet", required=False)
    if path is None:
        return None
    col = f"split{cfg.split_index}"
    if col not in pq.read_schema(path).names:
        raise DataError(f"{path} has no column {col}: data.split_index must be 1..5")
    values = pd.read_parquet(path, columns=[col])[col]
    if len(values) != n_rows:
        raise DataError(
            f"{path} has {len(values)} rows but the screen file has {n_rows}: use matching files, or "
            "data.use_kindel_splits=false to compute the split"
        )
    mapped = values.map(SPLIT_NAMES)
    if mapped.isna().any():
        raise DataError(f"{path} column {col} holds {sorted(set(values[mapped.isna()]))}; expected train/valid/test")
    return mapped.to_numpy()


def build_kindel(cfg: DictConfig, seed: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Binders, hard and easy negatives from the KinDEL screen of ``data.target``, split as configured."""
    if cfg.target not in TARGETS:
        raise DataError(f"data.target={cfg.target} is not a KinDEL target: use one of {list(TARGETS)}")
    st: dict[str, Any] = {"target": cfg.target}
    path = kindel_file(cfg, f"{cfg.target}_1M.parquet")
    with stage("read"):
        screen = read_screen(path)
    st["rows_read"] = screen["n"]
    with stage("enrichment"):
        enrichment = enrichment_of(screen)
    st["enrichment_from"] = "target_enrichment" if "target_enrichment" in screen else "counts"
    with stage("labels"):
        kind = label_rules(screen, enrichment, cfg, st)
        split_col = kindel_splits(cfg, screen["n"])
        st["split_from"] = "computed" if split_col is None else f"kindel split{cfg.split_index}"
        if split_col is None and cfg.split == "disynthon":
            split_col = synthon_partition(screen, cfg.split_fractions, seed)
        if split_col is not None:  # placed per screen row, before sampling, so samples fill every split
            unplaced = (split_col == "") & (kind != "")
            st["disynthon_mixed_dropped"] = int(unplaced.sum())
            kind = np.where(unplaced, "", kind)
        rows = choose_rows(kind, split_col, cfg, seed, st)
    with stage("smiles"):
        df = rows_frame(screen, rows, kind, enrichment)
        df = _canonical(df, st)
    with stage("split"):
        df = _split(df, split_col, cfg, seed, st)
    cols = ["smiles", "label", "kind", "split", "group", "molecule_hash", *SYNTHONS, "enrichment"]
    return df[cols], st


def _canonical(df: pd.DataFrame, st: dict[str, Any]) -> pd.DataFrame:
    """RDKit canonical SMILES for the chosen rows; invalid ones and repeated molecules dropped and counted."""
    df = df.assign(smiles=canonical_smiles(df["smiles"]))
    st["invalid_smiles_dropped"] = int(df["smiles"].isna().sum())
    df = df.dropna(subset=["smiles"])
    # One molecule reached by two synthon combinations keeps its highest-ranked role (binder first).
    order = df["kind"].map({"binder": 0, "hard": 1, "easy": 2})
    deduped = df.assign(_o=order).sort_values(["_o", "row"]).drop_duplicates("smiles").drop(columns="_o")
    st["duplicate_smiles_dropped"] = len(df) - len(deduped)
    return deduped.sort_values("row")


def _split(df: pd.DataFrame, split_col: np.ndarray | None, cfg: DictConfig, seed: int, st: dict) -> pd.DataFrame:
    """Split binders + hard negatives, then sample easy negatives per split (``easy_per_hard`` x hard)."""
    df = df.assign(label=(df["kind"] == "binder").astype(int))
    target, pool = df[df["kind"] != "easy"].copy(), df[df["kind"] == "easy"].copy()
    if split_col is not None:  # split per screen row (KinDEL's file or the synthon partition)
        for part in (target, pool):
            part["split"], part["group"] = split_col[part["row"]], part["molecule_hash"]
    else:
        target["group"] = _split_groups(target["smiles"], cfg.split)
        target["split"] = assign_splits(target["group"], cfg.split_fractions, seed, target["label"])
        pool["group"] = _split_groups(pool["smiles"], cfg.split)
        shared = pool["group"].isin(target["group"])  # scaffold: no easy negative shares one with the target set
        st["easy_shared_group_dropped"] = int(shared.sum())
        pool = pool[~shared]
    for split in SPLITS:
        st[f"split_{split}_rows"] = int((target["split"] == split).sum())
    return pd.concat([target, _sample_easy(pool, target, cfg, seed, st)], ignore_index=True)


# ---------------------------------------------------------------- held-out Kd sets


def heldout_sets(cfg: DictConfig, st: dict[str, Any] | None = None) -> dict[str, pd.DataFrame]:
    """The held-out Kd sets: ``heldout_<on|off>dna_<lib|all>`` (in-library = rows with a molecule_hash)."""
    if not cfg.heldout:
        return {}
    st = {} if st is None else st
    out: dict[str, pd.DataFrame] = {}
    for which in HELDOUT:
        path = kindel_file(cfg, f"heldout/{cfg.target}_{which}.csv", required=False)
        if path is None:
            st[f"heldout_{which}_missing"] = 1
            continue
        raw = pd.read_csv(path, index_col=0)
        missing = [c for c in ("smiles", "kd") if c not in raw.columns]
        if missing:
            raise DataError(f"{path} lacks columns {missing}: expected a KinDEL held-out file (smiles, kd)")
        if "molecule_hash" not in raw.columns:
            raw["molecule_hash"] = np.nan
        st[f"heldout_{which}_rows"] = len(raw)
        frame = raw.assign(smiles=canonical_smiles(raw["smiles"]), kd=pd.to_numeric(raw["kd"], errors="coerce"))
        bad = frame["smiles"].isna() | ~(frame["kd"] > 0)
        st[f"heldout_{which}_invalid_dropped"] = int(bad.sum())  # unparsable SMILES or no positive Kd
        frame = frame[~bad].assign(label=lambda f: (f["kd"] <= cfg.kd_binder_nm).astype(int), kind="heldout")
        frame = frame[["smiles", "label", "kind", "kd", "molecule_hash"]].reset_index(drop=True)
        lib = frame[frame["molecule_hash"].notna()].reset_index(drop=True)
        out[f"heldout_{which}_lib"], out[f"heldout_{which}_all"] = lib, frame
    return out


# ---------------------------------------------------------------- synthetic screens (tests, benchmark)

# Each ring ends on a carbon, which bonds to the next part of the template.
RINGS = ("c1ccc({})cc1", "c1ccnc({})c1", "C1CCC({})CC1", "c1occ({})c1", "c1scc({})c1", "C1COCC({})C1",
         "c1ccc2cc({})ccc2c1", "C1CC({})C1", "c1cnc({})nc1", "C1CCN({})C1")  # fmt: skip
SUBSTITUENTS = ("F", "Cl", "C", "OC", "C#N", "N", "O", "C(F)(F)F", "CC", "S(C)(=O)=O")


def synthon_smiles(n: int) -> list[str]:
    """``n`` distinct, valid building-block SMILES (rings x substituents), reusable at any synthon position."""
    groups = [ring.format(sub) for ring in RINGS for sub in SUBSTITUENTS]
    if n > len(groups):
        raise ValueError(f"at most {len(groups)} synthons")
    return groups[:n]


def synthetic_screen(
    n_per_position: int,
    hot: list[tuple[list[int], list[int], list[int]]],
    seed: int,
    noise_rate: float = 0.05,
    enrichment_column: bool = False,
) -> pd.DataFrame:
    """Every a x b x c combination in the KinDEL schema, SMILES built by string template (no RDKit).

    ``hot`` lists blocks (as, bs, cs) of synthon indices whose molecules get high target counts, so
    binders cluster on disynthons as in a real DEL; every other molecule reads at ``noise_rate``.
    """
    rng = np.random.default_rng(seed)
    syn = np.array(synthon_smiles(n_per_position), dtype=object)
    ia, ib, ic = (g.ravel() for g in np.meshgrid(*[np.arange(n_per_position)] * 3, indexing="ij"))
    rate = np.full(len(ia), noise_rate)
    for as_, bs, cs in hot:
        rate[np.isin(ia, as_) & np.isin(ib, bs) & np.isin(ic, cs)] = 8.0
    df = pd.DataFrame({"smiles_a": syn[ia], "smiles_b": syn[ib], "smiles_c": syn[ic]})
    # a-C(=O)N-CH(b)-C(=O)N-c: each synthon's ring closes before the next opens, so any triple is valid.
    df.insert(0, "smiles", df["smiles_a"] + "C(=O)NC(" + df["smiles_b"] + ")C(=O)N" + df["smiles_c"])
    df.insert(1, "molecule_hash", [f"{a}-{b}-{c}" for a, b, c in zip(ia, ib, ic)])
    for i in (1, 2, 3):
        df[f"seq_target_{i}"] = rng.poisson(rate)
        df[f"seq_matrix_{i}"] = rng.poisson(0.5, size=len(df))
    df["seq_load"] = rng.poisson(5.0, size=len(df))
    if enrichment_column:
        df["target_enrichment"] = enrichment_of({c: df[c].to_numpy() for c in (*TARGET_COUNTS, *MATRIX_COUNTS)})
    return df
