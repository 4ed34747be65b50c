"""Using a trained model: :func:`load_detector` and the :class:`Detector` it returns.

Modules:
    detector: :class:`Detector` (prepare images, predict, boxes in image pixels) and :func:`load_detector`.
    loading: a model file as an inference model with its spec, reconciled with the user's settings.
    refilter: an inference model's filter and anchors read back, and the filter rebuilt at another threshold.
    exported, runtimes: exported detectors (SavedModel, TFLite, ONNX) opened with their spec and run by their
        runtimes.
    auto_precision: what ``precision='auto'`` chooses, and why.
    fidelity: whether a faster numeric path keeps the float32 detections (issue 18's bar).
    slicing: sliced inference's tiles and the merging of their detections (numpy).
    results: results as COCO's results list and as supervision's Detections.
"""

from .detector import Detector, ExportedDetector, load_detector, open_detector
from .results import to_coco_results, to_supervision
from .slicing import Tiling, TilingError

__all__ = [
    "Detector", "ExportedDetector", "Tiling", "TilingError", "load_detector", "open_detector", "to_coco_results",
    "to_supervision",
]
