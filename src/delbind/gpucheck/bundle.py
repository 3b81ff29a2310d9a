"""Build the offline GPU check's bundle (``scripts/gpu_bundle.py``, ``make gpu-bundle``), on a machine with the package
index, for a GPU machine without one:

    <bundle>/check.sh      the one command there: ``bash <bundle>/check.sh [--steps N] [--out DIR]``
    <bundle>/bundle.json   what it was built from: commit, target Python and platform, trunk, data, wheels
    <bundle>/SHA256SUMS    every file's digest: check.sh refuses a damaged or partial copy
    <bundle>/wheels/       delbind and what a GPU image with torch and transformers lacks, at this venv's versions
    <bundle>/trunk/        the trunk, as a save_pretrained dir (config, weights, tokenizer)
    <bundle>/data/         a prepared dataset (scripts/prepare_data.py): the GPU machine needs no RDKit
    <bundle>/conf/         the Hydra config tree the check composes its runs from

A GPU image is assumed to have torch (its CUDA build), transformers, accelerate, peft, tokenizers, safetensors,
scikit-learn, scipy, pandas, pyarrow, matplotlib, tqdm and PyYAML; RDKit, wandb, xgboost, optuna and evaluate are
never needed by the check. Wheels come from ``pip download --no-deps`` for the target's Python and platform and are
cached under ``<cache>/wheels/gpu-bundle/``: a second build needs no network.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from delbind.assets import PIP_TIMEOUT_S, cache_root
from delbind.errors import AssetError, ConfigError, RunDirExistsError
from delbind.gpucheck import BUNDLE_LIMIT_BYTES
from delbind.integrity import sha256_of
from delbind.io import write_json, write_text
from delbind.provenance import commit, machine

ROOT = Path(__file__).resolve().parents[3]  # the checkout the bundle is built from
# Imported by the train path, absent from a typical GPU image: Hydra's config (omegaconf, antlr4) and the datasets
# library with its own small deps. xxhash is compiled: its wheel is fetched for the target's Python and platform.
CARRIED = ("hydra-core", "omegaconf", "antlr4-python3-runtime", "datasets", "dill", "multiprocess", "xxhash")
MODELS = ("rxnfp_bert", "tiny")  # the offline default trunk, or the random-init test model (CI's CPU check)


def build(
    out: Path,
    model: str = "rxnfp_bert",
    data: tuple[str, ...] = (),
    python: str | None = None,
    platform: str = "manylinux2014_x86_64",
) -> dict[str, Any]:
    """Write the bundle to ``out`` (a new or empty dir) and return its bundle.json. ``data``: prepare_data overrides
    (default: the default dataset, GSK3B, fold 0); ``python``: the GPU machine's ``X.Y`` (default: this one's)."""
    if model not in MODELS:
        raise ConfigError(f"model={model!r}: the bundle carries one of {MODELS}")
    if not (ROOT / "pyproject.toml").is_file():
        raise ConfigError(f"{ROOT} is not a delbind checkout: build the bundle from one (make gpu-bundle)")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise RunDirExistsError(f"{out} is not empty: the bundle is built into a new dir")
    python = python or f"{sys.version_info.major}.{sys.version_info.minor}"
    if not re.fullmatch(r"3\.\d+", python):
        raise ConfigError(f"python={python!r}: give the GPU machine's Python as X.Y, e.g. 3.11")
    out.mkdir(parents=True, exist_ok=True)
    wheels = {name: _carried_wheel(name, importlib.metadata.version(name), python, platform) for name in CARRIED}
    (out / "wheels").mkdir()
    for wheel in wheels.values():
        shutil.copy2(wheel, out / "wheels" / wheel.name)
    wheels["delbind"] = _delbind_wheel(out / "wheels")
    _trunk(model, out / "trunk")
    min_per_class = _prepared_data(data, out / "data")
    shutil.copytree(ROOT / "conf", out / "conf", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(Path(__file__).with_name("check.sh"), out / "check.sh")
    info = {
        "built": date.today().isoformat(), "commit": commit(ROOT), "machine": machine(),
        "python": python, "platform": platform, "model": model, "data": list(data), "min_per_class": min_per_class,
        "wheels": {name: {"file": w.name, "sha256": sha256_of(out / "wheels" / w.name)} for name, w in wheels.items()},
    }  # fmt: skip
    write_json(out / "bundle.json", info)
    files = sorted(p for p in out.rglob("*") if p.is_file())
    write_text(out / "SHA256SUMS", "".join(f"{sha256_of(p)}  {p.relative_to(out)}\n" for p in files))
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    if size > BUNDLE_LIMIT_BYTES:
        raise ConfigError(f"{out} is {size / 2**20:.1f} MiB, over the {BUNDLE_LIMIT_BYTES / 2**20:.0f} MiB limit")
    return info | {"size_bytes": size}


def _pip(args: list[str], what: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True,
                              timeout=PIP_TIMEOUT_S)  # fmt: skip
    except subprocess.TimeoutExpired as e:
        raise AssetError(f"could not fetch {what}: pip gave no answer in {PIP_TIMEOUT_S} s (no network?)") from e


def _carried_wheel(name: str, version: str, python: str, platform: str) -> Path:
    """``name==version``'s wheel for the target, from the cache or the index. A package the index has only as a
    source archive (antlr4-python3-runtime) is built here, and must come out pure Python."""
    cache = cache_root() / "wheels" / "gpu-bundle" / f"py{python}-{platform}"
    stem = f"{re.sub(r'[-_.]+', '_', name).lower()}-{version}-"
    cached = [w for w in sorted(cache.glob("*.whl")) if w.name.lower().startswith(stem)]
    if cached:
        return cached[0]
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        spec, common = f"{name}=={version}", ["--no-deps", "--dest", tmp, "--retries", "1", "--timeout", "20"]
        proc = _pip(["download", spec, *common, "--only-binary=:all:", "--python-version", python,
                     "--platform", platform], spec)  # fmt: skip
        built_here = proc.returncode != 0
        if built_here:
            proc = _pip(["wheel", spec, "--no-deps", "--wheel-dir", tmp, "--retries", "1", "--timeout", "20"], spec)
        built = sorted(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not built:
            last = (proc.stderr or "").strip().splitlines()[-1:] or ["no wheel written"]
            raise AssetError(f"could not fetch {spec} for Python {python} on {platform}: {last[0]}")
        if built_here and not built[0].name.endswith("-py3-none-any.whl"):
            raise AssetError(f"{spec} has no wheel for Python {python} on {platform}, and it is not pure Python")
        return Path(shutil.move(str(built[0]), cache / built[0].name))


def _delbind_wheel(dest: Path) -> Path:
    """delbind itself, built from a clean copy of the checkout's sources (no build/ left in the checkout)."""
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "delbind"
        shutil.copytree(ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(ROOT / name, project / name)
        proc = _pip(["wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(dest), str(project)], "delbind")
        if proc.returncode != 0:
            raise AssetError(f"could not build delbind's wheel: {(proc.stderr or '').strip()[-300:]}")
    return next(dest.glob("delbind-*.whl"))


def _trunk(model: str, dest: Path) -> None:
    """The trunk the check fine-tunes, loadable with ``model.name_or_path=<bundle>/trunk``."""
    from omegaconf import OmegaConf

    from delbind.models.loading import load_tokenizer_and_model
    from delbind.models.rxnfp import rxnfp_model_dir

    if model == "rxnfp_bert":
        shutil.copytree(rxnfp_model_dir(), dest)
        return
    tokenizer, classifier = load_tokenizer_and_model(OmegaConf.load(ROOT / "conf" / "model" / f"{model}.yaml"))
    classifier.trunk.save_pretrained(dest)
    tokenizer.save_pretrained(dest)


def _prepared_data(overrides: tuple[str, ...], dest: Path) -> int | None:
    """scripts/prepare_data.py with ``overrides``, its dataset/ copied to ``dest``; returns the eval-size floor the
    check runs at: 2 for a ``data.max_molecules`` subset, whose eval sets are tiny (as debug=smoke), else None (the
    config's)."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, str(ROOT / "scripts" / "prepare_data.py"), *overrides, f"hydra.run.dir={tmp}/run"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise ConfigError(f"prepare_data {' '.join(overrides)} failed: {(proc.stderr or '').strip()[-400:]}")
        shutil.copytree(Path(tmp) / "run" / "dataset", dest)
    return 2 if any(o.startswith("data.max_molecules=") for o in overrides) else None
