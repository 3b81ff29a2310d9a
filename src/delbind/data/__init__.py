"""The data stage: chemistry, splits, sampling, sources, and the labelled, split dataset they make."""

from delbind.data.dataset import (
    EVAL_SETS,
    KINDS,
    build_dataset,
    check_dataset,
    eval_frames,
    external_sets,
    with_external,
)
from delbind.data.prepared import read_prepared, write_dataset
from delbind.data.splits import SPLITS

__all__ = [
    "EVAL_SETS",
    "KINDS",
    "SPLITS",
    "build_dataset",
    "check_dataset",
    "eval_frames",
    "external_sets",
    "read_prepared",
    "with_external",
    "write_dataset",
]
