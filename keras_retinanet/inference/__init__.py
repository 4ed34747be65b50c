"""Using a trained model: :func:`load_detector` and the :class:`Detector` it returns.

Modules:
    loading: :func:`open_model`, the one door to a model: a path, preset or URL (located by
        :func:`keras_retinanet.hub.locate`) opened as an inference model or an export, with its spec and the
        user's settings reconciled with it (an :class:`OpenedModel`); :func:`load_detector` and :func:`detector_of`.
    detector: :class:`Detector`: ``prepare`` an image or a tile, ``run_batch`` (the one step that runs the network),
        ``predict``; :class:`ExportedDetector`.
    detections: :class:`Detections`, the one result type (drawn, converted and saved by itself).
    slicing: sliced inference: :class:`TileOptions` (checked once), the tiles of an image, ``predict_sliced``.
    merging: the rules that merge overlapping tiles' detections, in a registry (numpy).
    refilter: an inference model's filter and anchors read back, and the filter rebuilt at another threshold.
    exported, runtimes: exported detectors (SavedModel, TFLite, ONNX) opened with their spec and run by their
        runtimes.
    auto_precision: what ``precision='auto'`` chooses, and why.
    fidelity: whether a faster numeric path keeps the float32 detections (issue 18's bar).
    sources: detection over images, folders, videos and cameras (what retinanet-predict runs).
    prediction_files: the detections and per-class counts a prediction run writes.
"""

import importlib

# Each public name loads its module on first use (PEP 562): the numpy-only modules (slicing, merging, detections,
# sources, prediction_files) then import without Keras, so that the commands check their inputs before TensorFlow loads.
_MODULE_OF = {
    "Detector": "detector", "ExportedDetector": "detector", "detector_of": "loading", "load_detector": "loading",
    "Detections": "detections", "TileOptions": "slicing", "TileError": "slicing",
    "OpenedModel": "loading", "open_model": "loading",
    "Tiling": "slicing", "TilingError": "slicing",
}  # fmt: skip

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name in _MODULE_OF:
        return getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_MODULE_OF))
