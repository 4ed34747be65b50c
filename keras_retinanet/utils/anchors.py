"""Anchor generation, overlaps, box coding and target assignment, in numpy.

Everything here follows keras-retinanet 1.0.0 exactly:

* anchors are corner boxes ``(x1, y1, x2, y2)`` centred on ``((j + 0.5) * stride, (i + 0.5) * stride)``;
* within a position the order is ratio-major (for each ratio, every scale);
* positions are row-major (y outer, x inner), which is the order in which the heads'
  ``Reshape((-1, C))`` lays out their outputs;
* box widths are ``x2 - x1`` (no ``+ 1``) in overlaps and in the box coding.
"""

import numpy as np

DEFAULT_PYRAMID_LEVELS = (3, 4, 5, 6, 7)


class AnchorParameters:
    """The anchor settings of every pyramid level.

    Args:
        sizes: base size of the anchors, one per pyramid level.
        strides: stride of each pyramid level in pixels of the input image.
        ratios: aspect ratios (height / width) used at every position.
        scales: scales applied to the base size at every position.
    """

    def __init__(self, sizes, strides, ratios, scales):
        self.sizes = [int(s) for s in sizes]
        self.strides = [int(s) for s in strides]
        self.ratios = np.asarray(ratios, dtype=np.float32)
        self.scales = np.asarray(scales, dtype=np.float32)
        if len(self.sizes) != len(self.strides):
            raise ValueError(
                f"anchor parameters: {len(self.sizes)} sizes but {len(self.strides)} strides; "
                "give one size per stride (one per pyramid level)"
            )

    def num_anchors(self):
        """Number of anchors at each position of each level."""
        return len(self.ratios) * len(self.scales)

    def get_config(self):
        return {
            "sizes": list(self.sizes),
            "strides": list(self.strides),
            "ratios": [float(r) for r in self.ratios],
            "scales": [float(s) for s in self.scales],
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return isinstance(other, AnchorParameters) and self.get_config() == other.get_config()

    def __repr__(self):
        return "AnchorParameters({sizes}, {strides}, {ratios}, {scales})".format(**self.get_config())


AnchorParameters.default = AnchorParameters(
    sizes=[32, 64, 128, 256, 512],
    strides=[8, 16, 32, 64, 128],
    ratios=np.array([0.5, 1, 2], np.float32),
    scales=np.array([2 ** 0, 2 ** (1.0 / 3.0), 2 ** (2.0 / 3.0)], np.float32),
)


def generate_anchors(base_size=16, ratios=None, scales=None):
    """Reference anchors centred on the origin.

    Args:
        base_size: side of the square anchor at ratio 1, scale 1.
        ratios: (R,) aspect ratios, height / width.
        scales: (S,) scales.

    Returns:
        (R * S, 4) anchors ``(x1, y1, x2, y2)``, ratio-major.
    """
    if ratios is None:
        ratios = AnchorParameters.default.ratios
    if scales is None:
        scales = AnchorParameters.default.scales
    ratios = np.asarray(ratios, dtype=np.float64)
    scales = np.asarray(scales, dtype=np.float64)

    side = base_size * np.tile(scales, len(ratios))  # square side for each (ratio, scale)
    areas = side * side
    ratio_per_anchor = np.repeat(ratios, len(scales))
    widths = np.sqrt(areas / ratio_per_anchor)
    heights = widths * ratio_per_anchor
    return np.stack([-0.5 * widths, -0.5 * heights, 0.5 * widths, 0.5 * heights], axis=1)


def shift(shape, stride, anchors):
    """Place the reference anchors at every position of a feature map.

    Args:
        shape: (height, width) of the feature map.
        stride: its stride in input pixels.
        anchors: (A, 4) reference anchors from :func:`generate_anchors`.

    Returns:
        (height * width * A, 4) anchors, positions row-major, anchors innermost.
    """
    shift_x = (np.arange(0, shape[1]) + 0.5) * stride
    shift_y = (np.arange(0, shape[0]) + 0.5) * stride
    shift_x, shift_y = np.meshgrid(shift_x, shift_y)
    shifts = np.stack([shift_x.ravel(), shift_y.ravel(), shift_x.ravel(), shift_y.ravel()], axis=1)
    all_anchors = anchors[np.newaxis, :, :] + shifts[:, np.newaxis, :]
    return all_anchors.reshape((-1, 4))


def guess_shapes(image_shape, pyramid_levels):
    """Feature map sizes of a ResNet-style backbone: ``(side + 2^l - 1) // 2^l``.

    Args:
        image_shape: (height, width, ...) of the input.
        pyramid_levels: levels, e.g. ``[3, 4, 5, 6, 7]``.

    Returns:
        list of (height, width) arrays, one per level.
    """
    image_shape = np.array(image_shape[:2])
    return [(image_shape + 2 ** level - 1) // (2 ** level) for level in pyramid_levels]


def anchors_for_shape(image_shape, pyramid_levels=None, anchor_params=None, shapes_callback=None):
    """All anchors of an image of the given shape.

    Args:
        image_shape: (height, width, ...) of the network input.
        pyramid_levels: levels to generate anchors for (default P3-P7).
        anchor_params: :class:`AnchorParameters` (default: the paper's).
        shapes_callback: function ``(image_shape, pyramid_levels) -> feature shapes``.

    Returns:
        (N, 4) float32 anchors, level by level.
    """
    if pyramid_levels is None:
        pyramid_levels = list(DEFAULT_PYRAMID_LEVELS)
    if anchor_params is None:
        anchor_params = AnchorParameters.default
    if shapes_callback is None:
        shapes_callback = guess_shapes
    if len(pyramid_levels) != len(anchor_params.sizes):
        raise ValueError(
            f"{len(pyramid_levels)} pyramid levels {list(pyramid_levels)} but anchor parameters "
            f"for {len(anchor_params.sizes)} levels"
        )
    feature_shapes = shapes_callback(image_shape, pyramid_levels)

    all_anchors = [np.zeros((0, 4))]
    for index in range(len(pyramid_levels)):
        anchors = generate_anchors(anchor_params.sizes[index], anchor_params.ratios, anchor_params.scales)
        all_anchors.append(shift(feature_shapes[index], anchor_params.strides[index], anchors))
    return np.concatenate(all_anchors, axis=0).astype(np.float32)


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


def compute_gt_annotations(anchors, annotations, negative_overlap=0.4, positive_overlap=0.5):
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


DEFAULT_BOX_MEAN = np.array([0.0, 0.0, 0.0, 0.0])
DEFAULT_BOX_STD = np.array([0.2, 0.2, 0.2, 0.2])


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
        # DEFAULT_BOX_MEAN is +0.0 and t - (+0.0) == t for every float: only the std remains.
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


def anchor_targets_bbox(
    anchors,
    image_group,
    annotations_group,
    num_classes,
    negative_overlap=0.4,
    positive_overlap=0.5,
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


def unmatched_annotations(anchors, boxes, negative_overlap=0.4, positive_overlap=0.5):
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
