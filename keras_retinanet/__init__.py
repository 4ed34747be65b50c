"""RetinaNet for Keras 3: focal-loss one-stage object detection, compatible with keras-retinanet."""

__version__ = "1.1.0"
