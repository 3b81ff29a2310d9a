"""AU-PRC (average precision) as an `evaluate` metric module, shipped with delbind and loaded by path.

    import evaluate
    from delbind.evaluation.metric_modules import AUPRC
    auprc = evaluate.load(str(AUPRC))
    auprc.compute(references=[0, 1, 1, 0], predictions=[0.1, 0.8, 0.4, 0.3])  # {'auprc': 1.0}

Step-wise average precision, no interpolation: scikit-learn's ``average_precision_score`` exactly (scores
kept in float64, so a cast never creates ties).
"""

import datasets
import evaluate
from sklearn.metrics import average_precision_score

_CITATION = """\
@article{scikit-learn, title={Scikit-learn: Machine Learning in {P}ython}, author={Pedregosa, F. and others},
journal={Journal of Machine Learning Research}, volume={12}, pages={2825--2830}, year={2011}}
"""


class Auprc(evaluate.Metric):
    """Area under the precision-recall curve (average precision) of binary labels (1 = binder) against scores."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="Average precision (scikit-learn average_precision_score), binary labels.",
            citation=_CITATION,
            inputs_description="predictions: float scores, higher = more likely positive; references: 0/1 labels; "
            "sample_weight: optional per-row weights.",
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("int32")}
            ),
            reference_urls=[
                "https://scikit-learn.org/stable/modules/generated/sklearn.metrics.average_precision_score.html"
            ],
        )

    def _compute(self, predictions, references, sample_weight=None) -> dict[str, float]:
        return {"auprc": float(average_precision_score(references, predictions, sample_weight=sample_weight))}
