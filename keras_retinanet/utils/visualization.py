"""Drawing boxes, captions, detections and annotations on images with OpenCV, as keras-retinanet did.

Every function draws in place on a (H, W, 3) uint8 image (BGR, as loaded by OpenCV) and returns nothing.
"""

import cv2
import numpy as np

from .colors import label_color


def _corners(box):
    """(x1, y1, x2, y2) as Python ints, truncated towards zero like keras-retinanet's ``astype(int)``."""
    box = np.asarray(box)
    if box.shape[0] < 4:
        raise ValueError(f"a box needs 4 values (x1, y1, x2, y2), got {box.tolist()}")
    return tuple(int(v) for v in box[:4].astype(np.int64))


def _color(color):
    """A colour OpenCV accepts: a tuple of Python numbers."""
    return tuple(int(c) for c in color)


def draw_box(image, box, color, thickness=2):
    """Draw a rectangle.

    Args:
        image: (H, W, 3) uint8 image, changed in place.
        box: 4 values (x1, y1, x2, y2) in pixels (extra values are ignored).
        color: 3 channel values in the image's channel order.
        thickness: line width in pixels.
    """
    x1, y1, x2, y2 = _corners(box)
    cv2.rectangle(image, (x1, y1), (x2, y2), _color(color), thickness, cv2.LINE_AA)


def draw_caption(image, box, caption):
    """Write a caption 10 px above a box's top-left corner, white on a black outline.

    Args:
        image: (H, W, 3) uint8 image, changed in place.
        box: 4 values (x1, y1, x2, y2).
        caption: the text.
    """
    x1, y1, _, _ = _corners(box)
    origin = (x1, y1 - 10)
    cv2.putText(image, str(caption), origin, cv2.FONT_HERSHEY_PLAIN, 1, (0, 0, 0), 2)
    cv2.putText(image, str(caption), origin, cv2.FONT_HERSHEY_PLAIN, 1, (255, 255, 255), 1)


def draw_boxes(image, boxes, color, thickness=2):
    """Draw several rectangles in one colour.

    Args:
        image: (H, W, 3) uint8 image, changed in place.
        boxes: (N, 4) boxes (x1, y1, x2, y2).
        color: 3 channel values.
        thickness: line width in pixels.
    """
    for box in boxes:
        draw_box(image, box, color, thickness=thickness)


def _caption_name(label, label_to_name):
    return label_to_name(label) if label_to_name else str(label)


def draw_detections(image, boxes, scores, labels, color=None, label_to_name=None, score_threshold=0.5):
    """Draw the detections scoring above a threshold, each with a 'name: score' caption.

    Args:
        image: (H, W, 3) uint8 image, changed in place.
        boxes: (N, 4) boxes (x1, y1, x2, y2) in the image's pixels.
        scores: (N,) scores.
        labels: (N,) integer class labels.
        color: one colour for all boxes, or None for each class's :func:`label_color`.
        label_to_name: callable label -> class name for the caption; None writes the label number.
        score_threshold: only detections with score strictly above it are drawn.
    """
    boxes = np.asarray(boxes)
    scores = np.asarray(scores)
    labels = np.asarray(labels)
    if not (len(boxes) == len(scores) == len(labels)):
        raise ValueError(
            f"draw_detections needs as many boxes, scores and labels; got {len(boxes)}, {len(scores)}, {len(labels)}"
        )
    for i in np.where(scores > score_threshold)[0]:
        label = int(labels[i])
        draw_box(image, boxes[i], color=color if color is not None else label_color(label))
        draw_caption(image, boxes[i], f"{_caption_name(label, label_to_name)}: {scores[i]:.2f}")


def draw_annotations(image, annotations, color=(0, 255, 0), label_to_name=None):
    """Draw ground-truth boxes with their class name.

    Args:
        image: (H, W, 3) uint8 image, changed in place.
        annotations: {'bboxes': (K, 4), 'labels': (K,)} or a (K, 5) array [x1, y1, x2, y2, label].
        color: one colour for all boxes, or None for each class's :func:`label_color`.
        label_to_name: callable label -> class name for the caption; None writes the label number.
    """
    if isinstance(annotations, np.ndarray):
        annotations = {"bboxes": annotations[:, :4], "labels": annotations[:, 4]}
    if "bboxes" not in annotations or "labels" not in annotations:
        raise ValueError(f"annotations need 'bboxes' and 'labels', got keys {sorted(annotations)}")
    bboxes = np.asarray(annotations["bboxes"])
    labels = np.asarray(annotations["labels"])
    if bboxes.shape[0] != labels.shape[0]:
        raise ValueError(f"annotations have {bboxes.shape[0]} boxes but {labels.shape[0]} labels")
    for box, label in zip(bboxes, labels):
        label = int(label)
        draw_caption(image, box, _caption_name(label, label_to_name))
        draw_box(image, box, color=color if color is not None else label_color(label))
