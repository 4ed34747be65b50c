"""RetinaNet for Keras 3: focal-loss one-stage object detection, compatible with keras-retinanet."""

__version__ = "1.2.0.dev0"

# Loaded on first use (PEP 562), so that importing the package (and every command's --help) stays free of TensorFlow.
_LAZY = ("load_detector", "Detector", "Detections")


def __getattr__(name: str):
    if name in _LAZY:
        from . import inference

        return getattr(inference, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
