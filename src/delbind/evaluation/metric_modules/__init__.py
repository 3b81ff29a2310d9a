"""`evaluate` metric modules shipped with delbind: load them by path, no hub (``evaluate.load(str(AUROC))``).

Each module is a script evaluate loads from ``<dir>/<dir>.py``; what they share is here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import evaluate

HERE = Path(__file__).parent
AUROC = HERE / "auroc"
AUPRC = HERE / "auprc"

CITATION = """\
@article{scikit-learn, title={Scikit-learn: Machine Learning in {P}ython}, author={Pedregosa, F. and others},
journal={Journal of Machine Learning Research}, volume={12}, pages={2825--2830}, year={2011}}
"""


def metric_info(description: str, fn: Callable) -> evaluate.MetricInfo:
    """MetricInfo of a binary ranking metric computed by scikit-learn function ``fn``."""
    # Imported here: the paths above must not cost `import evaluate` (4-5 s, it imports transformers.pipelines).
    import datasets
    import evaluate

    return evaluate.MetricInfo(
        description=description,
        citation=CITATION,
        inputs_description="predictions: float scores, higher = more likely positive; references: 0/1 labels; "
        "sample_weight: optional per-row weights.",
        # float64: a float32 cast could tie distinct scores and change the value
        features=datasets.Features({"predictions": datasets.Value("float64"), "references": datasets.Value("int32")}),
        reference_urls=[f"https://scikit-learn.org/stable/modules/generated/sklearn.metrics.{fn.__name__}.html"],
    )
