"""keras-retinanet's ``preprocessing.pascal_voc``: the Pascal VOC reader. The code is
:mod:`keras_retinanet.readers.pascal_voc`."""

from ..readers.pascal_voc import PascalVocGenerator, voc_classes

__all__ = ["PascalVocGenerator", "voc_classes"]
