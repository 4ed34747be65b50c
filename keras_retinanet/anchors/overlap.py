"""Intersection over union of boxes, in numpy.

Widths are ``x2 - x1`` (no ``+ 1``), as in keras-retinanet 1.0.0; a box without area overlaps nothing.
"""

import numpy as np

# Below this many box pairs the plain (N, K) broadcast is cheapest. Above it, a loop over the
# shorter side that only looks at the boxes which can intersect the current one is several times
# faster and needs O(N) memory: of the ~160,000 anchors of an 800 px image, a box meets a few hundred.
_DENSE_OVERLAP_MAX_PAIRS = 4096


def _box_columns(boxes):
    """Contiguous float64 coordinate columns and areas of a set of boxes.

    Args:
        boxes: (N, 4+) boxes ``(x1, y1, x2, y2, ...)``.

    Returns:
        (x1, y1, x2, y2, area): five (N,) float64 arrays, ``area = (x2 - x1) * (y2 - y1)``.
    """
    boxes = np.asarray(boxes)
    # Column by column from the input's own dtype: converting the whole (N, 4) array to float64
    # first and then splitting it costs ten times more (a fresh multi-megabyte temporary).
    x1, y1, x2, y2 = (boxes[:, column].astype(np.float64) for column in range(4))
    return x1, y1, x2, y2, (x2 - x1) * (y2 - y1)


def _overlaps_with_box(columns, box, box_area):
    """IoU of many boxes with one box, evaluated only where it can be non-zero.

    Args:
        columns: ``(x1, y1, x2, y2, area)`` of N boxes, from :func:`_box_columns`.
        box: ``(x1, y1, x2, y2)`` float64 scalars of the other box.
        box_area: its area, ``(x2 - x1) * (y2 - y1)``.

    Returns:
        indices: (M,) indices of the boxes that may intersect ``box``; every other box has IoU 0.
        overlaps: (M,) float64 IoU of those boxes (0 for some of them), computed with the same
            operations in the same order as :func:`_dense_overlaps`, so bit for bit equal to it.
    """
    x1, y1, x2, y2, area = columns
    box_x1, box_y1, box_x2, box_y2 = box
    # A positive intersection needs min(x2) > max(x1) and min(y2) > max(y1); anchors failing
    # any of these four tests are skipped. The tests may keep a few boxes that end up with IoU 0.
    candidates = (x1 < box_x2) & (x2 > box_x1)
    candidates &= y1 < box_y2
    candidates &= y2 > box_y1
    indices = np.flatnonzero(candidates)
    # In place on the gathered (M,) arrays; each line is one operation of _dense_overlaps.
    iw = np.minimum(x2[indices], box_x2)
    iw -= np.maximum(x1[indices], box_x1)
    ih = np.minimum(y2[indices], box_y2)
    ih -= np.maximum(y1[indices], box_y1)
    intersection = np.clip(iw, 0, None, out=iw)
    intersection *= np.clip(ih, 0, None, out=ih)
    union = area[indices]
    union += box_area
    union -= intersection
    valid = intersection > 0
    valid &= union > 0
    overlaps = np.zeros(indices.shape, dtype=np.float64)
    np.divide(intersection, union, out=overlaps, where=valid)
    return indices, overlaps


def _dense_overlaps(boxes, query_boxes):
    """:func:`compute_overlap` as one (N, K) broadcast, for small N * K.

    Args:
        boxes: (N, 4+) float64 boxes.
        query_boxes: (K, 4+) float64 boxes.

    Returns:
        (N, K) float64 IoU.
    """
    iw = np.minimum(boxes[:, None, 2], query_boxes[None, :, 2]) - np.maximum(boxes[:, None, 0], query_boxes[None, :, 0])
    ih = np.minimum(boxes[:, None, 3], query_boxes[None, :, 3]) - np.maximum(boxes[:, None, 1], query_boxes[None, :, 1])
    intersection = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    query_area = (query_boxes[:, 2] - query_boxes[:, 0]) * (query_boxes[:, 3] - query_boxes[:, 1])
    union = area[:, None] + query_area[None, :] - intersection
    with np.errstate(divide="ignore", invalid="ignore"):
        overlaps = np.where((intersection > 0) & (union > 0), intersection / union, 0.0)
    return overlaps


def compute_overlap(boxes, query_boxes):
    """Intersection over union of every pair of boxes.

    Args:
        boxes: (N, 4) boxes ``(x1, y1, x2, y2)``.
        query_boxes: (K, 4) boxes.

    Returns:
        (N, K) float64 IoU; zero where either box has no area.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    query_boxes = np.asarray(query_boxes, dtype=np.float64)
    num_boxes, num_queries = boxes.shape[0], query_boxes.shape[0]
    if num_boxes * num_queries <= _DENSE_OVERLAP_MAX_PAIRS:
        return _dense_overlaps(boxes, query_boxes)

    overlaps = np.zeros((num_boxes, num_queries), dtype=np.float64)
    # IoU is symmetric bit for bit (min, max, + and * commute in IEEE arithmetic), so loop over
    # whichever side is shorter.
    if num_queries <= num_boxes:
        columns = _box_columns(boxes)
        x1, y1, x2, y2, area = _box_columns(query_boxes)
        for query in range(num_queries):
            indices, values = _overlaps_with_box(columns, (x1[query], y1[query], x2[query], y2[query]), area[query])
            overlaps[indices, query] = values
    else:
        columns = _box_columns(query_boxes)
        x1, y1, x2, y2, area = _box_columns(boxes)
        for box in range(num_boxes):
            indices, values = _overlaps_with_box(columns, (x1[box], y1[box], x2[box], y2[box]), area[box])
            overlaps[box, indices] = values
    return overlaps
