"""Training targets of a batch: box-coding regression targets and one-hot labels, with each anchor's state."""

import numpy as np

from .box_coding import _bbox_transform_into
from .matching import NEGATIVE_OVERLAP, POSITIVE_OVERLAP, _best_overlaps, _split_by_overlap
from .overlap import _box_columns


def anchor_targets_bbox(
    anchors,
    image_group,
    annotations_group,
    num_classes,
    negative_overlap=NEGATIVE_OVERLAP,
    positive_overlap=POSITIVE_OVERLAP,
):
    """Training targets of a batch.

    Args:
        anchors: (N, 4) anchors of the (padded) batch input.
        image_group: the B images (only their shapes are used, to ignore anchors whose
            centre falls outside the image).
        annotations_group: B dicts with ``'bboxes'`` (K, 4) and ``'labels'`` (K,).
        num_classes: number of classes C.
        negative_overlap: IoU at or below which an anchor is background.
        positive_overlap: IoU at or above which an anchor is foreground.

    Returns:
        regression_batch: (B, N, 4 + 1) box targets, last column the anchor state
            (-1 ignore, 0 background, 1 foreground).
        labels_batch: (B, N, C + 1) one-hot labels, last column the anchor state.
    """
    if len(image_group) != len(annotations_group):
        raise ValueError("image_group and annotations_group must have the same length")
    batch_size = len(image_group)
    num_anchors = anchors.shape[0]
    regression_batch = np.zeros((batch_size, num_anchors, 4 + 1), dtype=np.float32)
    labels_batch = np.zeros((batch_size, num_anchors, num_classes + 1), dtype=np.float32)

    anchor_centres_x = (anchors[:, 0] + anchors[:, 2]) / 2
    anchor_centres_y = (anchors[:, 1] + anchors[:, 3]) / 2
    # The same anchors serve every image of the batch: convert and split them once.
    anchor_columns = _box_columns(anchors)

    for index, (image, annotations) in enumerate(zip(image_group, annotations_group)):
        # The state column is built as one (N,) vector and only its non-zero entries are written:
        # the (N, C + 1) labels are mostly zero pages that nothing here needs to touch.
        state = np.zeros((num_anchors,), dtype=np.float32)
        boxes = np.asarray(annotations["bboxes"], dtype=np.float64).reshape((-1, 4))
        if boxes.shape[0]:
            max_overlaps, argmax = _best_overlaps(anchor_columns, boxes)
            positive, ignore = _split_by_overlap(max_overlaps, negative_overlap, positive_overlap)
            state[ignore] = -1
            state[positive] = 1

            labels = np.asarray(annotations["labels"]).astype(int)
            positive_indices = np.flatnonzero(positive)
            labels_batch[index, positive_indices, labels[argmax[positive_indices]]] = 1
            _bbox_transform_into(regression_batch[index, :, :-1], anchor_columns, boxes, argmax)

        image_shape = np.shape(image)
        if len(image_shape) >= 2:
            outside = (anchor_centres_x >= image_shape[1]) | (anchor_centres_y >= image_shape[0])
            state[outside] = -1
        # Written after the one-hot labels, so that a label equal to num_classes (which indexes the
        # state column) ends as the state, as it did when the state was written last per mask.
        marked = np.flatnonzero(state)
        labels_batch[index, marked, -1] = state[marked]
        regression_batch[index, marked, -1] = state[marked]

    return regression_batch, labels_batch


def anchor_targets_with_anchors(anchors, image_group, annotations_group, num_classes, **overlaps):
    """:func:`anchor_targets_bbox` with each anchor's corners in the box targets, for a loss that decodes boxes (GIoU).

    Args:
        anchors, image_group, annotations_group, num_classes: as :func:`anchor_targets_bbox`.
        **overlaps: ``negative_overlap``, ``positive_overlap``.

    Returns:
        regression_batch: (B, N, 4 + 4 + 1): the coded targets, the anchors (x1, y1, x2, y2), the anchor state.
        labels_batch: (B, N, C + 1), as :func:`anchor_targets_bbox`'s.
    """
    regression, labels = anchor_targets_bbox(anchors, image_group, annotations_group, num_classes, **overlaps)
    batch = regression.shape[0]
    columns = np.broadcast_to(np.asarray(anchors, dtype=np.float32)[np.newaxis], (batch,) + np.shape(anchors))
    return np.concatenate([regression[..., :4], columns, regression[..., 4:]], axis=-1), labels
