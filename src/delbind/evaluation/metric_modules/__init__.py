"""`evaluate` metric modules shipped with delbind: load them by path, no hub (``evaluate.load(str(AUROC))``)."""

from pathlib import Path

HERE = Path(__file__).parent
AUROC = HERE / "auroc"
AUPRC = HERE / "auprc"
