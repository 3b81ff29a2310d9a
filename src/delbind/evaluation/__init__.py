"""Scores to numbers and pictures: AUROC / AU-PRC, bootstrap intervals, plots."""

from delbind.evaluation.bootstrap import bootstrap_ci, score_set
from delbind.evaluation.metrics import METRICS, binary_metrics, compute_metrics, external_metrics
from delbind.evaluation.plots import draw_loss_curve, plot_loss_curve

__all__ = [
    "METRICS",
    "binary_metrics",
    "bootstrap_ci",
    "compute_metrics",
    "draw_loss_curve",
    "external_metrics",
    "plot_loss_curve",
    "score_set",
]
