"""lp_ft: linear probe, then fine-tune (Kumar et al. 2022, arXiv 2202.10054), one run, one run dir.

Stage 1 trains the head alone on the cached frozen embeddings (``mode.linear_probe`` overrides the trainer
fields); stage 2 fine-tunes as the mode's policy says (every weight by default) from that head, at
``trainer.learning_rate``. With ``mode.keep_probe_if_better`` the run ends on the probe when no stage-2 evaluation
beat it on the selection metric: the probe is the first candidate of the same checkpoint selection. ``resume``
continues stage 2 (stage 1 is seconds, and rerun identically).
"""

from __future__ import annotations

import logging

from omegaconf import DictConfig, OmegaConf

from delbind import distributed
from delbind.arms import transformer
from delbind.arms.base import ARM_FAMILIES, VAL_SETS, ArmInputs, ArmResult
from delbind.arms.forgetting import ForgettingProbe
from delbind.evaluation import plot_loss_curve

log = logging.getLogger(__name__)

# Stage 1's policy: the trunk frozen (and cached), only the head trains at one rate.
PROBE = {"trainable_layers": 0, "train_embeddings": False, "lora": None, "cache_embeddings": True,
         "activation_checkpointing": False, "head_lr": None, "layer_decay": None, "group_lr": {}}  # fmt: skip


@ARM_FAMILIES.register("lp_ft")
def run_lp_ft(inputs: ArmInputs) -> ArmResult:
    cfg, run_dir = inputs.cfg, inputs.run_dir
    tokenizer, model, tokens = transformer.load(inputs)
    forgetting = ForgettingProbe.measure(inputs, tokenizer, model)
    probe_mode = OmegaConf.merge(cfg.mode, PROBE)
    probe_trainer = OmegaConf.merge(cfg.trainer, cfg.mode.linear_probe)
    probe_dir = run_dir / "checkpoints" / "probe"
    probe = transformer.fit(inputs, tokenizer, model, tokens, probe_mode, probe_trainer, probe_dir)
    probe_val = probe.trainer.evaluate()  # the best head, now in `model`, which stage 2 starts from
    # LoRA renames the weights it wraps, so its run cannot go back to the probe
    keepable = bool(cfg.mode.get("keep_probe_if_better")) and not cfg.mode.get("lora")
    probe_weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()} if keepable else {}
    if distributed.is_main_process():
        plot_loss_curve(probe.history, run_dir / "loss_curve_probe.png", f"{cfg.run_name} (linear probe)")
    tune = transformer.fit(
        inputs, tokenizer, model, tokens, cfg.mode, cfg.trainer, run_dir / "checkpoints", inputs.resume_from
    )
    keep_probe = keepable and _probe_is_better(cfg, probe_val, tune.trainer.state.best_metric)
    if keep_probe:
        log.info("lp_ft: no fine-tuning epoch beat the probe on %s: the run ends on the probe", cfg.selection_metric)
        model.load_state_dict(probe_weights)
    result = transformer.finish(inputs, tokenizer, model, tune, forgetting, trunk_trained=not keep_probe)
    result.facts.update(
        {
            "probe_runtime_s": probe.train_s,
            "probe_epochs": probe.trainer.state.epoch,
            **{f"probe_{name}_auprc": probe_val.get(f"eval_{name}_auprc") for name in VAL_SETS},
            "finetune_runtime_s": tune.train_s,
            "train_runtime_s": probe.train_s + tune.train_s,  # the arm's cost: both stages
            "embedding_s": probe.facts.get("embedding_s"),
            "optimizer_steps_skipped": probe.facts["optimizer_steps_skipped"] + tune.facts["optimizer_steps_skipped"],
            "probe_kept": keep_probe,
        }
    )
    if keep_probe:
        result.facts["best_checkpoint"] = probe.trainer.state.best_model_checkpoint
    return result


def _probe_is_better(cfg: DictConfig, probe_val: dict[str, float], tune_best: float | None) -> bool:
    """Whether the probe beat every stage-2 evaluation on the selection metric (ties go to stage 2)."""
    probe = probe_val[f"eval_{cfg.selection_metric}"]
    if tune_best is None:
        return True
    return probe > tune_best if cfg.trainer.greater_is_better else probe < tune_best
