"""Using a trained model: :func:`load_detector` and the :class:`Detector` it returns.

Modules:
    detector: :class:`Detector` (prepare images, predict, boxes in image pixels) and :func:`load_detector`.
    loading: a model file as an inference model with its spec, reconciled with the user's settings.
    refilter: an inference model's filter and anchors read back, and the filter rebuilt at another threshold.
"""

from .detector import Detector, load_detector, open_detector

__all__ = ["Detector", "load_detector", "open_detector"]
