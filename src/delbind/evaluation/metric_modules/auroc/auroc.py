"""AUROC as an `evaluate` metric module, shipped with delbind and loaded by path (no hub, no network).

    import evaluate
    from delbind.evaluation.metric_modules import AUROC
    auroc = evaluate.load(str(AUROC))
    auroc.compute(references=[0, 1, 1, 0], predictions=[0.1, 0.8, 0.4, 0.3])  # {'auroc': 1.0}

``predictions`` are scores (probabilities or logits: AUROC only uses their order). Values are
scikit-learn's ``roc_auc_score`` exactly: scores are kept in float64, so ties are never created by a cast.
"""

import datasets
import evaluate
from sklearn.metrics import roc_auc_score

_CITATION = """\
@article{scikit-learn, title={Scikit-learn: Machine Learning in {P}ython}, author={Pedregosa, F. and others},
journal={Journal of Machine Learning Research}, volume={12}, pages={2825--2830}, year={2011}}
"""


class Auroc(evaluate.Metric):
    """Area under the ROC curve of binary labels (1 = binder) against scores."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="Area under the ROC curve (scikit-learn roc_auc_score), binary labels.",
            citation=_CITATION,
            inputs_description="predictions: float scores, higher = more likely positive; references: 0/1 labels; "
            "sample_weight: optional per-row weights.",
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("int32")}
            ),
            reference_urls=["https://scikit-learn.org/stable/modules/generated/sklearn.metrics.roc_auc_score.html"],
        )

    def _compute(self, predictions, references, sample_weight=None) -> dict[str, float]:
        return {"auroc": float(roc_auc_score(references, predictions, sample_weight=sample_weight))}
