"""Moved to :mod:`keras_retinanet.checkpoint.weights`; re-exported for old imports."""

from ..checkpoint.storage import weights_group  # noqa: F401
from ..checkpoint.weights import assign_layer_weights, read_layer_weight_names, read_layer_weights  # noqa: F401
