"""keras-retinanet's ``utils.compute_overlap`` (a Cython extension there): IoU of every pair of boxes.

The code is :func:`keras_retinanet.anchors.compute_overlap`, plain numpy, so nothing is compiled at install.
"""

from ..anchors import compute_overlap

__all__ = ["compute_overlap"]
