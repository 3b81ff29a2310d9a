"""Scores written as numbered parquet parts beside the output, so a killed job continues where it stopped.

``<output>.parts/`` holds ``manifest.json`` (what the parts were made from) and ``part-<chunk>.parquet``, one per
input chunk, each written atomically: a part on disk is complete. The final file is merged from the parts in
chunk order, streamed (one part in memory), its row count checked against the input, and the parts removed.
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from delbind.errors import DataError, RunDirExistsError
from delbind.io import atomic_write, write_json


class PartStore:
    """The parts of one output file: claimed (fresh or resumed), written, checked and merged."""

    def __init__(self, output: Path):
        self.output = Path(output)
        self.dir = self.output.with_name(self.output.name + ".parts")

    def part(self, chunk: int) -> Path:
        return self.dir / f"part-{chunk:06d}.parquet"

    def claim(self, manifest: dict[str, Any], resume: bool) -> None:
        """Start fresh, or (``resume``) keep the parts of an earlier job made from the same input and settings."""
        output_format(self.output)  # a bad name fails now, not after hours of scoring
        if self.output.exists():
            raise RunDirExistsError(f"{self.output} exists: pass another output=<path>, or delete it to score again")
        recorded = self.dir / "manifest.json"
        if self.dir.exists() and not resume:
            raise RunDirExistsError(
                f"{self.dir} holds the parts of an earlier, unfinished job: pass resume=true to continue it, "
                "or delete the dir to start over"
            )
        if self.dir.exists() and recorded.is_file():
            earlier = json.loads(recorded.read_text())
            changed = sorted(k for k in manifest.keys() | earlier.keys() if manifest.get(k) != earlier.get(k))
            if changed:
                raise DataError(
                    f"{self.dir} was made with other {', '.join(changed)}: resume needs the same input and settings "
                    "(or delete the dir to start over)"
                )
        try:  # exclusive when fresh: of two jobs started together on one output, the second stops here
            self.dir.mkdir(parents=True, exist_ok=resume)
        except FileExistsError:
            raise RunDirExistsError(f"{self.dir} was just claimed by another job writing {self.output}") from None
        write_json(recorded, manifest)

    def done(self, chunk: int, n_rows: int) -> bool:
        """The chunk's part is on disk with its ``n_rows`` rows (a part with another count is scored again)."""
        path = self.part(chunk)
        try:
            return path.is_file() and pq.read_metadata(path).num_rows == n_rows
        except (OSError, pa.ArrowInvalid):
            return False

    def write(self, chunk: int, frame: pd.DataFrame) -> None:
        with atomic_write(self.part(chunk)) as tmp:
            frame.to_parquet(tmp, index=False)

    def merge(self, chunk_rows: list[int], score_column: str) -> dict[str, int]:
        """One output file from every chunk's part, in order; counts rows and null scores; removes the parts.

        Parquet (``.parquet``), else CSV / TSV by the output's name (``.gz``: gzipped). Raises when a part is
        missing or holds another number of rows than its chunk: the output would not match the input row for row.
        """
        for chunk, n in enumerate(chunk_rows):
            if not self.done(chunk, n):
                raise DataError(f"{self.part(chunk)} is missing or does not hold its chunk's {n} rows: resume=true")
        rows = nulls = 0
        with atomic_write(self.output) as tmp, _writer(tmp, self.output) as write:
            for chunk in range(len(chunk_rows)):
                table = pq.read_table(self.part(chunk))
                rows += table.num_rows
                nulls += table.column(score_column).null_count
                write(table)
        if rows != sum(chunk_rows):
            self.output.unlink()
            raise DataError(f"{self.output}: {rows} rows written for {sum(chunk_rows)} input rows")
        shutil.rmtree(self.dir)
        return {"rows": rows, "null_scores": nulls}


def output_format(output: Path) -> str:
    """``parquet``, ``csv`` or ``tsv`` from the output's name (the text formats may end in ``.gz``)."""
    name = output.name.lower()
    for fmt in ("parquet", "csv", "tsv"):
        if name.endswith(f".{fmt}") or (fmt != "parquet" and name.endswith(f".{fmt}.gz")):
            return fmt
    raise DataError(f"output={output}: name it .parquet, .csv or .tsv (the last two optionally .gz)")


@contextmanager
def _writer(tmp: Path, output: Path) -> Iterator[Any]:
    """A function appending Arrow tables to ``tmp`` in the format ``output``'s name asks for."""
    name = output.name.lower()
    if name.endswith(".parquet"):
        writer: pq.ParquetWriter | None = None

        def write_parquet(table: pa.Table) -> None:
            nonlocal writer
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table.cast(writer.schema))

        try:
            yield write_parquet
        finally:
            if writer is not None:
                writer.close()
        return
    sep = "\t" if output_format(output) == "tsv" else ","
    handle: IO[str] = gzip.open(tmp, "wt", newline="") if name.endswith(".gz") else open(tmp, "w", newline="")  # noqa: SIM115
    first = True

    def write_text(table: pa.Table) -> None:
        nonlocal first
        table.to_pandas().to_csv(handle, sep=sep, index=False, header=first)
        first = False

    try:
        yield write_text
    finally:
        handle.close()
