"""Hydra callbacks of the comparison experiments: refresh the sweep's tables after every job (a sweep cut short, or
with a failed job, still has them) and write the report or the panel when it ends. They sit above comparison and
report, which never import them (no import circle)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from delbind.comparison import write_comparison
from delbind.comparison.panel import write_panel
from delbind.errors import ConfigError, NoRunsError
from delbind.report import write_report

log = logging.getLogger(__name__)


class WriteComparison(Callback):
    """Hydra callback: refresh the sweep's comparison after every job (so a sweep cut short or with a failed job
    still has one); when the sweep ends, write the course report beside it and log both to wandb.
    ``reference``: the row the verdicts pair against (``hydra.callbacks.comparison.reference=ecfp_rf``); None = the
    val-best row, which is also used (logged once) while the reference has no run yet."""

    def __init__(self, reference: str | None = None, margin: float = 0.02) -> None:
        self.reference, self.margin, self._warned = reference, margin, False

    def _write(self, sweep_dir: Path) -> str | None:
        """Write the comparison; returns the reference used."""
        try:
            write_comparison([sweep_dir], sweep_dir, wandb_project=None, reference=self.reference, margin=self.margin)
            return self.reference
        except ConfigError as e:
            if not self._warned:
                log.warning("comparison: %s; paired against the val-best row until it has run", e)
                self._warned = True
            write_comparison([sweep_dir], sweep_dir, wandb_project=None, margin=self.margin)
            return None

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        try:
            self._write(Path(config.hydra.sweep.dir))
        except FileNotFoundError:  # no job has finished yet
            return

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        reference = self._write(sweep_dir)
        project = config.logger.get("wandb", {}).get("project", "delbind")
        write_report([sweep_dir], sweep_dir, project, reference=reference, margin=self.margin)
        print(f"comparison: {sweep_dir / 'comparison.md'}; report: {sweep_dir / 'report.html'}")


class WritePanel(Callback):
    """Hydra callback of ``experiment=kinase_panel``: refresh panel.md in the sweep dir after every job (a panel cut
    short still has one, with the targets and folds that ran) and once more when the sweep ends."""

    def __init__(self, development: str, reference: str, margin: float = 0.02) -> None:
        self.development, self.reference, self.margin = development, reference, margin

    def _write(self, sweep_dir: Path) -> None:
        try:
            write_panel([sweep_dir], sweep_dir, self.development, self.reference, self.margin)
        except (ConfigError, NoRunsError) as e:  # the reference has not run on any target yet
            log.info("panel not written yet: %s", e)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        self._write(Path(config.hydra.sweep.dir))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        self._write(sweep_dir)
        print(f"panel: {sweep_dir / 'panel.md'}")
