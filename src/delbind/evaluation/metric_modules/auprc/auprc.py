"""AU-PRC (average precision) as an `evaluate` metric module, shipped with delbind and loaded by path.

    import evaluate
    from delbind.evaluation.metric_modules import AUPRC
    auprc = evaluate.load(str(AUPRC))
    auprc.compute(references=[0, 1, 1, 0], predictions=[0.1, 0.8, 0.4, 0.3])  # {'auprc': 1.0}

Step-wise average precision, no interpolation: scikit-learn's ``average_precision_score`` exactly.
"""

import evaluate
from sklearn.metrics import average_precision_score

from delbind.evaluation.metric_modules import metric_info


class Auprc(evaluate.Metric):
    """Area under the precision-recall curve (average precision) of binary labels (1 = binder) against scores."""

    def _info(self) -> evaluate.MetricInfo:
        description = "Average precision (scikit-learn average_precision_score), binary labels."
        return metric_info(description, average_precision_score)

    def _compute(self, predictions, references, sample_weight=None) -> dict[str, float]:
        return {"auprc": float(average_precision_score(references, predictions, sample_weight=sample_weight))}
