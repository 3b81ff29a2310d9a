"""KinDEL source on small synthetic files in the KinDEL schema (never the real data)."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from rdkit import Chem
from scipy.special import gammaincinv
from scipy.stats import binomtest
from synthetic_screens import DEPTHS, KINDEL_BLOCKS, synthetic_screen

from delbind.data import build_dataset, external_sets, write_dataset
from delbind.data.sources.kindel import files
from delbind.data.sources.kindel import screen as kscreen
from delbind.data.sources.kindel.splits import place_rows
from delbind.data.splits import SPLIT_NAMES
from delbind.errors import DataError
from delbind.evaluation import external_metrics
from delbind.tasks import train
from tests.helpers import ROOT

BASE = OmegaConf.load(ROOT / "conf/data/kindel.yaml")
BLOCKS = (38, 113, 19)  # KinDEL's 377 / 1,127 / 190 building blocks per position, scaled down 10x
ROWS = 40_000


def _write_source(root: Path, depth: str) -> Path:
    """A 40k-row realistic screen sequenced at ``depth``, its random split file and two held-out Kd files (with and
    without an index)."""
    screen = synthetic_screen(ROWS, BLOCKS, seed=0, depth=depth)
    screen.to_parquet(root / "mapk14_1M.parquet")
    (root / "splits").mkdir()
    rng = np.random.default_rng(0)
    split = pd.DataFrame(
        {f"split{i}": rng.choice(["train", "valid", "test"], len(screen), p=[0.8, 0.1, 0.1]) for i in (1, 2)}
    )
    split.to_parquet(root / "splits" / "mapk14_random.parquet")
    heldout = pd.DataFrame(
        {
            "smiles": [*screen["smiles"][:4], "CCO", "c1ccccc1O", "not a smiles", "CCN"],
            "molecule_hash": [*screen["molecule_hash"][:4], None, None, None, None],
            "kd": [10.0, 5000.0, 300.0, 20000.0, 50.0, 1e5, 10.0, 0.0],  # Kd 0: as in KinDEL's ddr1 off-DNA file
        }
    )
    (root / "heldout").mkdir()
    heldout.to_csv(root / "heldout" / "mapk14_ondna.csv")  # KinDEL's layout: a leading unnamed index column
    heldout.to_csv(root / "heldout" / "mapk14_offdna.csv", index=False)
    return root


_SCREENS: dict[tuple[str, str], Path] = {}


def _screen(factory: pytest.TempPathFactory, size: str, depth: str) -> Path:
    """The ``small`` 40k-row screen (with its split and held-out files) or the 1M-row one with KinDEL's ``blocks``
    (scripts/bench_data.py's: a disynthon split places ~40% of the rows and its val/test rows read only their own
    binders, so a smaller screen is too sparse), at a depth profile; each written once per test session."""
    if (size, depth) not in _SCREENS:
        root = factory.mktemp(f"kindel_{size}_{depth}")
        if size == "small":
            _write_source(root, depth)
        else:
            synthetic_screen(1_000_000, KINDEL_BLOCKS, seed=0, depth=depth).to_parquet(root / "mapk14_1M.parquet")
        _SCREENS[(size, depth)] = root
    return _SCREENS[(size, depth)]


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """The 40k-row screen at the project's synthetic depth, with its split and held-out files."""
    return _screen(tmp_path_factory, "small", "synthetic")


@pytest.fixture(scope="module", params=list(DEPTHS))
def source_at(request, tmp_path_factory) -> Path:
    """The 40k-row screen at each depth profile: the synthetic one, and KinDEL's (control:target reads ~35)."""
    return _screen(tmp_path_factory, "small", request.param)


def cfg_for(source: Path, **kw):
    return OmegaConf.merge(BASE, {"source": str(source), **kw})


def test_poisson_enrichment_matches_hand_computed_rows():
    target = np.array([[1, 1, 1], [0, 0, 0], [2, 0, 0], [1, 1, 1]])
    matrix = np.array([[0, 0, 0], [1, 0, 0], [0, 0, 0], [0, 1, 0]])
    # chi2 quantiles from tables: 0.025 of df 6 = 1.237344, df 4 = 0.484419; 0.975 of df 2 = 7.377759, df 4 = 11.143287
    expected = [1.237344 / 7.377759, 0.0, 0.484419 / 7.377759, 1.237344 / 11.143287]
    np.testing.assert_allclose(kscreen.poisson_enrichment(target, matrix), expected, rtol=1e-5)


def test_target_enrichment_column_and_recomputation_agree(source, tmp_path):
    screen = pd.read_parquet(source / "mapk14_1M.parquet")
    k_t = screen[list(kscreen.TARGET_COUNTS)].sum(axis=1).to_numpy()
    k_m = screen[list(kscreen.MATRIX_COUNTS)].sum(axis=1).to_numpy()
    # independent route: the Poisson bounds via the inverse regularized gamma function
    lower = np.where(k_t > 0, gammaincinv(np.maximum(k_t, 1), 0.025), 0.0) / 3
    screen["target_enrichment"] = lower / (gammaincinv(k_m + 1, 0.975) / 3)
    screen.to_parquet(tmp_path / "mapk14_1M.parquet")
    with_col = kscreen.read_screen(tmp_path / "mapk14_1M.parquet")
    without = kscreen.read_screen(source / "mapk14_1M.parquet")
    np.testing.assert_allclose(kscreen.enrichment_of(without), kscreen.enrichment_of(with_col), rtol=1e-9)
    a, sa = build_dataset(cfg_for(tmp_path, split="random", heldout=False), seed=0)
    b, sb = build_dataset(cfg_for(source, split="random", use_kindel_splits=False, heldout=False), seed=0)
    assert (sa["enrichment_from"], sb["enrichment_from"]) == ("target_enrichment", "counts")
    pd.testing.assert_frame_equal(a.drop(columns="enrichment"), b.drop(columns="enrichment"))


def _pairs(df: pd.DataFrame) -> list[pd.Series]:
    return [
        df["smiles_a"] + "|" + df["smiles_b"],
        df["smiles_a"] + "|" + df["smiles_c"],
        df["smiles_b"] + "|" + df["smiles_c"],
    ]


@pytest.fixture(scope="module")
def built(source):
    return build_dataset(cfg_for(source, split="random", use_kindel_splits=False), seed=0)


@pytest.fixture(scope="module")
def built_at(source_at):
    return build_dataset(cfg_for(source_at, split="random", use_kindel_splits=False), seed=0)


def test_small_screen_is_realistic_and_its_binders_touch_every_building_block(source, built):
    screen = pd.read_parquet(source / "mapk14_1M.parquet")
    assert len(screen) == ROWS < np.prod(BLOCKS) and screen["molecule_hash"].is_unique  # sampled, not the grid
    for col, n in zip(kscreen.SYNTHONS, BLOCKS):
        blocks = screen[col].unique()
        canonical = {Chem.MolToSmiles(Chem.MolFromSmiles(b.split(",")[0])) for b in blocks}
        assert len(blocks) == len(canonical) == n  # valid, distinct building blocks
    assert screen["smiles_b"].str.contains(",").any()  # a few listed as two SMILES, as in KinDEL
    assert all(Chem.MolFromSmiles(s) is not None for s in screen["smiles"].sample(300, random_state=0))
    # uneven sequencing depth: a barely-sampled tail, replicates of unequal depth, overdispersed counts, a deeper load
    assert (screen["seq_load"] <= 1).mean() > 0.05 and screen["seq_load"].mean() > 3 * screen["seq_matrix_1"].mean()
    assert screen["seq_target_3"].mean() > 1.2 * screen["seq_target_1"].mean()
    assert screen["seq_matrix_1"].var() > 1.5 * screen["seq_matrix_1"].mean()
    binders = built[0][built[0]["kind"] == "binder"]
    # Mostly noise spread over the library, so "shares no synthon with any binder" leaves next to nothing.
    for col, n in zip(kscreen.SYNTHONS, BLOCKS):
        assert binders[col].nunique() >= 0.9 * n


def _placed(source: Path, **kw) -> tuple[dict, np.ndarray]:
    """The screen as read and every row's split, as the build places them before labelling."""
    screen = kscreen.read_screen(source / "mapk14_1M.parquet")
    return screen, place_rows(screen, cfg_for(source, **kw), 0, {})


def test_every_kind_exists_hard_share_a_disynthon_with_a_binder_and_easy_share_none(built_at):
    df, stats = built_at
    binders, hard, easy = (df[df["kind"] == k] for k in ("binder", "hard", "easy"))
    assert len(binders) == stats["binders_found"] > 0 and len(hard) > 0 and len(easy) == len(hard)
    # each split's kinds read its own binders and the training binders (this dataset keeps every binder)
    for split in ("train", "val", "test"):
        seen = binders[binders["split"].isin({"train", split})]
        hard_shared, easy_shared = (
            np.logical_or.reduce([x.isin(b).to_numpy() for x, b in zip(_pairs(part[part["split"] == split]),
                                                                       _pairs(seen))])
            for part in (hard, easy)
        )  # fmt: skip
        assert hard_shared.all() and not easy_shared.any()
    assert (binders["enrichment"].min() > hard["enrichment"].max()) and set(df["label"]) == {0, 1}
    assert {"molecule_hash", "smiles_a", "smiles_b", "smiles_c", "split", "group"} <= set(df.columns)


def test_no_easy_negative_holds_a_building_block_enriched_among_the_binders_its_split_reads(built_at, source_at):
    df, stats = built_at
    screen, split = _placed(source_at, split="random", use_kindel_splits=False)
    blocks = pd.read_parquet(source_at / "mapk14_1M.parquet", columns=list(kscreen.SYNTHONS))
    binders, easy = df[df["kind"] == "binder"], df[df["kind"] == "easy"]
    for col in kscreen.SYNTHONS:

        def p_values(rows: np.ndarray, col: str = col) -> dict:  # one-sided binomial per block, among the rows
            here = blocks.loc[rows, col].value_counts()
            hits = binders.loc[binders["split"].isin(set(split[rows])), col].value_counts()
            rate = hits.sum() / rows.sum()
            return {b: binomtest(int(hits.get(b, 0)), int(here[b]), rate, "greater").pvalue for b in here.index}

        train = p_values(split == "train")
        assert stats[f"enriched_blocks_{col[-1]}"] == sum(p < BASE.easy_block_alpha for p in train.values()) > 0
        for name in ("train", "test"):
            own = p_values(split == name)
            mine = easy.loc[easy["split"] == name, col]
            assert min(min(train.get(b, 1.0), own.get(b, 1.0)) for b in mine) >= BASE.easy_block_alpha


def test_counts_for_every_rule_add_up(built_at):
    _, st = built_at
    assert st["top_fraction_rows"] == st["binders_found"] + st["top_low_reads_dropped"]
    labelled = st["binders_found"] + st["neg_pool"] + st["neg_no_evidence_dropped"]
    assert st["rows_read"] == st["missing_synthon_dropped"] + st["unplaced_rows"] + labelled
    assert st["neg_pool"] == st["pool_hard"] + st["pool_easy"] + st["pool_enriched_block_dropped"]
    assert st["pool_hard"] == sum(st[f"pool_hard_{s}"] for s in ("train", "val", "test"))
    assert st["pool_enriched_block_dropped"] > 0 and st["neg_no_evidence_dropped"] > 0


def _prevalences(st: dict) -> list[float]:
    return [st[f"prevalence_{split}"] for split in ("train", "val", "test")]


@pytest.fixture(scope="module", params=list(DEPTHS))
def kindel_blocks_source(request, tmp_path_factory) -> Path:
    """The realistic 1M-row screen with KinDEL's block counts, at each depth profile."""
    return _screen(tmp_path_factory, "blocks", request.param)


def test_computed_disynthon_split_is_leak_free_with_the_configured_fractions(kindel_blocks_source):
    df, st = build_dataset(cfg_for(kindel_blocks_source, heldout=False), seed=0)  # no disynthon file: computed
    assert st["split_from"] == "computed" and st["disynthon_mixed_dropped"] > 0
    for key in _pairs(df):
        assert (df.groupby(key)["split"].nunique() == 1).all()
    assert set(df["split"]) == {"train", "val", "test"}
    assert df.groupby("split")["kind"].nunique().eq(3).all()
    assert max(_prevalences(st)) - min(_prevalences(st)) < 0.03
    assert st["disynthon_mixed_to_train"] > 0 and 0 < st["split_kept_fraction_binders"] < 1
    # every rule's count adds up over the placed rows, the left-out ones apart
    assert st["top_fraction_rows"] == st["binders_found"] + st["top_low_reads_dropped"]
    labelled = st["binders_found"] + st["neg_pool"] + st["neg_no_evidence_dropped"]
    assert st["rows_read"] == st["missing_synthon_dropped"] + st["unplaced_rows"] + labelled


def test_mixed_molecules_train_only_when_no_val_or_test_molecule_shares_a_disynthon(kindel_blocks_source):
    from delbind.data.sources.kindel.labels import pair_keys
    from delbind.data.sources.kindel.splits import part_shares, placed_fractions, synthon_partition

    screen = kscreen.read_screen(kindel_blocks_source / "mapk14_1M.parquet")
    st: dict = {}
    split = synthon_partition(screen, (0.7, 0.1, 0.2), 0, st)
    placed = {name: split == name for name in ("train", "val", "test")}
    for keys in pair_keys(*(screen[c] for c in kscreen.SYNTHONS)):  # over the whole screen, not only the dataset
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            assert not set(keys[placed[a]]) & set(keys[placed[b]]), (a, b)
    pure_train = placed["train"].sum() - st["disynthon_mixed_to_train"]
    assert st["disynthon_mixed_to_train"] > 0.2 * pure_train  # the rule keeps a real share of the screen
    # mixed rows train, so the part sizes are solved for: the placed rows split as the fractions ask
    shares = np.array([placed[name].sum() for name in ("train", "val", "test")]) / (split != "").sum()
    np.testing.assert_allclose(shares, (0.7, 0.1, 0.2), atol=0.02)
    expected = placed_fractions(part_shares((0.7, 0.1, 0.2)))  # the share of rows placed, from the block shares
    assert (split != "").mean() == pytest.approx(expected.sum(), abs=0.02)
    assert st["disynthon_pure_rows"] < 0.5 * (split != "").sum()  # all-in-one-part only would keep under half


def test_kindel_split_file_is_used_when_present(source):
    df, st = build_dataset(cfg_for(source, split="random", fold=1, heldout=False), seed=0)
    assert st["split_from"] == "kindel split2" and st["cv"] == "replicate"  # data.fold 1 = split2
    file = pd.read_parquet(source / "splits" / "mapk14_random.parquet")["split2"].map(SPLIT_NAMES)
    hashes = pd.read_parquet(source / "mapk14_1M.parquet", columns=["molecule_hash"])["molecule_hash"]
    rows = df["molecule_hash"].map(pd.Series(hashes.index, index=hashes))
    assert (df["split"].to_numpy() == file.to_numpy()[rows]).all()
    assert max(_prevalences(st)) - min(_prevalences(st)) < 0.03  # hard negatives drawn per split


def test_heldout_sets_and_metrics_on_a_known_ordering(source):
    stats: dict = {}
    sets = external_sets(cfg_for(source), stats)
    assert set(sets) == {f"heldout_{w}_{s}" for w in ("ondna", "offdna") for s in ("lib", "all")}
    assert len(sets["heldout_ondna_all"]) == 6 and len(sets["heldout_ondna_lib"]) == 4
    for which in ("ondna", "offdna"):  # with and without the leading index column, as KinDEL's files come
        assert len(sets[f"heldout_{which}_all"]) == 6 and stats[f"heldout_{which}_rows"] == 8
        assert stats[f"heldout_{which}_invalid_dropped"] == stats[f"heldout_{which}_kd_zero_dropped"] == 1
        assert sets[f"heldout_{which}_all"]["molecule_hash"].isna().sum() == 2  # external compounds
    frame = sets["heldout_ondna_all"]
    assert frame["label"].tolist() == [1, 0, 1, 0, 1, 0]  # Kd <= 1000 nM
    perfect = external_metrics("heldout_ondna_all", frame, -np.log10(frame["kd"].to_numpy()))
    assert perfect["heldout_ondna_all_spearman"] == pytest.approx(1.0)
    assert perfect["heldout_ondna_all_auroc"] == perfect["heldout_ondna_all_auprc"] == 1.0
    with_zero = pd.concat([frame, frame.iloc[:1].assign(kd=0.0)], ignore_index=True)  # a Kd of 0 never gets -log10
    guarded = external_metrics("z", with_zero, np.r_[-np.log10(frame["kd"].to_numpy()), 0.0])
    assert guarded["z_spearman"] == pytest.approx(1.0) and all(np.isfinite(v) for v in guarded.values())
    reversed_ = external_metrics("x", frame, np.log10(frame["kd"].to_numpy()))
    assert reversed_["x_spearman"] == pytest.approx(-1.0) and reversed_["x_auroc"] == 0.0
    assert external_sets(cfg_for(source, heldout=False)) == {}


def test_offline_without_a_local_copy_fails_fast_naming_the_file(monkeypatch, tmp_path):
    monkeypatch.setenv("DELBIND_CACHE", str(tmp_path))
    monkeypatch.setattr(files, "_unreachable", {})
    cfg = OmegaConf.merge(BASE, {"endpoint_url": "http://127.0.0.1:9"})  # nothing listens: refused at once
    start = time.perf_counter()
    with pytest.raises(DataError) as err:
        build_dataset(cfg, seed=0)
    assert time.perf_counter() - start < 20
    msg = str(err.value)
    assert "mapk14_1M.parquet is not available" in msg and "s3://kin-del-2024/data/mapk14_1M.parquet" in msg
    assert "data.source=DIR" in msg and "\n" not in msg


def test_a_missing_filesystem_package_is_named(monkeypatch, tmp_path):
    monkeypatch.setattr(files, "_unreachable", {})

    def missing(bucket, endpoint_url):
        raise ImportError("No module named 'gcsfs'", name="gcsfs")

    monkeypatch.setattr(files, "_filesystem", missing)
    reason = files._download("gs://mirror", "mapk14_1M.parquet", tmp_path / "x.parquet", None)
    assert reason == "gcsfs is not installed: pip install gcsfs"


def test_cached_file_is_read_without_network(monkeypatch, tmp_path, source):
    monkeypatch.setenv("DELBIND_CACHE", str(tmp_path))
    (tmp_path / "kindel").mkdir()
    (tmp_path / "kindel" / "mapk14_1M.parquet").write_bytes((source / "mapk14_1M.parquet").read_bytes())
    cfg = OmegaConf.merge(BASE, {"endpoint_url": "http://127.0.0.1:9", "split": "random", "heldout": False})
    monkeypatch.setattr(files, "_unreachable", {})
    assert files.kindel_file(cfg, "mapk14_1M.parquet") == tmp_path / "kindel" / "mapk14_1M.parquet"


def test_files_are_fetched_from_the_bucket_once_then_read_from_the_cache(monkeypatch, tmp_path, source, caplog):
    monkeypatch.setenv("DELBIND_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(files, "_unreachable", {})
    mirror = tmp_path / "mirror"  # the bucket's layout, served by fsspec's local filesystem
    shutil.copytree(source, mirror)
    cfg = OmegaConf.merge(BASE, {"bucket": f"file://{mirror}", "split": "random"})
    fetched, _ = build_dataset(cfg, seed=0)
    heldout = external_sets(cfg)
    records = {p.name for p in (tmp_path / "cache").rglob("*.sha256.json")}  # size + digest beside each file
    cached = sorted(
        str(p.relative_to(tmp_path / "cache" / "kindel"))
        for p in (tmp_path / "cache").rglob("*.*")
        if p.name not in records
    )
    assert records == {f"{Path(c).name}.sha256.json" for c in cached}
    assert cached == ["heldout/mapk14_offdna.csv", "heldout/mapk14_ondna.csv", "mapk14_1M.parquet",
                      "splits/mapk14_random.parquet"]  # fmt: skip
    local, _ = build_dataset(OmegaConf.merge(BASE, {"source": str(source), "split": "random"}), seed=0)
    pd.testing.assert_frame_equal(fetched, local)
    assert set(heldout) == {"heldout_ondna_lib", "heldout_ondna_all", "heldout_offdna_lib", "heldout_offdna_all"}
    damaged = tmp_path / "cache" / "kindel" / "mapk14_1M.parquet"
    damaged.write_bytes(damaged.read_bytes()[:100])  # e.g. a disk problem: logged, discarded, fetched again
    refetched, _ = build_dataset(cfg, seed=0)
    pd.testing.assert_frame_equal(refetched, fetched)
    assert "mapk14_1M.parquet is damaged (mapk14_1M.parquet is 100 bytes" in caplog.text
    shutil.rmtree(mirror)  # gone from the "bucket": the cache alone serves the next build
    again, _ = build_dataset(cfg, seed=0)
    pd.testing.assert_frame_equal(again, fetched)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"min_target_count": 10**6}, "no binders"),
        ({"target": "egfr"}, "not a KinDEL target"),
        ({"source": "/nonexistent/kindel"}, "does not exist"),
        ({"pos_fraction": 0.5, "min_target_count": 0}, "no (hard|easy) negatives"),
        ({"hard_per_binder": 1000, "split": "random"}, r"only \d+ hard negatives in split train, \d+ wanted: on this "),
        (
            {"easy_per_hard": 1000, "split": "random", "use_kindel_splits": False},
            r"only \d+ easy negatives in split train, \d+ wanted: on this screen data.easy_per_hard=[\d.]+ or .*"
            r"data.easy_block_alpha",
        ),
        ({"neg_max_fold": "0"}, r"data.neg_max_fold=0: use auto or a fold > 0"),
        ({"split": "scaffold"}, "data.split='scaffold' is not offered for KinDEL: use disynthon"),
    ],
)
def test_bad_settings_are_clear_errors(source, override, match):
    with pytest.raises(DataError, match=match):
        build_dataset(OmegaConf.merge(cfg_for(source, heldout=False), override), seed=0)


def test_screen_without_required_columns_is_a_clear_error(source, tmp_path):
    pd.read_parquet(source / "mapk14_1M.parquet").drop(columns=["smiles_b", "seq_matrix_1"]).to_parquet(
        tmp_path / "mapk14_1M.parquet"
    )
    with pytest.raises(DataError, match=r"lacks columns \['smiles_b', 'seq_matrix_1'\]"):
        build_dataset(cfg_for(tmp_path), seed=0)


def test_prepared_dataset_round_trips(built, tmp_path, source):
    df, stats = built
    external = external_sets(cfg_for(source))
    write_dataset(tmp_path / "dataset", df, stats, external)
    assert {p.name for p in (tmp_path / "dataset").iterdir()} == {
        "train.parquet",
        "val.parquet",
        "test.parquet",
        "stats.json",
        "external",
    }
    cfg = cfg_for(source, prepared=str(tmp_path))
    again, again_stats = build_dataset(cfg, seed=0)
    key = ["split", "smiles"]
    pd.testing.assert_frame_equal(
        again.sort_values(key).reset_index(drop=True), df.sort_values(key).reset_index(drop=True), check_like=True
    )
    assert again_stats["binders_found"] == stats["binders_found"]
    assert set(external_sets(cfg)) == set(external)
    wrong = OmegaConf.merge(OmegaConf.load(ROOT / "conf/data/chembl_kinase.yaml"), {"prepared": str(tmp_path)})
    with pytest.raises(DataError, match="was built from data=kindel"):
        build_dataset(wrong, seed=0)


def test_prepare_data_then_train_scores_the_heldout_sets(source, tmp_path, make_cfg):
    prep = tmp_path / "prep"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "prepare_data.py"), "data=kindel", f"data.source={source}",
         "data.split=random", "data.max_molecules=60", f"hydra.run.dir={prep}"],
        capture_output=True, text=True, env={**os.environ}, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {"train.parquet", "val.parquet", "test.parquet", "stats.json"} <= {
        p.name for p in (prep / "dataset").iterdir()
    }
    assert len(list((prep / "dataset" / "external").glob("heldout_*.parquet"))) == 4
    cfg = make_cfg("data=kindel", f"data.prepared={prep}", "data.source=/nonexistent")  # never read: prepared
    metrics = train.run(cfg)
    for which in ("ondna", "offdna"):
        for part in ("lib", "all"):
            for metric in ("spearman", "auroc", "auprc"):
                assert f"heldout_{which}_{part}_{metric}" in metrics
    assert metrics["n_heldout_ondna_all"] == 6
    on_disk = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert -1.0 <= on_disk["heldout_ondna_lib_spearman"] <= 1.0
    assert json.loads((Path(cfg.paths.output_dir) / "dataset" / "stats.json").read_text())["prepared_from"]
    preds = pd.read_parquet(Path(cfg.paths.output_dir) / "predictions.parquet")
    assert (preds["eval_set"] == "heldout_offdna_all").sum() == 6


# --- nothing depends on row order; bad values are named -----------------------------------------------------------


@pytest.mark.parametrize("depth", list(DEPTHS))
@pytest.mark.parametrize(("split", "size"), [("disynthon", "blocks"), ("random", "small")])
def test_a_file_with_its_rows_shuffled_gives_the_same_dataset(tmp_path_factory, tmp_path, split, size, depth):
    source = _screen(tmp_path_factory, size, depth)  # a disynthon split places ~40% of the rows: the larger screen
    screen = pd.read_parquet(source / "mapk14_1M.parquet")
    screen.sample(frac=1.0, random_state=7).to_parquet(tmp_path / "mapk14_1M.parquet", index=False)
    settings = {"split": split, "use_kindel_splits": False, "heldout": False}
    (df, st), (shuffled, st_shuffled) = (build_dataset(cfg_for(s, **settings), seed=0) for s in (source, tmp_path))
    assert len(df) > 500 and set(df["kind"]) == {"binder", "hard", "easy"}
    pd.testing.assert_frame_equal(df, shuffled)  # same molecules, kinds, splits, groups, in the same order
    assert st == st_shuffled  # every count of every rule
    other_seed, _ = build_dataset(cfg_for(source, **settings), seed=1)
    assert not df["molecule_hash"].equals(other_seed["molecule_hash"])  # the draws follow the seed


def _tie_screen(values: list[tuple[float, int]], order: np.ndarray | None = None) -> tuple[dict, np.ndarray]:
    """A screen of ``(enrichment, rows)`` groups, every row with 5 target reads and distinct blocks."""
    enrichment = np.concatenate([np.full(n, v) for v, n in values])
    if order is not None:
        enrichment = enrichment[order]
    n = len(enrichment)
    screen = {"n": n, **{c: np.full(n, 5 if c == "seq_target_1" else 0) for c in kscreen.TARGET_COUNTS}}
    return screen, enrichment


def test_a_tie_group_straddling_the_binder_cut_stays_out_whole_in_any_row_order():
    from delbind.data.sources.kindel.labels import _binders

    cfg = OmegaConf.create({"pos_fraction": 0.01, "min_target_count": 3})  # the top 10 of 1,000 rows
    for groups, binders, dropped in (
        ([(9.0, 4), (5.0, 20), (0.0, 976)], 4, 20),  # ranks 5-24 tie across rank 10: all out
        ([(9.0, 10), (5.0, 20), (0.0, 970)], 10, 0),  # the cut falls between groups: the top 10 exactly
    ):
        for order in (None, np.arange(1000)[::-1], np.random.default_rng(0).permutation(1000)):
            screen, enrichment = _tie_screen(groups, order)
            st: dict = {}
            every = np.ones(1000, dtype=bool)
            found = _binders(screen, enrichment, every, every, every, cfg, st)
            assert found.sum() == binders and (enrichment[found] == 9.0).all()
            assert st["binder_cut_ties_dropped"] == dropped and st["binder_cut_enrichment"] in (9.0, 5.0)


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("seq_target_1", {0: np.nan, 1: np.nan}, "seq_target_1: 2 missing (NaN)"),
        ("seq_matrix_2", {5: -1}, "seq_matrix_2: 1 negative"),
        ("seq_target_3", {3: 2.5, 4: 0.1, 9: 7.2}, "seq_target_3: 3 non-integer"),
        ("target_enrichment", {2: np.inf}, "target_enrichment: 1 infinite"),
    ],
)
def test_bad_counts_or_enrichment_are_one_error_naming_the_column_and_rows(source, tmp_path, column, values, message):
    screen = pd.read_parquet(source / "mapk14_1M.parquet").head(2000)
    if column == "target_enrichment":
        screen[column] = 0.5
    screen[column] = screen[column].astype(float)
    for row, value in values.items():
        screen.loc[row, column] = value
    screen.to_parquet(tmp_path / "mapk14_1M.parquet", index=False)
    with pytest.raises(DataError, match=re.escape(f"{message} of 2,000 rows; read counts must be whole numbers")):
        build_dataset(cfg_for(tmp_path, split="random", use_kindel_splits=False, heldout=False), seed=0)


def test_shared_disynthons_counts_block_pairs_found_in_two_splits():
    from delbind.data.sources.kindel.splits import shared_disynthons

    # rows (a, b, c): row 0 and 1 share a+b (0, 0) across train/test; row 2 and 3 share b+c (5, 7) across
    # val/test; row 4 shares nothing; row 5 is unplaced and row 6 is not labelled, so neither counts
    a, b, c = np.array([0, 0, 1, 2, 3, 0, 0]), np.array([0, 0, 5, 5, 9, 0, 0]), np.array([1, 2, 7, 7, 8, 1, 1])
    screen = {"smiles_a": a, "smiles_b": b, "smiles_c": c}
    split = np.array(["train", "test", "val", "test", "train", "", "val"], dtype=object)
    labelled = np.array([True, True, True, True, True, True, False])
    assert shared_disynthons(screen, split, labelled) == 2


def test_a_disynthon_split_file_sharing_disynthons_is_counted_and_refused_unless_allowed(source, tmp_path):
    shutil.copyfile(source / "mapk14_1M.parquet", tmp_path / "mapk14_1M.parquet")
    (tmp_path / "splits").mkdir()
    n = len(pd.read_parquet(source / "mapk14_1M.parquet", columns=["smiles"]))
    by_row = np.random.default_rng(0).choice(["train", "valid", "test"], n, p=[0.8, 0.1, 0.1])
    pd.DataFrame({"split1": by_row}).to_parquet(tmp_path / "splits" / "mapk14_disynthon.parquet")
    with pytest.raises(DataError, match=r"puts [\d,]+ disynthons of the labelled rows in more than one split") as err:
        build_dataset(cfg_for(tmp_path, split="disynthon", heldout=False), seed=0)
    shared = int(str(err.value).split("puts ")[1].split(" disynthons")[0].replace(",", ""))
    assert shared > 0 and "data.allow_split_overlap=true" in str(err.value)
    _, st = build_dataset(cfg_for(tmp_path, split="disynthon", heldout=False, allow_split_overlap=True), seed=0)
    assert st["split_from"] == "kindel split1" and st["split_file_shared_disynthons"] == shared


# --- negatives need evidence; no label looks across splits --------------------------------------------------------


def _count_screen(target: list[int], matrix: list[int], load: list[int] | None = None) -> dict:
    """A screen dict of read counts only: target and matrix reads in replicate 1, the load if given."""
    n = len(target)
    screen: dict = {
        "n": n,
        **{c: np.zeros(n, dtype=np.int64) for c in (*kscreen.TARGET_COUNTS, *kscreen.MATRIX_COUNTS)},
    }
    screen["seq_target_1"], screen["seq_matrix_1"] = np.array(target), np.array(matrix)
    if load is not None:
        screen["seq_load"] = np.array(load)
    return screen


def test_the_fold_bound_is_the_exact_conditional_binomial_bound():
    from delbind.data.sources.kindel.evidence import fold_upper_bound

    target, control = np.array([0, 0, 0, 2, 5, 3, 1]), np.array([0, 1, 150, 20, 0, 30, 4])
    got = fold_upper_bound(target, control, ratio=4.0, confidence=0.95)
    for k, c, bound in zip(target, control, got):
        if c == 0:  # every read a target read (or none at all): nothing bounds the fold
            assert bound == np.inf
            continue
        # independent route: the two-sided 90% Clopper-Pearson interval's upper end is the one-sided 95% bound
        high = binomtest(int(k), int(k + c)).proportion_ci(0.90, method="exact").high
        assert bound == pytest.approx(4.0 * high / (1 - high), rel=1e-9)


def test_a_molecule_barely_read_is_no_negative_and_one_read_often_in_the_controls_is():
    from delbind.data.sources.kindel.evidence import measured_negative, min_control_reads

    # rows: never read; load 1 only; matrix 150 and no target read; 3 target reads over 150 matrix reads;
    # 20 target reads over 20 control reads (enriched); then 95 rows of typical depth to set the totals
    target = [0, 0, 0, 3, 20, *[2] * 95]
    matrix, load = [0, 0, 150, 150, 10, *[2] * 95], [0, 1, 0, 0, 10, *[6] * 95]
    screen = _count_screen(target, matrix, load)
    cfg, st = OmegaConf.create({"neg_max_fold": 2.0, "neg_confidence": 0.9}), {}
    negative = measured_negative(screen, np.ones(100, dtype=bool), np.arange(100) == 4, cfg, st)
    assert negative[:5].tolist() == [False, False, True, True, False]
    ratio = (sum(matrix) + sum(load)) / sum(target)
    assert st["neg_control_to_target_reads"] == pytest.approx(ratio) and "seq_load" in st["neg_evidence"]
    assert st["binder_point_fold_median"] == pytest.approx(ratio * 20 / 20)  # row 4: 20 target over 20 control reads
    need = st["neg_min_control_reads"]
    assert need == min_control_reads(ratio, 2.0, 0.9)
    at_depth = measured_negative(_count_screen([0, 0, *target[2:]], [need - 1, need, *matrix[2:]], [0, 0, *load[2:]]),
                                 np.ones(100, dtype=bool), np.zeros(100, dtype=bool), cfg, {})  # fmt: skip
    assert at_depth[:2].tolist() == [False, True]  # the depth the bound implies, exactly


def test_without_control_reads_the_bound_assumes_mean_abundance_and_says_so():
    from delbind.data.sources.kindel.evidence import measured_negative

    screen = _count_screen([0, 3, 6, *[2] * 97], [0] * 100)
    for col in kscreen.MATRIX_COUNTS:
        del screen[col]
    st: dict = {}
    cfg = OmegaConf.create({"neg_max_fold": 2.0, "neg_confidence": 0.9})
    negative = measured_negative(screen, np.ones(100, dtype=bool), np.zeros(100, dtype=bool), cfg, st)
    mean = (3 + 6 + 2 * 97) / 100
    upper = gammaincinv(np.array([1, 4, 7]), 0.9) / mean  # the exact Poisson upper bound of k reads, over the mean
    assert negative[:3].tolist() == (upper < 2.0).tolist() == [True, False, False]
    assert st["neg_evidence"].startswith("target reads only") and st["neg_mean_target_reads"] == pytest.approx(mean)


def _perturbed(source: Path, tmp_path: Path, split_col: np.ndarray) -> Path:
    """A copy of the screen whose val and test rows carry other rows' reads (shuffled among them), layout kept."""
    screen = pd.read_parquet(source / "mapk14_1M.parquet")
    held = np.flatnonzero(np.isin(split_col, ["val", "test"]))
    counts = [*kscreen.TARGET_COUNTS, *kscreen.MATRIX_COUNTS, "seq_load"]
    screen.loc[held, counts] = screen.loc[np.random.default_rng(1).permutation(held), counts].to_numpy()
    screen.to_parquet(tmp_path / "mapk14_1M.parquet", index=False)
    if (source / "splits").exists():
        shutil.copytree(source / "splits", tmp_path / "splits")
    return tmp_path


@pytest.mark.parametrize("depth", list(DEPTHS))
@pytest.mark.parametrize(
    ("size", "settings"),
    [
        ("small", {"split": "random"}),  # KinDEL's split file
        ("small", {"split": "random", "use_kindel_splits": False}),  # computed folds
        ("blocks", {"split": "disynthon"}),  # computed disynthon split
    ],
)
def test_changing_val_and_test_reads_changes_nothing_that_trains(tmp_path_factory, tmp_path, size, settings, depth):
    source = _screen(tmp_path_factory, size, depth)
    settings = {**settings, "heldout": False}
    _, split_col = _placed(source, **settings)
    (df, st), (other, st_other) = (
        build_dataset(cfg_for(s, **settings), seed=0) for s in (source, _perturbed(source, tmp_path, split_col))
    )
    train, train_other = (d[d["split"] == "train"].reset_index(drop=True) for d in (df, other))
    assert len(train) > 300
    pd.testing.assert_frame_equal(train, train_other)  # the same molecules, kinds and labels
    assert st["binder_cut_enrichment"] == st_other["binder_cut_enrichment"]  # cut and read totals from train only
    assert st.get("neg_control_to_target_reads") == st_other.get("neg_control_to_target_reads")
    held, held_other = (d[d["split"] != "train"] for d in (df, other))
    assert not held["molecule_hash"].reset_index(drop=True).equals(held_other["molecule_hash"].reset_index(drop=True))


# --- the negative threshold follows the screen's depth -------------------------------------------------------------


def test_auto_neg_max_fold_is_what_the_depth_can_bound_within_its_floor_and_cap():
    from delbind.data.sources.kindel.evidence import depth_fold, fold_upper_bound, resolve_max_fold

    cfg = OmegaConf.create({"neg_max_fold": "auto", "neg_max_fold_floor": 2.0, "neg_max_fold_cap": 0.5})
    reach = depth_fold(35.0, 31, 0.9)  # KinDEL's depth: control:target reads ~35, ~31 control reads a molecule
    assert reach == pytest.approx(35 * (10 ** (1 / 31) - 1))
    assert fold_upper_bound(np.array([0]), np.array([31]), 35.0, 0.9)[0] == pytest.approx(reach)  # no target read
    st: dict = {"neg_depth_control_reads": 31.0}
    value = resolve_max_fold(cfg, reach, 7.0, st)
    assert reach < value == pytest.approx(np.floor(reach * 100) / 100 + 0.01) and st["neg_max_fold"] == value
    assert st["neg_depth_fold"] == reach and st["neg_max_fold_rule"].startswith("auto: 31 control reads bound fold")
    floor: dict = {}
    assert resolve_max_fold(cfg, depth_fold(5.0, 7, 0.9), 3.6, floor) == 2.0  # the project's synthetic depth
    assert "floor data.neg_max_fold_floor=2 is stricter" in floor["neg_max_fold_rule"]
    capped: dict = {}
    assert resolve_max_fold(cfg, 9.0, 10.0, capped) == 5.0 and "capped at 0.5 x" in capped["neg_max_fold_rule"]
    assert resolve_max_fold(cfg, 9.0, 3.0, {}) == 2.0  # a cap under the floor never lowers it
    given: dict = {}
    assert resolve_max_fold(OmegaConf.merge(cfg, {"neg_max_fold": 3.0}), 9.0, 10.0, given) == 3.0
    assert given["neg_max_fold_rule"] == "given (data.neg_max_fold)"


def test_at_either_depth_the_resolved_threshold_is_recorded_and_no_unread_molecule_is_a_negative(built_at, source_at):
    df, st = built_at
    cap = BASE.neg_max_fold_cap * st["binder_point_fold_median"]
    expected = max(BASE.neg_max_fold_floor, min(np.floor(st["neg_depth_fold"] * 100) / 100 + 0.01, cap))
    assert st["neg_max_fold"] == pytest.approx(expected)
    screen_depth = pd.read_parquet(source_at / "mapk14_1M.parquet")[[*kscreen.MATRIX_COUNTS, "seq_load"]].sum(axis=1)
    assert st["neg_depth_control_reads"] <= screen_depth.median()  # a lower quantile of the depth molecules have
    screen = pd.read_parquet(source_at / "mapk14_1M.parquet")
    reads = screen[[*kscreen.TARGET_COUNTS, *kscreen.MATRIX_COUNTS, "seq_load"]].sum(axis=1)
    negatives = df.loc[df["kind"] != "binder", "molecule_hash"]
    depth = reads[screen["molecule_hash"].isin(negatives).to_numpy()]
    assert depth.min() >= st["neg_min_control_reads"] > 1  # every negative was read deeply enough to have shown up


def test_the_defaults_build_at_either_depth_where_a_fixed_2_falls_short_at_kindels(kindel_blocks_source):
    settings = {"heldout": False}
    for seed in (0, 1, 2):  # data seeds: each deals its own disynthon split
        df, st = build_dataset(cfg_for(kindel_blocks_source, **settings), seed=seed)
        assert set(df["kind"]) == {"binder", "hard", "easy"} and st["neg_max_fold"] >= 2.0
        assert st["neg_max_fold"] <= BASE.neg_max_fold_cap * st["binder_point_fold_median"] + 0.01
    if st["neg_control_to_target_reads"] < 10:  # the synthetic profile: a fixed 2 builds there too
        return
    with pytest.raises(DataError, match=r"hard negatives in split \w+, \d+ wanted: on this screen"):
        build_dataset(cfg_for(kindel_blocks_source, neg_max_fold=2.0, **settings), seed=0)


def test_a_shortfall_names_settings_that_do_build_on_this_screen(source_at, built_at):
    settings = {"split": "random", "use_kindel_splits": False, "heldout": False}
    df, st = built_at  # the same screen and settings at the defaults: ask 1.5x the hard negatives its pool holds
    binders = df[df["kind"] == "binder"].groupby("split").size()
    asked = float(np.ceil(1.5 * max(st[f"pool_hard_{s}"] / n for s, n in binders.items())))
    with pytest.raises(DataError) as short:
        build_dataset(cfg_for(source_at, hard_per_binder=asked, **settings), seed=0)
    message = str(short.value)
    ratio = float(re.search(r"data.hard_per_binder=([\d.]+)", message).group(1))
    fold = float(re.search(r"data.neg_max_fold=([\d.]+)", message).group(1))
    assert 0 < ratio < asked and fold > st["neg_max_fold"]
    for fix in ({"hard_per_binder": ratio}, {"hard_per_binder": asked, "neg_max_fold": fold}):
        df, st = build_dataset(cfg_for(source_at, **settings, **fix), seed=0)  # computed, not guessed: it builds
        assert set(df["kind"]) == {"binder", "hard", "easy"}
    below = round(fold - 0.01, 2)  # and it is the least: one step under it falls short again
    with pytest.raises(DataError, match=r"negatives in split \w+, \d+ wanted"):
        build_dataset(cfg_for(source_at, hard_per_binder=asked, neg_max_fold=below, **settings), seed=0)
