"""Running an inference model on one image, in the image's own coordinates."""

import time

import numpy as np


def detect_image(model, image, preprocess_image, resize_image=None):
    """Detections of an inference model on one BGR image.

    Args:
        model: inference model (outputs boxes, scores, labels).
        image: (H, W, 3) uint8 BGR image.
        preprocess_image: function mapping the image to the network's input values.
        resize_image: function image -> (resized image, scale), or None to keep the size.

    Returns:
        boxes: (D, 4) float32 boxes in the coordinates of ``image``.
        scores: (D,) float32 scores, best first; padded rows have score -1.
        labels: (D,) int32 labels.
        seconds: time taken by the model.
    """
    network_input = preprocess_image(image)
    scale = 1.0
    if resize_image is not None:
        network_input, scale = resize_image(network_input)
    start = time.perf_counter()
    boxes, scores, labels = model.predict_on_batch(np.expand_dims(network_input, axis=0))[:3]
    seconds = time.perf_counter() - start
    boxes = np.asarray(boxes[0], dtype=np.float32) / scale
    return boxes, np.asarray(scores[0], dtype=np.float32), np.asarray(labels[0], dtype=np.int32), seconds


def keep_confident(boxes, scores, labels, score_threshold):
    """The detections scoring above ``score_threshold`` (padding rows never do)."""
    keep = scores > score_threshold
    return boxes[keep], scores[keep], labels[keep]
