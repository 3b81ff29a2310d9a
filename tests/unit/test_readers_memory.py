"""Parquet inputs are read in chunks whatever their row groups: one huge group costs no more memory than small ones."""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from delbind.scoring.readers import open_table

ROOT = Path(__file__).resolve().parents[2]


def test_one_big_row_group_comes_out_in_chunks_of_at_most_k_rows_in_file_order(tmp_path):
    n = 10_007
    frame = pd.DataFrame({"id": np.arange(n) * 3, "SMILES": [f"C{'C' * (i % 7)}O" for i in range(n)],
                          "batch": [f"{i % 5:03d}" for i in range(n)]})  # fmt: skip
    path = tmp_path / "library.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=n)
    assert pq.read_metadata(path).num_row_groups == 1  # the worst case the reader must stream

    chunks = list(open_table(path).chunks(1_000))

    assert [len(c) for c in chunks] == [1_000] * 10 + [7]
    assert all(list(c.columns) == ["SMILES", "id", "batch"] for c in chunks)  # SMILES first, then ids in file order
    read = pd.concat(chunks, ignore_index=True)
    pd.testing.assert_frame_equal(read, frame[["SMILES", "id", "batch"]])  # every row, in order, types kept
    assert [len(c) for c in open_table(path, id_columns=["batch"]).chunks(4_000)] == [4_000, 4_000, 2_007]


# Reads a file in chunks of 500 rows; prints Arrow's peak allocation and the peak RSS growth while reading, in MB.
MEASURE = textwrap.dedent("""
    import sys
    from pathlib import Path
    import pyarrow as pa
    from delbind.scoring.readers import open_table

    def peak_kb():
        status = Path("/proc/self/status").read_text().splitlines()
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

    table = open_table(sys.argv[1])
    Path("/proc/self/clear_refs").write_text("5")  # the peak RSS restarts from here
    before = peak_kb()
    rows = sum(len(chunk) for chunk in table.chunks(500))
    print(rows, pa.default_memory_pool().max_memory() / 2**20, (peak_kb() - before) / 1024)
""")


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="peak RSS reset needs Linux /proc")
def test_reading_a_single_row_group_file_streams_its_pages(tmp_path):
    """A 76 MB column in one row group. A reader that loads the group's column chunk peaks above its size: 95 MB of
    Arrow memory, 119-149 MB of RSS growth (measured with pyarrow's mimalloc, jemalloc and system allocators); the
    streamed reader holds one chunk and one page: 20 MB of Arrow memory, 33-61 MB of RSS growth."""
    n, width = 16_000, 5_000
    hex_rows = np.random.default_rng(0).integers(0, 256, size=(n, width // 2), dtype=np.uint8)
    smiles = [row.tobytes().hex() for row in hex_rows]  # incompressible: the file is as big as its text
    path = tmp_path / "wide.parquet"
    pq.write_table(pa.table({"smiles": smiles, "id": np.arange(n)}), path, row_group_size=n)
    column_mb = pq.read_metadata(path).row_group(0).column(0).total_compressed_size / 2**20
    assert column_mb > 70

    result = subprocess.run([sys.executable, "-c", MEASURE, str(path)], capture_output=True, text=True, cwd=ROOT)

    assert result.returncode == 0, result.stderr
    rows, arrow_peak_mb, rss_growth_mb = result.stdout.split()
    assert int(rows) == n
    assert float(arrow_peak_mb) < column_mb / 2
    assert float(rss_growth_mb) < 90
