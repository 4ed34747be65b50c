"""Using a trained model: :func:`load_detector` and the :class:`Detector` it returns.

Modules:
    loading: :func:`open_model`, the one door to a model: a path, preset or URL (located by
        :func:`keras_retinanet.hub.locate`) opened as an inference model or an export, with its spec and the
        user's settings reconciled with it (an :class:`OpenedModel`).
    detector: :class:`Detector` (prepare images, predict, boxes in image pixels), :func:`detector_of` and
        :func:`load_detector`.
    single_image: :func:`detect_image`, one image through an inference model, boxes in the image's pixels.
    refilter: an inference model's filter and anchors read back, and the filter rebuilt at another threshold.
    exported, runtimes: exported detectors (SavedModel, TFLite, ONNX) opened with their spec and run by their
        runtimes.
    auto_precision: what ``precision='auto'`` chooses, and why.
    fidelity: whether a faster numeric path keeps the float32 detections (issue 18's bar).
    slicing: sliced inference's tiles and the merging of their detections (numpy).
    results: results as COCO's results list and as supervision's Detections.
"""

from .detector import Detector, ExportedDetector, detector_of, load_detector
from .loading import OpenedModel, open_model
from .results import to_coco_results, to_supervision
from .single_image import detect_image
from .slicing import Tiling, TilingError

__all__ = [
    "Detector", "ExportedDetector", "OpenedModel", "Tiling", "TilingError", "detect_image", "detector_of",
    "load_detector", "open_model", "to_coco_results", "to_supervision",
]
