"""Score a molecule file with a trained arm: `python scripts/predict.py model=<run dir> input=<file> output=<file>`.

Streams any size of CSV / TSV / .smi (gzipped too) or parquet; keeps the id columns and the row order; invalid
SMILES get a null score and are counted; `resume=true` continues a killed job. Several GPUs:
`accelerate launch scripts/predict.py ...` (each rank scores its share of the chunks; rank 0 merges).
Every key of conf/predict.yaml can be set as key=value (lists as id_columns=[id,plate]).
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("DELBIND_ROOT", str(ROOT))

from delbind.cli import run_task, setup_logging, task_config  # noqa: E402

if __name__ == "__main__":
    cfg = task_config(ROOT / "conf" / "predict.yaml", sys.argv[1:], __doc__)  # bad arguments fail in a second
    setup_logging()
    from delbind.tasks import predict  # torch, transformers: after the arguments are checked

    summary = run_task(predict.run, cfg)
    if summary:
        rows, invalid = summary["rows"], summary["invalid_smiles"]
        print(f"{summary['output']}: {rows:,} rows, {invalid:,} invalid SMILES (null score)")
