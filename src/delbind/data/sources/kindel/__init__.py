"""KinDEL (Chen et al. 2025): a DNA-encoded library screen against MAPK14 / DDR1, turned into binders,
easy negatives and hard negatives, with DEL-aware splits and the held-out Kd sets.

The files come from the public bucket (anonymous read, cached) or from ``data.source``; the data is
CC BY-NC-SA 4.0 based, so it is fetched from its origin and never re-hosted.
"""

from delbind.data.sources.base import SOURCES, DataSource
from delbind.data.sources.kindel.build import TARGETS, build_kindel
from delbind.data.sources.kindel.heldout import heldout_sets

SOURCES.add("kindel", DataSource(build_kindel, heldout_sets))

__all__ = ["TARGETS", "build_kindel", "heldout_sets"]
