"""Matching anchors to ground-truth boxes: the best box of each anchor and its foreground/ignore state."""

import numpy as np

from .overlap import _box_columns, _overlaps_with_box

# keras-retinanet 1.0.0's matching: IoU at or above POSITIVE_OVERLAP is a positive, below NEGATIVE_OVERLAP a negative
# (config.defaults lists them with the other defaults).
POSITIVE_OVERLAP = 0.5
NEGATIVE_OVERLAP = 0.4


def _best_overlaps(anchor_columns, annotations):
    """Best IoU of each anchor over the annotations, and which annotation gives it.

    Equivalent to ``overlaps.max(axis=1), np.argmax(overlaps, axis=1)`` of the (N, K) IoU matrix,
    ties included (the first maximum wins), without building that matrix: the annotations are
    visited in order and an anchor only moves to a later one whose IoU is strictly larger.

    Args:
        anchor_columns: ``(x1, y1, x2, y2, area)`` of N anchors, from :func:`_box_columns`.
        annotations: (K, 4) ground-truth boxes, K >= 1.

    Returns:
        max_overlaps: (N,) float64 best IoU (0 where no annotation overlaps).
        argmax_overlaps_inds: (N,) intp index of the annotation with that IoU (0 where none overlaps).
    """
    num_anchors = anchor_columns[0].shape[0]
    max_overlaps = np.zeros((num_anchors,), dtype=np.float64)
    argmax_overlaps_inds = np.zeros((num_anchors,), dtype=np.intp)
    x1, y1, x2, y2, area = _box_columns(annotations)
    for annotation in range(x1.shape[0]):
        box = (x1[annotation], y1[annotation], x2[annotation], y2[annotation])
        indices, overlaps = _overlaps_with_box(anchor_columns, box, area[annotation])
        better = overlaps > max_overlaps[indices]
        indices = indices[better]
        max_overlaps[indices] = overlaps[better]
        argmax_overlaps_inds[indices] = annotation
    return max_overlaps, argmax_overlaps_inds


def compute_gt_annotations(anchors, annotations, negative_overlap=NEGATIVE_OVERLAP, positive_overlap=POSITIVE_OVERLAP):
    """Match anchors to ground-truth boxes.

    Args:
        anchors: (N, 4) anchors.
        annotations: (K, 4) ground-truth boxes, K >= 1.
        negative_overlap: IoU at or below which an anchor is background.
        positive_overlap: IoU at or above which an anchor is foreground.

    Returns:
        positive_indices: (N,) bool, best IoU >= positive_overlap.
        ignore_indices: (N,) bool, negative_overlap < best IoU < positive_overlap.
        argmax_overlaps_inds: (N,) index of the best-matching annotation.
    """
    annotations = np.asarray(annotations, dtype=np.float64)
    if annotations.shape[0] == 0:
        raise ValueError("compute_gt_annotations: no annotations to match the anchors to (K = 0)")
    max_overlaps, argmax_overlaps_inds = _best_overlaps(_box_columns(anchors), annotations)
    return _split_by_overlap(max_overlaps, negative_overlap, positive_overlap) + (argmax_overlaps_inds,)


def _split_by_overlap(max_overlaps, negative_overlap, positive_overlap):
    """Foreground and ignored anchors from their best IoU.

    Args:
        max_overlaps: (N,) best IoU of each anchor.

    Returns:
        positive_indices: (N,) bool, IoU >= positive_overlap.
        ignore_indices: (N,) bool, negative_overlap < IoU < positive_overlap.
    """
    positive_indices = max_overlaps >= positive_overlap
    ignore_indices = (max_overlaps > negative_overlap) & ~positive_indices
    return positive_indices, ignore_indices


def unmatched_annotations(anchors, boxes, negative_overlap=NEGATIVE_OVERLAP, positive_overlap=POSITIVE_OVERLAP):
    """Which annotations no anchor is assigned to as foreground in training.

    An annotation is learned only through the anchors whose best match it is with
    IoU >= ``positive_overlap``; one without any can never be detected, the usual
    cause of a mAP stuck at zero.

    Args:
        anchors: (N, 4) anchors.
        boxes: (K, 4) annotations.

    Returns:
        (K,) bool, True where the annotation has no foreground anchor.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape((-1, 4))
    if boxes.shape[0] == 0:
        return np.zeros((0,), dtype=bool)
    positive, _, best = compute_gt_annotations(anchors, boxes, negative_overlap, positive_overlap)
    unmatched = np.ones(boxes.shape[0], dtype=bool)
    unmatched[best[positive]] = False
    return unmatched
