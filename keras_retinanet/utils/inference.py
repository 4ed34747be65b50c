"""Running an inference model on one image: re-exported from :mod:`keras_retinanet.evaluation.detections`."""

from ..evaluation.detections import detect_image, keep_confident  # noqa: F401
