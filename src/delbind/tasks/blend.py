"""Blend two arms' runs fold by fold -> one run dir per fold (``scripts/blend.py``)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from delbind.blend import write_blends
from delbind.tasks.compare import output_dir


def run(cfg: DictConfig) -> list[Path]:
    """``cfg.dirs``: the runs of both arms; ``cfg.arms``: which two rows; ``cfg.weight``: a number or ``val``;
    ``cfg.out``: where the blend run dirs go. Returns them."""
    written = write_blends(cfg, output_dir(cfg, "blends"))
    print("written: " + ", ".join(str(d) for d in written))
    print("compare them with the arms: python scripts/compare.py <the arms' dirs> " + str(written[0].parent))
    return written
