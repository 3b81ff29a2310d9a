"""delbind: fine-tune pretrained molecular transformers to find binders; evaluate on easy and hard negatives."""

__version__ = "0.1.0"
