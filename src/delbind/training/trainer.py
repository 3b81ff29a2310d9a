"""BinderTrainer: the stock HF Trainer with a binary loss on one logit, evaluation in row order, checkpoints that
say when they are complete, and a stop at the first non-finite loss or gradient norm."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, RandomSampler, Sampler, SequentialSampler
from transformers import PrinterCallback, ProgressCallback, Trainer, TrainerCallback
from transformers.trainer import DEFAULT_PROGRESS_CALLBACK
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, has_length

from delbind.errors import DivergedError
from delbind.integrity import write_manifest
from delbind.models.policies import optimizer_groups
from delbind.training.console import ConsoleCallback, quiet_early_stopping, quiet_saves
from delbind.training.resume import best_complete, checkpoint_problem, checkpoints, newest_complete

log = logging.getLogger(__name__)
LIKELY_CAUSES = (
    "a learning rate too high for this mode (fine-tuning wants about 1e-5..1e-4, a frozen trunk's head about 1e-2; "
    "set trainer.learning_rate), fp16 overflow (use precision=bf16 or fp32), or a bad batch (extreme inputs)"
)


def bce_loss(logits: torch.Tensor, labels: torch.Tensor, pos_weight: float | None = None) -> torch.Tensor:
    """Mean BCE-with-logits in fp32 (stable under autocast), optionally up-weighting binders."""
    weight = None if pos_weight is None else torch.tensor(float(pos_weight), device=logits.device)
    return F.binary_cross_entropy_with_logits(logits.float().view(-1), labels.float().view(-1), pos_weight=weight)


class SkippedSteps(TrainerCallback):
    """Counts the optimizer steps the fp16 grad scaler skipped (an inf / NaN gradient: the step is dropped and the
    loss scale halved). A healthy fp16 run skips a few while the scale, starting at 2**16, finds its level."""

    def __init__(self) -> None:
        self.count = 0

    def on_step_end(self, args: Any, state: Any, control: Any, optimizer: Any = None, **kwargs: Any) -> None:
        if getattr(optimizer, "step_was_skipped", False):  # accelerate's AcceleratedOptimizer; False without a scaler
            self.count += 1


class BinderTrainer(Trainer):
    """Trainer whose loss is BCE on one logit and whose evaluation keeps row order; otherwise the stock Trainer."""

    # compute_loss returns a per-batch mean, so the Trainer must divide by the accumulation steps.
    loss_is_scaled_for_ga = False
    best_checkpoint_skipped: list[str] = []  # noqa: RUF012 (replaced, never mutated): see _load_best_model

    def __init__(
        self, *args: Any, pos_weight: float | None = None, group_lrs: dict[str, float] | None = None, **kwargs: Any
    ):
        super().__init__(*args, **kwargs)
        # The console shows a bar and one line per evaluation; the per-step logs still reach the history and loggers.
        for stock in (ProgressCallback, PrinterCallback, DEFAULT_PROGRESS_CALLBACK):
            self.remove_callback(stock)
        eval_sets = list(self.eval_dataset) if isinstance(self.eval_dataset, dict) else []
        self.add_callback(ConsoleCallback(eval_sets, bar=not self.args.disable_tqdm))
        self.skipped_steps = SkippedSteps()  # metrics.json optimizer_steps_skipped
        self.add_callback(self.skipped_steps)
        quiet_early_stopping(self.args.metric_for_best_model, eval_sets)
        self.pos_weight = pos_weight
        self.group_lrs = group_lrs  # per parameter group (models/policies.py); None: the stock optimizer

    def create_optimizer(self, model: torch.nn.Module | None = None) -> torch.optim.Optimizer:
        """The stock optimizer, with one learning rate per parameter group when the mode sets them."""
        if self.optimizer is not None or not self.group_lrs:
            return super().create_optimizer(model)
        opt_model = self.model if model is None else model
        decay = set(self.get_decay_parameter_names(opt_model))
        groups = optimizer_groups(opt_model, self.group_lrs, self.args.weight_decay, decay)
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
        self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        return self.optimizer

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        with quiet_saves():  # a checkpoint save would draw its own bar under the training bar
            super()._save(output_dir, state_dict)

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        features = {k: v for k, v in inputs.items() if k != "labels"}
        outputs = model(**features)
        loss = bce_loss(outputs.logits, inputs["labels"], self.pos_weight)
        return (loss, outputs) if return_outputs else loss

    def training_step(self, model: torch.nn.Module, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> torch.Tensor:
        loss = super().training_step(model, inputs, *args, **kwargs)
        # The stock Trainer already syncs on this loss every step (logging_nan_inf_filter), then hides a NaN
        # from the logged average; here it stops the run instead, before the optimizer applies it.
        if not torch.isfinite(loss).all():
            self._diverged(self.state.global_step + 1, f"loss {loss.detach().float().mean().item()}")
        return loss

    def _get_grad_norm(self, model: torch.nn.Module, grad_norm: Any = None) -> Any:
        # Private in transformers 5.x: the pre-clip norm, computed before optimizer.step (a unit test checks it
        # still exists). Under fp16 an inf norm is the grad scaler's business: it skips the step and rescales.
        grad_norm = super()._get_grad_norm(model, grad_norm=grad_norm)
        if grad_norm is not None and not self.args.fp16 and not math.isfinite(float(grad_norm)):
            self._diverged(self.state.global_step + 1, f"gradient norm {float(grad_norm)}")
        return grad_norm

    def prediction_step(self, model: torch.nn.Module, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        loss, logits, labels = super().prediction_step(model, inputs, *args, **kwargs)
        # An update can leave finite but huge weights whose outputs overflow: caught here, before the evaluation
        # that precedes each save, so such weights are never saved as a checkpoint.
        if logits is not None and not torch.isfinite(logits).all():
            self._diverged(self.state.global_step, "non-finite scores on evaluation")
        return loss, logits, labels

    def _diverged(self, step: int, what: str) -> None:
        precision = "bf16" if self.args.bf16 else "fp16" if self.args.fp16 else "fp32"
        lr = self.lr_scheduler.get_last_lr()[0] if self.lr_scheduler is not None else self.args.learning_rate
        last = newest_complete(checkpoints(Path(self.args.output_dir)), [])
        run_dir = Path(self.args.output_dir).parent
        keep = f"last good checkpoint: {last} (resume={run_dir} with a lower learning rate continues from it)"
        keep = keep if last else "no checkpoint was saved before it"
        raise DivergedError(
            f"training diverged at step {step} (epoch {self.state.epoch or 0:.2f}): {what}; "
            f"learning rate {lr:.3g} (configured {self.args.learning_rate:.3g}), precision {precision}. "
            f"Likely causes: {LIKELY_CAUSES}. {keep}"
        )

    def _save_checkpoint(self, model: torch.nn.Module, trial: Any) -> None:
        super()._save_checkpoint(model, trial)
        if self.args.should_save:  # written last: a checkpoint without it was cut short (resume skips it)
            folder = Path(self._get_output_dir(trial=trial)) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            write_manifest(folder)

    def _load_best_model(self) -> None:
        """Load the best checkpoint once it is verified (manifest, weights, state); a damaged one (a resumed run's
        best may sit in the earlier run dir) gives way to the best complete one with a warning, and with none left
        the run ends on its final weights. ``best_checkpoint_skipped`` says what was passed over."""
        best = Path(self.state.best_model_checkpoint)
        reason = checkpoint_problem(best)
        if reason is None:
            return super()._load_best_model()
        skipped = [f"{best}: {reason}"]
        others = {*checkpoints(best.parent), *checkpoints(Path(self.args.output_dir))} - {best}
        found = best_complete(sorted(others), self.state.log_history, self.args.metric_for_best_model,
                              bool(self.args.greater_is_better), skipped)  # fmt: skip
        self.best_checkpoint_skipped = skipped
        if found is None:
            log.warning("best checkpoint not usable, and no other is complete (%s): the run ends on its final "
                        "weights", "; ".join(skipped))  # fmt: skip
            self.state.best_model_checkpoint = None
            return None
        self.state.best_model_checkpoint, self.state.best_metric = str(found[0]), found[1]
        log.warning("best checkpoint not usable (%s): loading %s instead, the best complete one", "; ".join(skipped),
                    found[0])  # fmt: skip
        return super()._load_best_model()

    def _get_train_sampler(self, train_dataset: Dataset | None = None) -> Sampler | None:
        dataset = self.train_dataset if train_dataset is None else train_dataset
        grouped = self.args.train_sampling_strategy == "group_by_length"
        if grouped and "input_ids" not in getattr(dataset, "column_names", ["input_ids"]):
            return RandomSampler(dataset)  # cached embeddings: every row has one length, there is nothing to group
        return super()._get_train_sampler(train_dataset)

    def _get_eval_sampler(self, eval_dataset: Dataset) -> Sampler | None:
        # Scores are matched to molecules by row, so evaluation never reorders. The stock Trainer length-groups
        # the eval sets too under train_sampling_strategy=group_by_length, which permutes predict()'s output.
        if self.args.world_size > 1 or not has_length(eval_dataset):
            return None  # stock: accelerate shards in order and gathers back in order
        return SequentialSampler(eval_dataset)
