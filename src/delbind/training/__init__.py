"""Training on the HF Trainer: the loss, the arguments, the precision, resuming."""

from delbind.training.arguments import resolve_precision, training_arguments
from delbind.training.resume import resolve_resume
from delbind.training.trainer import BinderTrainer, bce_loss

__all__ = ["BinderTrainer", "bce_loss", "resolve_precision", "resolve_resume", "training_arguments"]
