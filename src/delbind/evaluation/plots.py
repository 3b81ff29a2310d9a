"""Pictures of a run: the loss curve."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402

from delbind.io import atomic_write  # noqa: E402


def draw_loss_curve(ax: Axes, log_history: list[dict], title: str = "", ylabel: str = "BCE loss") -> None:
    """Training loss per logged step and each eval set's loss per evaluation, on ``ax``."""
    train = [(h["step"], h["loss"]) for h in log_history if "loss" in h and "step" in h]
    if train:
        ax.plot(*zip(*train), lw=1, alpha=0.8, label="train loss")
    eval_keys = sorted({k for h in log_history for k in h if k.startswith("eval_") and k.endswith("_loss")})
    for key in eval_keys:
        pts = [(h["step"], h[key]) for h in log_history if key in h]
        ax.plot(*zip(*pts), marker="o", label=key.removeprefix("eval_").removesuffix("_loss") + " loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()


def plot_loss_curve(log_history: list[dict], path: Path, title: str = "", ylabel: str = "BCE loss") -> None:
    """The loss curve of one run, written to ``path``."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    draw_loss_curve(ax, log_history, title, ylabel)
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
