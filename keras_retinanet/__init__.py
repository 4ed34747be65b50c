"""RetinaNet for Keras 3: focal-loss one-stage object detection, compatible with keras-retinanet.

The public API (docs/api.md), one way in per audience:

- using a trained model: ``load_detector(path)`` -> :class:`Detector` -> ``predict(image)`` -> :class:`Detections`
  (``TileOptions`` for large images);
- building and training one in Keras: keras-retinanet's ``models`` (``backbone(name).retinanet(...)``,
  ``convert_model``, ``load_model``), ``losses`` and the readers of ``preprocessing`` under its names;
- a run's settings: ``RetinaNetConfig``; its errors: ``errors``.

Every other module is internal (docs/architecture.md maps them) and may change.
"""

__version__ = "1.2.0.dev0"

# Loaded on first use (PEP 562), so that importing the package (and every command's --help) stays free of TensorFlow.
_LAZY_NAMES = {
    "load_detector": "keras_retinanet.inference",
    "Detector": "keras_retinanet.inference",
    "Detections": "keras_retinanet.inference",
    "TileOptions": "keras_retinanet.inference",
    "RetinaNetConfig": "keras_retinanet.config",
}
_PUBLIC_MODULES = ("models", "losses", "preprocessing", "errors")

__all__ = sorted(_LAZY_NAMES) + list(_PUBLIC_MODULES)


def __getattr__(name: str):
    import importlib  # here, not at the top: reading __version__ imports nothing

    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(_LAZY_NAMES[name]), name)
    if name in _PUBLIC_MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
