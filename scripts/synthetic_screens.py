"""Synthetic screens in the KinDEL schema, for the tests and scripts/bench_data.py (not part of the package)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from delbind.data.sources.kindel.screen import MATRIX_COUNTS, TARGET_COUNTS, enrichment_of

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
