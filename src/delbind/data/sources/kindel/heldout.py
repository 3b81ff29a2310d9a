"""KinDEL's held-out Kd sets (on-DNA and off-DNA), scored after training as external eval sets."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from delbind.data.chem import canonical_smiles
from delbind.data.sources.kindel.files import kindel_file
from delbind.errors import DataError

HELDOUT = ("ondna", "offdna")


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


# Each ring ends on a carbon, which bonds to the next part of the template.
