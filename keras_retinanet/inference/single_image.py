"""The single-image primitive: one BGR image through an inference model, boxes back in the image's own pixels.

Images become network input through :class:`keras_retinanet.data.input_transform.InputTransform` only, in
keras-retinanet's prediction and evaluation order (preprocess, then resize the float image:
``preprocess_first=True``), so that the same model gives the same detections, and APs, as keras-retinanet.
:class:`keras_retinanet.inference.Detector` runs every image through :func:`detect_image`; evaluation runs a
Detector (or, for a bare inference model, :func:`detect_image` with the dataset's InputTransform).
"""

import time
from typing import Callable, Optional, Tuple, Union

import keras
import numpy as np

from ..data.input_transform import InputTransform


class _StepsTransform(InputTransform):
    """An :class:`InputTransform` whose two steps are given functions.

    For datasets and callers that hold a ``preprocess_image`` and a ``resize_image`` of their own instead of an
    InputTransform; the order of the steps still comes from :meth:`InputTransform.__call__`.

    Args:
        preprocess: image -> float network values.
        resize: image -> (resized image, scale), or None to keep the size (scale 1).
    """

    def __init__(self, preprocess: Callable, resize: Optional[Callable] = None):
        super().__init__(preprocess, resize=resize is not None)
        self._resize_step = resize

    def resize(self, image: np.ndarray) -> Tuple[np.ndarray, float]:
        if self._resize_step is None:
            return image, 1.0
        return self._resize_step(image)


def as_input_transform(
    preprocess: Union[InputTransform, Callable], resize: Optional[Callable] = None
) -> InputTransform:
    """An InputTransform as given, or one made of a preprocess and an optional resize function.

    Args:
        preprocess: an InputTransform, or a function image -> float network values.
        resize: with a function ``preprocess``: image -> (resized image, scale), or None to keep the size.
    """
    if isinstance(preprocess, InputTransform):
        if resize is not None:
            raise TypeError("an InputTransform resizes by itself; pass no separate resize function with it")
        return preprocess
    return _StepsTransform(preprocess, resize)


def _model_outputs(model, batch: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run ``model.predict_on_batch`` and check it answered like an inference model.

    Returns:
        boxes (1, D, 4), scores (1, D), labels (1, D) as numpy arrays.
    """
    outputs = model.predict_on_batch(batch)
    if not isinstance(outputs, (list, tuple)) or len(outputs) < 3:
        what = f"{len(outputs)} arrays" if isinstance(outputs, (list, tuple)) else type(outputs).__name__
        raise ValueError(
            f"detection needs an inference model whose predict returns [boxes, scores, labels]; this model returns "
            f"{what}. A training model must be converted first (models.convert_model, or --convert-model)."
        )
    boxes, scores, labels = (np.asarray(o) for o in outputs[:3])
    if boxes.ndim != 3 or boxes.shape[-1] != 4 or scores.shape != boxes.shape[:2] or labels.shape != boxes.shape[:2]:
        raise ValueError(
            "detection needs outputs boxes (1, D, 4), scores (1, D), labels (1, D); got shapes "
            f"{boxes.shape}, {scores.shape}, {labels.shape}. Is this a converted inference model?"
        )
    return boxes, scores, labels


def detect_image(
    model, image: np.ndarray, preprocess_image: Union[InputTransform, Callable], resize_image: Optional[Callable] = None
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Detections of an inference model on one BGR image.

    Args:
        model: inference model (``predict_on_batch`` gives boxes, scores, labels).
        image: (H, W, 3) uint8 BGR image.
        preprocess_image: an InputTransform, or a function mapping the image to the network's input values.
        resize_image: with a function ``preprocess_image``: image -> (resized image, scale), or None to keep
            the size.

    Returns:
        boxes: (D, 4) float32 boxes in the coordinates of ``image``.
        scores: (D,) float32 scores, best first; padded rows have score -1.
        labels: (D,) int32 labels.
        seconds: time taken by the model.
    """
    transform = as_input_transform(preprocess_image, resize_image)
    network_input, scale = transform(image, preprocess_first=True)
    if keras.backend.image_data_format() == "channels_first":
        network_input = network_input.transpose((2, 0, 1))
    start = time.perf_counter()
    boxes, scores, labels = _model_outputs(model, np.expand_dims(network_input, axis=0))
    seconds = time.perf_counter() - start
    boxes = np.asarray(boxes[0], dtype=np.float32) / scale
    return boxes, np.asarray(scores[0], dtype=np.float32), np.asarray(labels[0], dtype=np.int32), seconds
