"""keras-retinanet's ``utils.model``: ``freeze``, a backbone modifier.

The code lives in :mod:`keras_retinanet.models.base`.
"""

from ..models.base import freeze

__all__ = ["freeze"]
