"""keras-retinanet's ``utils.coco_eval``: :func:`evaluate_coco`, from :mod:`keras_retinanet.evaluation.coco`."""

from ..evaluation.coco import evaluate_coco

__all__ = ["evaluate_coco"]
