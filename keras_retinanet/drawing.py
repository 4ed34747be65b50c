"""Drawing boxes, captions, detections and annotations on images with OpenCV, as keras-retinanet did, in the
fixed per-class colours keras-retinanet used (``label_color``).

Every function draws in place on a (H, W, 3) uint8 image (BGR, as loaded by OpenCV) and returns nothing.
keras-retinanet's import paths for these are ``utils.visualization`` and ``utils.colors``.
"""

import warnings

import cv2
import numpy as np

# Default colour for labels past the table: green, as keras-retinanet.
DEFAULT_COLOR = (0, 255, 0)

# 80 fully saturated colours, hues i/80 for i in 0..79 (HSV -> RGB, scaled to 255 and truncated), in the
# shuffled order keras-retinanet fixed so that neighbouring labels get distinct colours. Kept identical so
# that images drawn by both projects look the same.
COLORS = (
    (31, 0, 255), (0, 159, 255), (255, 95, 0), (255, 19, 0), (255, 0, 0),
    (255, 38, 0), (0, 255, 25), (255, 0, 133), (255, 172, 0), (108, 0, 255),
    (0, 82, 255), (0, 255, 6), (255, 0, 152), (223, 0, 255), (12, 0, 255),
    (0, 255, 178), (108, 255, 0), (184, 0, 255), (255, 0, 76), (146, 255, 0),
    (51, 0, 255), (0, 197, 255), (255, 248, 0), (255, 0, 19), (255, 0, 38),
    (89, 255, 0), (127, 255, 0), (255, 153, 0), (0, 255, 255), (0, 255, 216),
    (0, 255, 121), (255, 0, 248), (70, 0, 255), (0, 255, 159), (0, 216, 255),
    (0, 6, 255), (0, 63, 255), (31, 255, 0), (255, 57, 0), (255, 0, 210),
    (0, 255, 102), (242, 255, 0), (255, 191, 0), (0, 255, 63), (255, 0, 95),
    (146, 0, 255), (184, 255, 0), (255, 114, 0), (0, 255, 235), (255, 229, 0),
    (0, 178, 255), (255, 0, 114), (255, 0, 57), (0, 140, 255), (0, 121, 255),
    (12, 255, 0), (255, 210, 0), (0, 255, 44), (165, 255, 0), (0, 25, 255),
    (0, 255, 140), (0, 101, 255), (0, 255, 82), (223, 255, 0), (242, 0, 255),
    (89, 0, 255), (165, 0, 255), (70, 255, 0), (255, 0, 172), (255, 76, 0),
    (203, 255, 0), (204, 0, 255), (255, 0, 229), (255, 133, 0), (127, 0, 255),
    (0, 235, 255), (0, 255, 197), (255, 0, 191), (0, 44, 255), (50, 255, 0),
)


def label_color(label):
    """The drawing colour of a class label.

    Args:
        label: integer class label (numpy integers and integral floats are accepted).

    Returns:
        A 3-tuple of ints in 0..255, used as-is as a BGR colour by OpenCV (as keras-retinanet did).
        Labels outside 0..79 get green, with a warning.
    """
    label = int(label)
    if 0 <= label < len(COLORS):
        return COLORS[label]
    warnings.warn(f"Label {label} has no color, returning default.", stacklevel=2)
    return DEFAULT_COLOR


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
