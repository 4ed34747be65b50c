"""Keras layers of RetinaNet; each is registered, so saved models load without custom objects."""

from ._misc import Anchors, ClipBoxes, RegressBoxes, UpsampleLike  # noqa: F401
from .batch_normalization import BatchNormalization  # noqa: F401
from .filter_detections import FilterDetections, filter_detections  # noqa: F401
