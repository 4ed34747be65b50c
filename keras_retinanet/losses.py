"""RetinaNet's losses: focal loss for classification; smooth L1 (keras-retinanet's) or GIoU for box regression.

Targets follow keras-retinanet: the last column of ``y_true`` is the anchor state
(-1 ignore, 0 background, 1 foreground); the box targets are (B, N, 4 + 1), the coded
corner offsets then the state. The GIoU loss compares boxes, not codes, so it needs each
anchor too: its targets are (B, N, 4 + 4 + 1), the anchors' corners between the codes and
the state (``anchors.targets.anchor_targets_with_anchors``); smooth L1 reads the first four
columns and the last of either layout. The losses are summed over anchors and
divided by the number of foreground anchors (at least 1); under ``tf.distribute``
the foreground anchors of the whole global batch, counted over all replicas.

Masks are used where keras-retinanet gathered the valid anchors: the sums are the
same, and fixed shapes keep the losses usable under XLA and tf.distribute.
"""

import keras
import tensorflow as tf

from .anchors.box_coding import BOX_CODING_MEAN, BOX_CODING_STD

PACKAGE = "keras_retinanet"

# keras.backend.binary_crossentropy of Keras 2 clipped to [eps, 1 - eps] and added eps
# inside the logarithms; doing the same keeps loss values identical to keras-retinanet.
_EPSILON = 1e-7


def _sum_over_replicas(value):
    """``value`` summed over the replicas of a ``tf.distribute`` step; as it is elsewhere.

    Under ``tf.distribute`` each replica computes the loss on its slice of the global
    batch and the replicas' gradients are summed. Normalising each slice's sum by the
    positives of the *global* batch makes that sum the gradient one device computes on
    the whole batch, however it is split.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return context.all_reduce(tf.distribute.ReduceOp.SUM, value)


def _positive_count(anchor_state):
    """Number of foreground anchors in the (global) batch, at least 1. anchor_state: (B, N)."""
    positives = tf.reduce_sum(tf.cast(tf.equal(anchor_state, 1.0), tf.float32))
    positives = tf.stop_gradient(_sum_over_replicas(positives))  # a count of targets: no gradient flows
    return tf.maximum(1.0, positives)


def focal_loss(y_true, y_pred, alpha=0.25, gamma=2.0, cutoff=0.5):
    """Focal loss FL(p_t) = -alpha_t (1 - p_t)^gamma log(p_t), over non-ignored anchors.

    Args:
        y_true: (B, N, C + 1) one-hot labels, last column the anchor state.
        y_pred: (B, N, C) sigmoid scores.
        alpha: weight of the foreground class (background gets 1 - alpha).
        gamma: focusing exponent.
        cutoff: labels above this count as foreground (for soft targets).

    Returns:
        scalar loss, summed and divided by the number of foreground anchors.
    """
    y_true = tf.cast(y_true, tf.float32)
    classification = tf.cast(y_pred, tf.float32)
    labels = y_true[..., :-1]
    anchor_state = y_true[..., -1]
    valid = tf.cast(tf.not_equal(anchor_state, -1.0), tf.float32)[..., tf.newaxis]

    foreground = tf.greater(labels, cutoff)
    alpha_factor = tf.where(foreground, alpha, 1.0 - alpha)
    focal_weight = tf.where(foreground, 1.0 - classification, classification)
    focal_weight = alpha_factor * focal_weight**gamma

    clipped = tf.clip_by_value(classification, _EPSILON, 1.0 - _EPSILON)
    cross_entropy = -(labels * tf.math.log(clipped + _EPSILON) + (1.0 - labels) * tf.math.log(1.0 - clipped + _EPSILON))

    return tf.reduce_sum(focal_weight * cross_entropy * valid) / _positive_count(anchor_state)


def smooth_l1_loss(y_true, y_pred, sigma=3.0):
    """Smooth L1 loss over foreground anchors.

    ``0.5 (sigma x)^2`` where ``|x| < 1 / sigma^2``, else ``|x| - 0.5 / sigma^2``.

    Args:
        y_true: (B, N, 4 + 1) box targets, last column the anchor state; (B, N, 4 + 4 + 1) targets with the anchors
            (for :func:`giou_loss`) give the same loss.
        y_pred: (B, N, 4) regression outputs.
        sigma: where the loss changes from quadratic to linear.

    Returns:
        scalar loss, summed and divided by the number of foreground anchors.
    """
    y_true = tf.cast(y_true, tf.float32)
    regression = tf.cast(y_pred, tf.float32)
    sigma_squared = sigma**2
    anchor_state = y_true[..., -1]
    positive = tf.cast(tf.equal(anchor_state, 1.0), tf.float32)[..., tf.newaxis]

    difference = tf.abs(regression - y_true[..., :4])
    loss = tf.where(
        difference < 1.0 / sigma_squared,
        0.5 * sigma_squared * tf.square(difference),
        difference - 0.5 / sigma_squared,
    )
    return tf.reduce_sum(loss * positive) / _positive_count(anchor_state)


def decode_boxes(anchors, deltas):
    """keras-retinanet's box decoding in TensorFlow: ``anchor + (delta * std + mean) * (w, h, w, h)``.

    Args:
        anchors: (..., 4) anchor corners (x1, y1, x2, y2).
        deltas: (..., 4) coded corner offsets (``anchors.box_coding.bbox_transform``).

    Returns:
        (..., 4) boxes (x1, y1, x2, y2).
    """
    widths = anchors[..., 2] - anchors[..., 0]
    heights = anchors[..., 3] - anchors[..., 1]
    scale = tf.stack([widths, heights, widths, heights], axis=-1)
    std = tf.constant(BOX_CODING_STD, dtype=deltas.dtype)
    mean = tf.constant(BOX_CODING_MEAN, dtype=deltas.dtype)
    return anchors + (deltas * std + mean) * scale


def generalized_iou(boxes, other):
    """Generalised IoU (Rezatofighi et al., 2019) of two sets of boxes, pairwise along the last axis.

    ``GIoU = IoU - (C - U) / C``, with U the area of the union and C that of the smallest box enclosing both. A box
    with x2 < x1 (a regression that crossed over) counts as empty; areas below 1e-9 are held at 1e-9, so the value
    and its gradient stay finite.

    Args:
        boxes, other: (..., 4) boxes (x1, y1, x2, y2).

    Returns:
        (...) values in [-1, 1].
    """
    def area(box):
        return tf.maximum(box[..., 2] - box[..., 0], 0.0) * tf.maximum(box[..., 3] - box[..., 1], 0.0)

    low = tf.maximum(boxes[..., :2], other[..., :2])
    high = tf.minimum(boxes[..., 2:], other[..., 2:])
    intersection = tf.reduce_prod(tf.maximum(high - low, 0.0), axis=-1)
    union = tf.maximum(area(boxes) + area(other) - intersection, 1e-9)
    enclosing_low = tf.minimum(boxes[..., :2], other[..., :2])
    enclosing_high = tf.maximum(boxes[..., 2:], other[..., 2:])
    enclosing = tf.maximum(tf.reduce_prod(tf.maximum(enclosing_high - enclosing_low, 0.0), axis=-1), 1e-9)
    return intersection / union - (enclosing - union) / enclosing


def giou_loss(y_true, y_pred):
    """GIoU loss ``1 - GIoU(decoded prediction, box)`` over foreground anchors (torchvision's RetinaNet v2 box loss).

    The regression head predicts keras-retinanet's coded corner offsets; both they and the targets are decoded on
    the anchors, which ride in the targets.

    Args:
        y_true: (B, N, 4 + 4 + 1) box targets: the coded offsets, the anchors (x1, y1, x2, y2) and the anchor state.
        y_pred: (B, N, 4) regression outputs.

    Returns:
        scalar loss, summed and divided by the number of foreground anchors.
    """
    y_true = tf.cast(y_true, tf.float32)
    regression = tf.cast(y_pred, tf.float32)
    columns = tf.shape(y_true)[-1]
    checks = [tf.debugging.assert_equal(columns, 9, message="the GIoU loss needs box targets with the anchors, "
                                        "(B, N, 4 + 4 + 1): anchors.targets.anchor_targets_with_anchors")]  # fmt: skip
    with tf.control_dependencies(checks):
        anchors = y_true[..., 4:8]
    anchor_state = y_true[..., -1]
    positive = tf.cast(tf.equal(anchor_state, 1.0), tf.float32)
    boxes = decode_boxes(anchors, y_true[..., :4])
    predicted = decode_boxes(anchors, regression)
    loss = 1.0 - generalized_iou(predicted, boxes)
    return tf.reduce_sum(loss * positive) / _positive_count(anchor_state)


@keras.saving.register_keras_serializable(package=PACKAGE)
class FocalLoss(keras.losses.Loss):
    """:func:`focal_loss` as a serialisable Keras loss."""

    def __init__(self, alpha=0.25, gamma=2.0, cutoff=0.5, name="focal", **kwargs):
        super().__init__(name=name, **kwargs)
        self.alpha = float(alpha)
        self.gamma = float(gamma)
        self.cutoff = float(cutoff)

    def call(self, y_true, y_pred):
        return focal_loss(y_true, y_pred, self.alpha, self.gamma, self.cutoff)

    def get_config(self):
        config = super().get_config()
        config.update({"alpha": self.alpha, "gamma": self.gamma, "cutoff": self.cutoff})
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class SmoothL1Loss(keras.losses.Loss):
    """:func:`smooth_l1_loss` as a serialisable Keras loss."""

    def __init__(self, sigma=3.0, name="smooth_l1", **kwargs):
        super().__init__(name=name, **kwargs)
        self.sigma = float(sigma)

    def call(self, y_true, y_pred):
        return smooth_l1_loss(y_true, y_pred, self.sigma)

    def get_config(self):
        config = super().get_config()
        config.update({"sigma": self.sigma})
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class GIoULoss(keras.losses.Loss):
    """:func:`giou_loss` as a serialisable Keras loss (its targets carry the anchors, see :func:`giou_loss`)."""

    def __init__(self, name="giou", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return giou_loss(y_true, y_pred)


# The box losses a training model can be compiled with (``--box-loss``), by name.
BOX_LOSSES = ("smooth_l1", "giou")


def focal(alpha=0.25, gamma=2.0, cutoff=0.5):
    """The focal loss with the paper's defaults, as keras-retinanet's ``losses.focal``."""
    return FocalLoss(alpha=alpha, gamma=gamma, cutoff=cutoff)


def smooth_l1(sigma=3.0):
    """The smooth L1 loss, as keras-retinanet's ``losses.smooth_l1``."""
    return SmoothL1Loss(sigma=sigma)


def giou():
    """The GIoU box loss (targets with the anchors: ``anchors.targets.anchor_targets_with_anchors``)."""
    return GIoULoss()


def box_loss(name: str) -> keras.losses.Loss:
    """The box loss of a name of :data:`BOX_LOSSES`."""
    if name not in BOX_LOSSES:
        raise ValueError(f"unknown box loss '{name}'; expected one of {', '.join(BOX_LOSSES)}")
    return smooth_l1() if name == "smooth_l1" else giou()


def needs_anchor_columns(name: str) -> bool:
    """Whether a box loss needs targets that carry the anchors, (B, N, 4 + 4 + 1)."""
    return name == "giou"
