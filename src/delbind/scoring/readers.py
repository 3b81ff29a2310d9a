"""Molecule files of any size, read in chunks: CSV / TSV (gzipped too), parquet, and .smi.

Every reader yields DataFrames of at most ``chunk_rows`` rows, in file order: the SMILES column and the id
columns. CSV / TSV / .smi columns are kept as text, exactly as in the file (ids keep their leading zeros);
parquet keeps its types. Memory holds one chunk, however large the file: parquet pages are streamed through a small
buffer on one thread, so a file written as one huge row group (pandas' ``to_parquet`` puts up to 1M rows in one)
costs no more than one with small groups.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from delbind.errors import DataError

TEXT_SEPARATORS = {".csv": ",", ".tsv": "\t", ".txt": "\t"}
# Parquet read buffer. Without one pyarrow reads each column's whole chunk of a row group at once (for a file of
# one row group, the whole compressed column: 149 MB of SMILES + id at 5M rows); with one it reads page by page.
PARQUET_BUFFER_BYTES = 1 << 20


def file_format(path: Path) -> str:
    """``csv`` / ``tsv`` / ``parquet`` / ``smi`` from the name (``.gz`` allowed on the text formats)."""
    name = path.name.lower().removesuffix(".gz")
    for suffix, fmt in ((".csv", "csv"), (".tsv", "tsv"), (".txt", "tsv"), (".smi", "smi"), (".parquet", "parquet")):
        if name.endswith(suffix):
            if fmt == "parquet" and path.name.lower().endswith(".gz"):
                break
            return fmt
    raise DataError(f"{path}: unknown file type; use .csv, .tsv, .smi (each optionally .gz) or .parquet")


@dataclass(frozen=True)
class MoleculeTable:
    """A molecule file and the columns to carry: ``smiles_column`` and ``id_columns`` (in file order)."""

    path: Path
    format: str
    columns: list[str]
    smiles_column: str
    id_columns: list[str]
    n_rows: int | None  # known up front for parquet; counted while reading otherwise

    def chunks(self, chunk_rows: int) -> Iterator[pd.DataFrame]:
        """The file's rows, ``chunk_rows`` at a time: the SMILES column first, then the id columns."""
        keep = [self.smiles_column, *self.id_columns]
        if self.format == "parquet":
            yield from _parquet_chunks(self.path, chunk_rows, keep)
        elif self.format == "smi":
            yield from _smi_chunks(self.path, chunk_rows, keep)
        else:
            sep = TEXT_SEPARATORS[f".{self.format}"]
            text = dict(dtype=str, keep_default_na=False)  # ids stay exactly as written
            for chunk in pd.read_csv(self.path, sep=sep, usecols=keep, chunksize=chunk_rows, **text):
                yield chunk[keep]


def open_table(
    path: Path | str, smiles_column: str | None = None, id_columns: Sequence[str] | None = None
) -> MoleculeTable:
    """Check the file and its columns before any scoring: a missing file or column is one clear error.

    ``smiles_column`` None: the column named ``smiles`` in any case. ``id_columns`` None: every other column.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"input file {path} does not exist")
    fmt = file_format(path)
    n_rows = None
    if fmt == "parquet":
        try:
            meta = pq.ParquetFile(path)
        except Exception as e:  # pyarrow raises several types for a damaged file
            raise DataError(f"{path} is not a readable parquet file: {type(e).__name__}: {e}") from e
        columns, n_rows = list(meta.schema_arrow.names), meta.metadata.num_rows
    elif fmt == "smi":
        columns = ["smiles", "name"]
    else:
        try:
            columns = list(pd.read_csv(path, sep=TEXT_SEPARATORS[f".{fmt}"], dtype=str, nrows=0).columns)
        except (ValueError, OSError, gzip.BadGzipFile, UnicodeDecodeError) as e:
            raise DataError(f"{path} is not a readable {fmt} file: {type(e).__name__}: {e}") from e
    if smiles_column is None:
        matches = [c for c in columns if c.lower() == "smiles"]
        if len(matches) != 1:
            raise DataError(f"{path}: no single column named 'smiles' among {columns}; pass smiles_column=<name>")
        smiles_column = matches[0]
    missing = [c for c in [smiles_column, *(id_columns or [])] if c not in columns]
    if missing:
        raise DataError(f"{path}: columns {missing} not found; the file has {columns}")
    ids = [c for c in columns if c != smiles_column] if id_columns is None else list(id_columns)
    return MoleculeTable(path, fmt, columns, smiles_column, ids, n_rows)


def _smi_chunks(path: Path, chunk_rows: int, keep: list[str]) -> Iterator[pd.DataFrame]:
    """.smi: one molecule per line, ``SMILES[<whitespace>name]``, no header; blank lines are rows with no SMILES."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    rows: list[tuple[str, str]] = []
    with opener(path, "rt") as f:
        for line in f:
            parts = line.rstrip("\r\n").split(maxsplit=1)
            rows.append((parts[0] if parts else "", parts[1] if len(parts) > 1 else ""))
            if len(rows) == chunk_rows:
                yield pd.DataFrame(rows, columns=["smiles", "name"])[keep]
                rows = []
    if rows:
        yield pd.DataFrame(rows, columns=["smiles", "name"])[keep]


def _parquet_chunks(path: Path, chunk_rows: int, keep: list[str]) -> Iterator[pd.DataFrame]:
    """Parquet, streamed: peak memory is one chunk and one page per column, not one row group.

    ``buffer_size`` reads the column chunks page by page (``pre_buffer=False``: not the whole row group ahead); one
    thread (``use_threads=False``) because pyarrow's allocator keeps pages freed by its decoding threads, so memory
    would still grow with the file. Peak RSS growth reading SMILES + id in 20,000-row chunks from one row group of
    100k / 5M rows (measured): 48 / 48 MB; 60 / 100 MB with decoding threads; 55 / 240 MB unbuffered. One thread
    is no slower here: the reader decodes two or three columns, and scoring a chunk takes far longer.
    """
    with pq.ParquetFile(path, buffer_size=PARQUET_BUFFER_BYTES, pre_buffer=False) as parquet:
        for batch in parquet.iter_batches(batch_size=chunk_rows, columns=keep, use_threads=False):
            yield batch.to_pandas()
