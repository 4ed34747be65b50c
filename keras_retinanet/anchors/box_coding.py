"""Box coding in corner form: boxes as offsets from their anchors, in anchor widths and heights.

``t = ((gx1 - ax1) / aw, (gy1 - ay1) / ah, (gx2 - ax2) / aw, (gy2 - ay2) / ah)``, then ``(t - mean) / std``,
with ``aw = ax2 - ax1`` (no ``+ 1``), as in keras-retinanet 1.0.0.
"""

import numpy as np

# The box coding divides the corner offsets (in anchor widths/heights) by this standard deviation
# (keras-retinanet 1.0.0's; config.defaults lists them with the other defaults).
BOX_CODING_MEAN = (0.0, 0.0, 0.0, 0.0)
BOX_CODING_STD = (0.2, 0.2, 0.2, 0.2)

DEFAULT_BOX_MEAN = np.array(BOX_CODING_MEAN, dtype=np.float64)
DEFAULT_BOX_STD = np.array(BOX_CODING_STD, dtype=np.float64)


def bbox_transform(anchors, gt_boxes, mean=None, std=None):
    """Encode boxes relative to anchors in corner form.

    ``t = ((gx1 - ax1) / aw, (gy1 - ay1) / ah, (gx2 - ax2) / aw, (gy2 - ay2) / ah)``,
    then ``(t - mean) / std``.

    Args:
        anchors: (N, 4) anchors.
        gt_boxes: (N, 4) boxes, one per anchor.
        mean: (4,) mean of the coding (default 0).
        std: (4,) standard deviation of the coding (default 0.2).

    Returns:
        (N, 4) float64 regression targets.
    """
    mean = DEFAULT_BOX_MEAN if mean is None else np.asarray(mean, dtype=np.float64)
    std = DEFAULT_BOX_STD if std is None else np.asarray(std, dtype=np.float64)
    anchors = np.asarray(anchors, dtype=np.float64)
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64)

    widths = anchors[:, 2] - anchors[:, 0]
    heights = anchors[:, 3] - anchors[:, 1]
    # In place on one (N, 4) array instead of stacking a (N, 4) divisor: the same divisions,
    # a third of the memory traffic.
    targets = gt_boxes - anchors
    targets[:, 0::2] /= widths[:, None]
    targets[:, 1::2] /= heights[:, None]
    # t - (+0.0) == t for every float, -0.0 included, so a zero mean is skipped exactly.
    if mean.any() or np.signbit(mean).any():
        targets -= mean
    targets /= std
    return targets


def _bbox_transform_into(out, anchor_columns, boxes, argmax):
    """:func:`bbox_transform` with the default mean and std of every anchor towards its best box.

    The same float64 operations as ``bbox_transform(anchors, boxes[argmax])``, done one coordinate
    at a time on contiguous (N,) arrays (a gather from K boxes instead of an (N, 4) fancy index),
    then rounded once to ``out``'s dtype.

    Args:
        out: (N, 4) array to write the targets to (e.g. a float32 slice of the regression batch).
        anchor_columns: ``(x1, y1, x2, y2, area)`` of the N anchors, from :func:`_box_columns`.
        boxes: (K, 4) float64 ground-truth boxes.
        argmax: (N,) index of each anchor's box.
    """
    x1, y1, x2, y2, _ = anchor_columns
    widths = x2 - x1
    heights = y2 - y1
    for column, (anchor_coordinate, size) in enumerate(((x1, widths), (y1, heights), (x2, widths), (y2, heights))):
        target = np.take(np.ascontiguousarray(boxes[:, column]), argmax)
        target -= anchor_coordinate
        target /= size
        mean = DEFAULT_BOX_MEAN[column]
        # As in bbox_transform: t - (+0.0) == t for every float, so keras-retinanet's zero mean is skipped exactly.
        if mean or np.signbit(mean):
            target -= mean
        target /= DEFAULT_BOX_STD[column]
        out[:, column] = target


def bbox_transform_inv(anchors, deltas, mean=None, std=None):
    """Decode regression outputs back to boxes (the inverse of :func:`bbox_transform`).

    Args:
        anchors: (..., 4) anchors.
        deltas: (..., 4) regression values.

    Returns:
        (..., 4) boxes ``(x1, y1, x2, y2)``.
    """
    mean = DEFAULT_BOX_MEAN if mean is None else np.asarray(mean, dtype=np.float64)
    std = DEFAULT_BOX_STD if std is None else np.asarray(std, dtype=np.float64)
    anchors = np.asarray(anchors, dtype=np.float64)
    widths = anchors[..., 2] - anchors[..., 0]
    heights = anchors[..., 3] - anchors[..., 1]
    scale = np.stack([widths, heights, widths, heights], axis=-1)
    return anchors + (np.asarray(deltas) * std + mean) * scale
