"""KinDEL's held-out Kd sets (on-DNA and off-DNA), scored after training as external eval sets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from delbind.data.chem import canonical_smiles
from delbind.data.sources.kindel.files import kindel_file
from delbind.errors import DataError

HELDOUT = ("ondna", "offdna")


def _read_heldout(path: Path) -> pd.DataFrame:
    """A held-out CSV without its unnamed leading index column (if any); molecule_hash empty where absent."""
    raw = pd.read_csv(path)
    raw = raw.loc[:, ~raw.columns.str.startswith("Unnamed:")]
    missing = [c for c in ("smiles", "kd") if c not in raw.columns]
    if missing:
        raise DataError(f"{path} lacks columns {missing}: expected a KinDEL held-out file (smiles, kd)")
    if "molecule_hash" not in raw.columns:  # external compounds only
        raw["molecule_hash"] = np.nan
    return raw


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
        raw = _read_heldout(path)
        st[f"heldout_{which}_rows"] = len(raw)
        frame = raw.assign(smiles=canonical_smiles(raw["smiles"]), kd=pd.to_numeric(raw["kd"], errors="coerce"))
        # Kd 0 (ddr1 off-DNA) is no fitted affinity: inactive or not determined, so neither label is justified and
        # -log10 of it is infinite. Treated as missing: dropped and counted, like a row without a Kd.
        kd_zero, no_kd = frame["kd"] == 0, ~(frame["kd"] >= 0) | ~np.isfinite(frame["kd"])
        bad_smiles = frame["smiles"].isna() & ~kd_zero & ~no_kd
        st[f"heldout_{which}_kd_zero_dropped"] = int(kd_zero.sum())
        st[f"heldout_{which}_kd_missing_dropped"] = int(no_kd.sum())  # empty, negative, infinite or not a number
        st[f"heldout_{which}_invalid_dropped"] = int(bad_smiles.sum())  # unparsable SMILES
        frame = frame[~(kd_zero | no_kd | bad_smiles)]
        frame = frame.assign(label=lambda f: (f["kd"] <= cfg.kd_binder_nm).astype(int), kind="heldout")
        frame = frame[["smiles", "label", "kind", "kd", "molecule_hash"]].reset_index(drop=True)
        lib = frame[frame["molecule_hash"].notna()].reset_index(drop=True)
        out[f"heldout_{which}_lib"], out[f"heldout_{which}_all"] = lib, frame
    return out
