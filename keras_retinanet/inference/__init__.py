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
    sources: detection over images, folders, videos and cameras (what retinanet-predict runs).
    prediction_files: the detections and per-class counts a prediction run writes.
"""

import importlib

# Each public name loads its module on first use (PEP 562): the numpy-only modules (slicing, results, sources,
# prediction_files) then import without Keras, so that the commands check their inputs before TensorFlow loads.
_MODULE_OF = {
    "Detector": "detector", "ExportedDetector": "detector", "detector_of": "detector", "load_detector": "detector",
    "OpenedModel": "loading", "open_model": "loading",
    "to_coco_results": "results", "to_supervision": "results",
    "detect_image": "single_image",
    "Tiling": "slicing", "TilingError": "slicing",
}  # fmt: skip

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name in _MODULE_OF:
        return getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_MODULE_OF))
