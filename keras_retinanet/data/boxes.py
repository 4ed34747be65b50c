"""Annotation boxes against their image: the one clipping rule shared by the readers and the augmentation."""

from typing import Dict, Tuple

import numpy as np


def empty_annotations() -> Dict[str, np.ndarray]:
    """Annotations of an image without objects: ``labels`` (0,) int64, ``bboxes`` (0, 4) float64."""
    return {"labels": np.zeros((0,), dtype=np.int64), "bboxes": np.zeros((0, 4), dtype=np.float64)}


def clip_annotations_to_image(annotations: Dict[str, np.ndarray], image_shape) -> Tuple[Dict[str, np.ndarray], int, int]:
    """Clip boxes to the image and drop those with nothing left inside.

    Args:
        annotations: ``bboxes`` (K, 4) float (x1, y1, x2, y2) in pixels, and any other per-box
            arrays (``labels``, ...) of length K; changed in place.
        image_shape: (H, W, ...) of the image the boxes lie on.

    Returns:
        (annotations, clipped, dropped): the same dict, with ``bboxes`` clipped to
        ``[0, W] x [0, H]`` and the rows of boxes left empty (x2 <= x1 or y2 <= y1)
        removed from every array; how many kept boxes changed and how many were dropped.
    """
    boxes = annotations["bboxes"]
    if boxes.shape[0] == 0:
        return annotations, 0, 0
    height, width = image_shape[:2]
    inside = np.stack([
        np.clip(boxes[:, 0], 0, width),
        np.clip(boxes[:, 1], 0, height),
        np.clip(boxes[:, 2], 0, width),
        np.clip(boxes[:, 3], 0, height),
    ], axis=1)
    changed = np.any(inside != boxes, axis=1)
    empty = (inside[:, 2] <= inside[:, 0]) | (inside[:, 3] <= inside[:, 1])
    if not np.any(changed | empty):
        return annotations, 0, 0
    annotations["bboxes"] = inside
    if np.any(empty):
        for key in list(annotations.keys()):
            annotations[key] = np.delete(annotations[key], np.flatnonzero(empty), axis=0)
    return annotations, int(np.sum(changed & ~empty)), int(np.sum(empty))
