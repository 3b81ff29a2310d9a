"""The offline GPU check cannot rot: its bundle is built here (tiny trunk, a 120-molecule prepared set) and check.sh
runs it on CPU in an environment shaped like an air-gapped GPU image: this venv's packages minus everything the
bundle must carry or the check must not need (RDKit, wandb, xgboost, optuna, evaluate, Hydra, datasets, delbind)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from delbind.gpucheck import BUNDLE_LIMIT_BYTES
from delbind.gpucheck.bundle import build
from delbind.gpucheck.check import MODES

# distribution / top-level names a GPU image lacks (normalized: lower case, runs of -_. as _)
ABSENT = {
    "rdkit", "rdkit_stubs", "wandb", "xgboost", "xgboost_cpu", "optuna", "evaluate", "tensorboard",
    "tensorboard_data_server", "hydra", "hydra_core", "hydra_plugins", "hydra_joblib_launcher",
    "hydra_submitit_launcher", "omegaconf", "antlr4", "antlr4_python3_runtime", "datasets", "dill", "multiprocess",
    "_multiprocess", "xxhash", "delbind", "__editable__", "__editable___delbind_0_1_0_finder",
}  # fmt: skip


def _top(entry: str) -> str:
    stem = re.sub(r"(-\d.*)?(\.dist-info|\.libs|\.pth|\.py)?$", "", entry)
    return re.sub(r"[-_.]+", "_", stem).lower().removesuffix("_stubs")


@pytest.fixture(scope="module")
def gpu_image(tmp_path_factory) -> dict[str, str]:
    """PYTHON and PYTHONPATH of an interpreter that sees this venv's site-packages without the ABSENT packages
    (``python -S``: no .pth file, no editable delbind), under a path named site-packages as on a real image."""
    root = tmp_path_factory.mktemp("gpu-image")
    site = root / "lib" / "site-packages"
    site.mkdir(parents=True)
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if _top(entry.name) not in ABSENT and not entry.name.startswith("__editable__"):
            (site / entry.name).symlink_to(entry)
    python = root / "python"
    python.write_text(f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')
    python.chmod(0o755)
    return {"PYTHON": str(python), "PYTHONPATH": str(site)}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "gpu_bundle"
    info = build(out, model="tiny", data=("data.max_molecules=120",))
    assert info["size_bytes"] <= BUNDLE_LIMIT_BYTES
    return out


def _check(bundle: Path, env: dict[str, str], out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(bundle / "check.sh"), "--out", str(out), *args], capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=900)  # fmt: skip


def test_the_image_lacks_what_the_bundle_carries(gpu_image):
    names = ("rdkit", "hydra", "datasets", "delbind", "wandb")
    probe = f"import importlib.util as u; print([m for m in {names} if u.find_spec(m)])"
    proc = subprocess.run([gpu_image["PYTHON"], "-c", probe], capture_output=True, text=True,
                          env={**os.environ, **gpu_image})  # fmt: skip
    assert proc.stdout.strip() == "[]", proc.stderr


def test_bundle_holds_what_the_check_needs(bundle):
    info = json.loads((bundle / "bundle.json").read_text())
    assert set(info["wheels"]) >= {"delbind", "hydra-core", "omegaconf", "datasets", "xxhash"}
    assert all((bundle / "wheels" / w["file"]).is_file() for w in info["wheels"].values())
    assert (bundle / "trunk" / "config.json").is_file() and (bundle / "trunk" / "tokenizer.json").is_file()
    assert {p.name for p in (bundle / "data").glob("*.parquet")} == {"train.parquet", "val.parquet", "test.parquet"}
    assert info["model"] == "tiny" and info["min_per_class"] == 2
    listed = {line.split("  ", 1)[1] for line in (bundle / "SHA256SUMS").read_text().splitlines()}
    on_disk = {str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file() and p.name != "SHA256SUMS"}
    assert listed == on_disk


def test_check_runs_offline_on_cpu_and_reports_every_row(bundle, gpu_image, tmp_path):
    out = tmp_path / "check"
    proc = _check(bundle, gpu_image, out, "--steps", "20", "--score-molecules", "500")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((out / "check.json").read_text())
    assert result["ok"] and result["device"]["kind"] == "cpu"
    rows = {(r["mode"], r["precision"], r["checkpointing"]): r for r in result["rows"]}
    assert set(rows) == {(m, p, c) for m in MODES for p in ("fp32", "bf16") for c in (False, True)}
    for (mode, _, ckpt), row in rows.items():
        if mode == "frozen" and ckpt:
            assert row["status"] == "n/a"
            continue
        assert row["status"] == "ok", row
        assert row["loss_last"] < row["loss_first"] and row["steps"] == 20
        assert row["checkpointing_on"] is ckpt and row["optimizer_steps_skipped"] == 0
        assert row["samples_per_s"] > 0 and row["peak_memory_mb"] > 0
    scoring = result["scoring"]
    assert scoring["status"] == "ok" and scoring["molecules"] == 500 and scoring["mol_per_s"] > 0
    assert scoring["compared"] == "bf16" and scoring["spearman"] > 0.99
    table = (out / "check.md").read_text()
    assert "| mode | precision |" in table and "all rows pass" in table and table.count("\n| ") == 1 + len(rows)
    assert "RDKit" not in proc.stderr  # nothing on the check's path reached for it

    again = _check(bundle, gpu_image, out)  # no check overwrites another's output
    assert again.returncode == 2 and "not empty" in again.stderr


def test_a_damaged_bundle_is_refused(bundle, gpu_image, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    (copy / "conf" / "train.yaml").write_text((copy / "conf" / "train.yaml").read_text() + "\n# edited\n")
    proc = _check(copy, gpu_image, tmp_path / "out")
    assert proc.returncode == 2 and "SHA256SUMS" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_bundle_is_built_only_into_a_new_dir(bundle):
    with pytest.raises(FileExistsError, match="not empty"):
        build(bundle, model="tiny")
