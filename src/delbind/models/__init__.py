"""Models: tokenizers, the binder classifier, loading trunks, what trains (policies), the embedding cache.

Importing this package registers the classifier with transformers' Auto classes, so a run's ``model/``
loads with ``AutoModel.from_pretrained``.
"""

from delbind.models.classifier import BinderClassifier, BinderConfig

__all__ = ["BinderClassifier", "BinderConfig"]
