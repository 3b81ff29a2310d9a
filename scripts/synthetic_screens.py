"""Synthetic screens shaped like KinDEL's 1M file, for the tests and scripts/bench_data.py (not part of the package).

Building blocks per position as in the real library (a: 377 acids, b: 1,127 amines, c: 190 amino acids);
products a-c-b (a acylates c's amine, c's acid acylates b); rows sampled from the combinations; small Poisson
counts. A handful of active building blocks and disynthons carry signal, everything else is noise, so the top 1%
by enrichment is mostly noise spread over the library, as measured on the real screen. SMILES by string assembly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

KINDEL_BLOCKS = (377, 1127, 190)  # building blocks at positions a, b, c in the real KinDEL library

# Each ring starts with the atom that bonds to the template; "{}" takes a substituent branch (or nothing).
RINGS = ("c1ccc{}cc1", "c1cc{}ccc1", "c1c{}cccc1", "c1ccc{}cn1", "c1ccnc{}c1", "c1cncc{}c1", "c1cnc{}nc1",
         "c1ccc{}s1", "c1cc{}cs1", "c1ccc{}o1", "c1cc{}no1", "c1nc{}cs1", "C1CCC{}CC1", "C1CC{}C1", "C1CCC{}C1",
         "C1COCC{}C1", "C1CCOC{}C1", "c1ccc2cc{}ccc2c1", "c1ccc2[nH]c{}cc2c1", "c1ccc2occ{}c2c1", "C1CC{}CN1C(=O)C",
         "c1cc{}n[nH]1", "c1ccc2c{}cccc2n1")  # fmt: skip
# Ring digit 9 inside substituents: the rings above use 1 and 2, so any substituent fits any ring.
SUBSTITUENTS = ("", "(F)", "(Cl)", "(Br)", "(C)", "(CC)", "(OC)", "(C#N)", "(C(F)(F)F)", "(OC(F)(F)F)",
                "(S(C)(=O)=O)", "(C(N)=O)", "(N(C)C)", "(O)", "(C(C)C)", "(C9CC9)", "(OCC)")  # fmt: skip
# Per position: (linkers between template and ring, building-block SMILES, product fragment); {} = linker + ring.
POSITIONS = {
    "a": (("", "C"), "OC(=O){}", "O=C({})N"),  # carboxylic acid -> amide on c's amine
    "b": (("", "C", "CC"), "N{}", "C(=O)N{}"),  # amine acylated by c's acid
    "c": (("C",), "NC({})C(=O)O", "C({})"),  # amino acid: side chain
}


def _fragments(linkers: tuple[str, ...]) -> list[str]:
    """Distinct linker + ring + substituent strings, in a fixed shuffled order (blocks mix ring types)."""
    frags = list(dict.fromkeys(link + ring.format(sub) for link in linkers for ring in RINGS for sub in SUBSTITUENTS))
    return [frags[i] for i in np.random.default_rng(0).permutation(len(frags))]


def building_blocks(position: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` distinct building-block SMILES for a position and their product fragments (object arrays).

    A few blocks are listed as two comma-separated SMILES (the reagent and its salt), as some are in KinDEL.
    """
    linkers, reagent, product = POSITIONS[position]
    frags = _fragments(linkers)
    if n > len(frags):
        raise ValueError(f"at most {len(frags)} building blocks at position {position}")
    blocks = np.array([reagent.format(f) for f in frags[:n]], dtype=object)
    blocks[7::150] += ",Cl"
    return blocks, np.array([product.format(f) for f in frags[:n]], dtype=object)


def _sample_rows(blocks: tuple[int, int, int], n_rows: int, extra: np.ndarray, rng: np.random.Generator):
    """Block codes (a, b, c) of ``n_rows`` distinct combinations: the ``extra`` flat codes first, then random ones."""
    total = int(np.prod(blocks))
    picks = rng.choice(total, size=min(n_rows, total), replace=False)
    flat = pd.unique(np.concatenate([extra, picks]))[: min(n_rows, total)]
    return np.unravel_index(rng.permutation(flat), blocks)


def _series(pairs: list[tuple], blocks: tuple[int, int, int], size: int, rng: np.random.Generator) -> np.ndarray:
    """Flat codes of ``size`` molecules per active disynthon (random third block): the series a top 1M keeps."""
    codes = [
        np.ravel_multi_index(
            [np.full(size, x) if x is not None else rng.integers(n, size=size) for x, n in zip(p, blocks)], blocks
        )
        for p in pairs
    ]
    return np.concatenate(codes) if codes else np.zeros(0, dtype=np.int64)


# Reads per replicate at mean abundance: sequencing depth differs between replicates and samples; the load (the
# library before selection) is sequenced deeper than the selections. Two profiles: "synthetic", the project's first
# fixture (control:target reads ~5), and "kindel", KinDEL's 1M file as read (load 8-40 reads a molecule, ~30
# typical; matrix ~0.34 and target ~0.30 a replicate: control:target ~35), where evidence of non-binding costs far
# more reads. "yield_sd": the log-normal sd of the block and own synthesis yields that spread molecules' abundance
# (KinDEL's top 1M is narrower than a whole library: its load counts stay within a few-fold).
DEPTHS = {
    "synthetic": {"target": (0.5, 0.6, 0.75), "matrix": (0.65, 0.5, 0.6), "load": 8.0, "yield_sd": (0.3, 0.5)},
    "kindel": {"target": (0.27, 0.30, 0.33), "matrix": (0.31, 0.34, 0.37), "load": 30.0, "yield_sd": (0.1, 0.2)},
}
BARELY_SAMPLED = 0.05  # share of molecules at 1/20 of their abundance (failed or poor syntheses): a tail of 0-1 reads
REPLICATE_CV = 0.3  # replicate noise: each replicate's rate varies around the molecule's (gamma, this CV)


def _abundance(
    blocks: tuple[int, int, int], codes: tuple, rng: np.random.Generator, yield_sd: tuple[float, float]
) -> np.ndarray:
    """Each molecule's share of the library, relative to the mean: per-block synthesis yields (log-normal, sd
    ``yield_sd[0]``) times a molecule's own yield (log-normal, ``yield_sd[1]``), with a tail of barely-sampled
    molecules."""
    block_yield = np.prod([rng.lognormal(0.0, yield_sd[0], size)[code] for size, code in zip(blocks, codes)], axis=0)
    own = rng.lognormal(0.0, yield_sd[1], len(block_yield))
    tail = np.where(rng.random(len(block_yield)) < BARELY_SAMPLED, 0.05, 1.0)
    abundance = block_yield * own * tail
    return abundance / abundance.mean()


def _reads(rate: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Poisson reads around a rate with replicate noise (a gamma-Poisson mixture: overdispersed, as DEL counts are)."""
    shape = 1 / REPLICATE_CV**2
    return rng.poisson(rate * rng.gamma(shape, 1 / shape, len(rate)))


def synthetic_screen(
    n_rows: int = 1_000_000,
    blocks: tuple[int, int, int] = KINDEL_BLOCKS,
    seed: int = 0,
    n_active: tuple[int, int] = (6, 6),
    depth: str = "synthetic",
) -> pd.DataFrame:
    """A KinDEL-schema screen of ``n_rows`` molecules from ``blocks`` building blocks at positions a, b, c, sequenced
    at ``depth`` (a profile of ``DEPTHS``).

    ``n_active`` = (active disynthons, active building blocks): an active disynthon multiplies its molecules'
    target rate by 12 and the screen keeps a series of its molecules (the file is the screen's top 1M, which
    holds them); an active block multiplies by 3. Sequencing depth is uneven, as in a real screen: each molecule's
    abundance (block and own synthesis yields, a barely-sampled tail) scales its target, matrix and load reads,
    replicates differ in depth, and each read count carries replicate noise.
    """
    rng = np.random.default_rng(seed)
    n_a, n_b, n_c = blocks
    # Active disynthons: a-c or c-b pairs (bonded in the product); active blocks at any position.
    pairs = [(rng.integers(n_a), None, rng.integers(n_c)) if i % 2 else (None, rng.integers(n_b), rng.integers(n_c))
             for i in range(n_active[0])]  # fmt: skip
    extra = _series(pairs, blocks, max(10, n_rows // 3000), rng)
    ia, ib, ic = _sample_rows(blocks, n_rows, extra, rng)
    codes = (ia, ib, ic)
    activity = np.ones(len(ia))
    for p in pairs:
        activity[np.logical_and.reduce([code == x for code, x in zip(codes, p) if x is not None])] *= 12.0
    for i in range(n_active[1]):
        pos = i % 3
        activity[codes[pos] == rng.integers(blocks[pos])] *= 3.0
    profile = DEPTHS[depth]
    abundance = _abundance(blocks, codes, rng, profile["yield_sd"])
    (sa, fa), (sb, fb), (sc, fc) = (building_blocks(pos, size) for pos, size in zip("abc", blocks))
    df = pd.DataFrame({"smiles": fa[ia] + fc[ic] + fb[ib]})
    df["molecule_hash"] = pd.Series(ia).astype(str) + "-" + pd.Series(ib).astype(str) + "-" + pd.Series(ic).astype(str)
    df["smiles_a"], df["smiles_b"], df["smiles_c"] = sa[ia], sb[ib], sc[ic]
    for i, reads in enumerate(profile["target"], 1):
        df[f"seq_target_{i}"] = _reads(reads * abundance * activity, rng)
    for i, reads in enumerate(profile["matrix"], 1):
        df[f"seq_matrix_{i}"] = _reads(reads * abundance, rng)
    df["seq_load"] = _reads(profile["load"] * abundance, rng)
    return df
