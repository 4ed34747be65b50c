"""keras-retinanet's ``preprocessing.generator``: the base of every reader. The code is
:mod:`keras_retinanet.readers.generator`."""

from ..data.boxes import empty_annotations
from ..readers.generator import GROUP_METHODS, Generator

__all__ = ["GROUP_METHODS", "Generator", "empty_annotations"]
