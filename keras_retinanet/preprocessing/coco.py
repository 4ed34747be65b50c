"""keras-retinanet's ``preprocessing.coco``: the COCO reader. The code is :mod:`keras_retinanet.readers.coco`."""

from ..readers.coco import CocoGenerator

__all__ = ["CocoGenerator"]
