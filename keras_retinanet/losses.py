"""RetinaNet's losses: focal loss for classification, smooth L1 for box regression.

Targets follow keras-retinanet: the last column of ``y_true`` is the anchor state
(-1 ignore, 0 background, 1 foreground). Both losses are summed over anchors and
divided by the number of foreground anchors (at least 1); under ``tf.distribute``
the foreground anchors of the whole global batch, counted over all replicas.

Masks are used where keras-retinanet gathered the valid anchors: the sums are the
same, and fixed shapes keep the losses usable under XLA and tf.distribute.
"""

import keras
import tensorflow as tf

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
        y_true: (B, N, 4 + 1) box targets, last column the anchor state.
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

    difference = tf.abs(regression - y_true[..., :-1])
    loss = tf.where(
        difference < 1.0 / sigma_squared,
        0.5 * sigma_squared * tf.square(difference),
        difference - 0.5 / sigma_squared,
    )
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


def focal(alpha=0.25, gamma=2.0, cutoff=0.5):
    """The focal loss with the paper's defaults, as keras-retinanet's ``losses.focal``."""
    return FocalLoss(alpha=alpha, gamma=gamma, cutoff=cutoff)


def smooth_l1(sigma=3.0):
    """The smooth L1 loss, as keras-retinanet's ``losses.smooth_l1``."""
    return SmoothL1Loss(sigma=sigma)
