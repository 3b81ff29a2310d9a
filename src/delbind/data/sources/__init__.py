"""Data sources, one module each, registered by the name `data=<name>` selects."""

from delbind.data.sources import chembl_kinase, kindel, table  # noqa: F401  (each registers itself)
from delbind.data.sources.base import SOURCES, DataSource

__all__ = ["SOURCES", "DataSource"]
