"""keras-retinanet's ``utils.colors``: the fixed colour of each class label (its ``colors`` list is ``COLORS``).

The code lives in :mod:`keras_retinanet.drawing`.
"""

from ..drawing import COLORS, label_color

__all__ = ["COLORS", "label_color"]
