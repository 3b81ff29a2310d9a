"""The 1M-row screen: its columns, read as arrays (strings stay in Arrow), and the Poisson enrichment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from scipy import stats

from delbind.errors import DataError

SYNTHONS = ("smiles_a", "smiles_b", "smiles_c")


TARGET_COUNTS = ("seq_target_1", "seq_target_2", "seq_target_3")


MATRIX_COUNTS = ("seq_matrix_1", "seq_matrix_2", "seq_matrix_3")


LOAD_COUNTS = ("seq_load",)  # the library before selection: read when present (negative evidence)


REQUIRED = ("smiles", "molecule_hash", *SYNTHONS, *TARGET_COUNTS)


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
    counts = [c for c in (*TARGET_COUNTS, *MATRIX_COUNTS, *LOAD_COUNTS) if c in names]
    extra = ["target_enrichment"] if "target_enrichment" in names else []
    table = pq.read_table(path, columns=[*SYNTHONS, *counts, *extra], read_dictionary=list(SYNTHONS))
    screen: dict[str, Any] = {"path": path, "n": table.num_rows}
    for col in SYNTHONS:  # dictionary-encoded: integer codes, no per-row strings
        cat = table.column(col).to_pandas()
        # codes in the blocks' sorted order, not their order of first appearance: a reordered file, same codes
        screen[col] = cat.cat.reorder_categories(sorted(cat.cat.categories)).cat.codes.to_numpy()
    for col in (*counts, *extra):
        screen[col] = table.column(col).to_numpy(zero_copy_only=False)
    check_values(screen, counts, extra)
    return screen


def check_values(screen: dict[str, Any], counts: list[str], enrichment: list[str]) -> None:
    """Read counts are whole numbers >= 0 and an enrichment is a finite number >= 0: anything else is one error
    naming the column and how many rows break the rule (a NaN would make every cut below NaN)."""
    problems = []
    for col in (*counts, *enrichment):
        values = np.asarray(screen[col], dtype=float)
        finite = np.isfinite(values)
        bad = {
            "missing (NaN)": int(np.isnan(values).sum()),
            "infinite": int(np.isinf(values).sum()),
            "negative": int((finite & (values < 0)).sum()),
        }
        if col in counts:
            bad["non-integer"] = int((finite & (values != np.floor(values))).sum())
        problems += [f"{col}: {n:,} {what}" for what, n in bad.items() if n]
    if problems:
        raise DataError(
            f"{screen['path']}: {'; '.join(problems)} of {screen['n']:,} rows; read counts must be whole numbers "
            ">= 0 and target_enrichment a finite number >= 0: fix or drop those rows"
        )


def molecule_keys(screen: dict[str, Any]) -> np.ndarray:
    """One int64 per row naming its building blocks (a, b, c): the same molecule has the same key in any row order."""
    a, b, c = (screen[col].astype(np.int64) for col in SYNTHONS)
    width = np.int64(max(int(x.max(initial=0)) for x in (a, b, c)) + 1)
    return (a * width + b) * width + c


def enrichment_of(screen: dict[str, Any]) -> np.ndarray:
    """``target_enrichment`` where the file has it, else the same Poisson enrichment from the counts."""
    if "target_enrichment" in screen:
        return np.asarray(screen["target_enrichment"], dtype=float)
    stack = lambda cols: np.column_stack([screen[c] for c in cols]).astype(np.int64)  # noqa: E731
    return poisson_enrichment(stack(TARGET_COUNTS), stack(MATRIX_COUNTS))


def rows_frame(screen: dict[str, Any], rows: np.ndarray, kind: np.ndarray, enrichment: np.ndarray) -> pd.DataFrame:
    """The chosen rows with their strings, read from the file only for those rows."""
    table = pq.read_table(screen["path"], columns=["smiles", "molecule_hash", *SYNTHONS]).take(rows)
    df = table.to_pandas()
    for col in ("smiles", "molecule_hash", *SYNTHONS):
        df[col] = df[col].astype(str)
    return df.assign(row=rows, kind=kind[rows], enrichment=enrichment[rows])
