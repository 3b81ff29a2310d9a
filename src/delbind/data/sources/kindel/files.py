"""KinDEL files: from ``data.source``, the cache, or the public bucket (anonymous read, one short try)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import fsspec
from fsspec.callbacks import TqdmCallback
from omegaconf import DictConfig

from delbind.assets import cache_root
from delbind.errors import DataError
from delbind.integrity import file_mismatch, file_record
from delbind.io import write_json

log = logging.getLogger(__name__)

BROWSE_URL = "https://42basepairs.com/browse/s3/kin-del-2024"
# One short try: an unreachable bucket must fail in seconds, not after botocore's retry loop.
S3_CONFIG = {"connect_timeout": 5, "read_timeout": 60, "retries": {"max_attempts": 1}}


_unreachable: dict[str, str] = {}  # bucket -> why; later files skip a bucket that already failed to connect


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
        write_json(_record(dest), file_record(dest))
    except FileNotFoundError:
        return "not found in the bucket"
    except (OSError, BotoCoreError, ClientError) as e:
        _unreachable[bucket] = f"the bucket is unreachable: {type(e).__name__}"
        return _unreachable[bucket]
    finally:
        tmp.unlink(missing_ok=True)
    return None


def _record(cached: Path) -> Path:
    return cached.with_name(f"{cached.name}.sha256.json")  # size + sha256, checked on every read


def _intact(cached: Path) -> bool:
    """True when the cached file matches its record; a damaged one is logged and deleted (fetched again)."""
    if not _record(cached).is_file():  # fetched before records existed (whole: downloads were atomic)
        write_json(_record(cached), file_record(cached))
        return True
    try:
        reason = file_mismatch(cached, json.loads(_record(cached).read_text()))
    except ValueError:
        reason = "its record is unreadable"
    if reason is None:
        return True
    log.warning("cached KinDEL file %s is damaged (%s): discarded, fetching it again", cached, reason)
    cached.unlink(missing_ok=True)
    _record(cached).unlink(missing_ok=True)
    return False


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
        if cached.is_file() and _intact(cached):
            return cached
        reason = _download(cfg.bucket, rel, cached, cfg.get("endpoint_url"))
        if reason is None:
            return cached
    if required:
        raise DataError(_missing(rel, reason, cfg.bucket))
    log.warning("%s; going on without it", _missing(rel, reason, cfg.bucket))
    return None
