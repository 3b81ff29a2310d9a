"""The course report: every run below some dirs -> report.html (self-contained) and report.ipynb (rebuilds it)."""

from delbind.report import sections
from delbind.report.build import write_report
from delbind.report.data import Report, load_report
from delbind.report.render import show

__all__ = ["Report", "load_report", "sections", "show", "write_report"]
