"""AUROC as an `evaluate` metric module, shipped with delbind and loaded by path (no hub, no network).

    import evaluate
    from delbind.evaluation.metric_modules import AUROC
    auroc = evaluate.load(str(AUROC))
    auroc.compute(references=[0, 1, 1, 0], predictions=[0.1, 0.8, 0.4, 0.3])  # {'auroc': 1.0}

``predictions`` are scores (probabilities or logits: AUROC only uses their order); the value is scikit-learn's
``roc_auc_score`` exactly.
"""

import evaluate
from sklearn.metrics import roc_auc_score

from delbind.evaluation.metric_modules import metric_info


class Auroc(evaluate.Metric):
    """Area under the ROC curve of binary labels (1 = binder) against scores."""

    def _info(self) -> evaluate.MetricInfo:
        return metric_info("Area under the ROC curve (scikit-learn roc_auc_score), binary labels.", roc_auc_score)

    def _compute(self, predictions, references, sample_weight=None) -> dict[str, float]:
        return {"auroc": float(roc_auc_score(references, predictions, sample_weight=sample_weight))}
