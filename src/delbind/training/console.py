"""The training console: one progress bar with the running loss, one line per evaluation.

Every logged step (``logging_steps: 1`` feeds the loss curve) still goes to ``trainer.state.log_history`` and the
loggers; only what is printed changes. The stock ProgressCallback prints each log as a dict line (240 on the default
run) and a bar per eval set.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from tqdm.auto import tqdm
from transformers import ProgressCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.utils import logging as hf_logging

SHOWN = ("loss", "auroc", "auprc")  # per eval set; runtime and throughput stay in the history


class ConsoleCallback(ProgressCallback):
    """Stock training bar with the running loss as postfix; the eval sets of one evaluation on one line."""

    def __init__(self, eval_sets: Sequence[str] = (), bar: bool = True):
        super().__init__()
        # Longest first, so "val_hard_x" never parses as a set "val" with metric "hard_x".
        self.eval_sets = sorted(eval_sets, key=len, reverse=True)
        self.bar = bar
        self._losses: list[float] = []  # training losses logged since the last evaluation
        self._pending: dict[str, dict[str, float]] = {}
        self._pending_step: int | None = None
        self._trained = False  # evaluations after training (the best model re-scored) say so

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        self._losses, self._pending, self._trained = [], {}, False
        if self.bar:
            super().on_train_begin(args, state, control, **kwargs)

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        if self.training_bar is not None:
            super().on_step_end(args, state, control, **kwargs)

    def on_prediction_step(self, *args: Any, **kwargs: Any) -> None:
        """No bar per eval set: evaluation on CPU takes seconds and its line follows."""

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, logs=None, **kwargs: Any):
        if not state.is_world_process_zero or not logs:
            return
        if "loss" in logs:
            self._losses.append(float(logs["loss"]))
            if self.training_bar is not None:
                running = sum(self._losses) / len(self._losses)
                self.training_bar.set_postfix(loss=f"{running:.4f}", refresh=False)
        evals = {k.removeprefix("eval_"): v for k, v in logs.items() if k.startswith("eval_")}
        if evals:
            self._collect(state, evals)

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        self._flush(state)
        self._trained = True
        if self.training_bar is not None:
            super().on_train_end(args, state, control, **kwargs)

    def _collect(self, state: TrainerState, evals: dict[str, float]) -> None:
        """Hold one eval set's metrics until every set of this evaluation has reported, then print the line."""
        if self._pending_step is not None and self._pending_step != state.global_step:
            self._flush(state)
        name = next((s for s in self.eval_sets if next(iter(evals)).startswith(f"{s}_")), "")
        self._pending[name] = {k.removeprefix(f"{name}_") if name else k: v for k, v in evals.items()}
        self._pending_step = state.global_step
        if not name or set(self.eval_sets) <= set(self._pending):
            self._flush(state)

    def _flush(self, state: TrainerState) -> None:
        if not self._pending:
            return
        parts = [f"step {self._pending_step}", f"epoch {state.epoch or 0:.2f}"]
        if self._losses:
            parts.append(f"train loss {sum(self._losses) / len(self._losses):.4f}")
        for name, metrics in self._pending.items():
            shown = " ".join(f"{m} {metrics[m]:.4f}" for m in SHOWN if m in metrics)
            parts.append(f"{name} {shown}".strip())
        line = ("eval after training | " if self._trained else "eval | ") + " | ".join(parts)
        if self.training_bar is not None:
            self.training_bar.write(line)
        else:
            tqdm.write(line)
        self._pending, self._pending_step, self._losses = {}, None, []


@contextmanager
def quiet_saves() -> Iterator[None]:
    """transformers' own bars off for the duration (a checkpoint save draws a "Writing model shards" bar)."""
    enabled = hf_logging.is_progress_bar_enabled()
    if enabled:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


class EarlyStoppingNoise(logging.Filter):
    """Drops EarlyStoppingCallback's "did not find <metric> so early stopping is disabled" warning for a metric that
    one of the eval sets reports: with a dict of eval sets it fires for every other set at every evaluation,
    and disables nothing."""

    def __init__(self, metric: str):
        super().__init__()
        self.metric = metric

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("early stopping required") and f" {self.metric} " in message)


def quiet_early_stopping(metric: str | None, eval_sets: Sequence[str]) -> None:
    """Install EarlyStoppingNoise for ``metric`` (once) when one of ``eval_sets`` produces it."""
    name = (metric or "").removeprefix("eval_")
    if not any(name.startswith(f"{s}_") for s in eval_sets):
        return  # a metric no set reports: the warning is real
    target = hf_logging.get_logger("transformers.trainer_callback")
    metric = f"eval_{name}"
    if not any(isinstance(f, EarlyStoppingNoise) and f.metric == metric for f in target.filters):
        target.addFilter(EarlyStoppingNoise(metric))
