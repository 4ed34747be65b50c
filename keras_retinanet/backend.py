"""Box operations on tensors, the graph-side twins of :mod:`keras_retinanet.anchors`."""

import tensorflow as tf

from .config.defaults import BOX_CODING_MEAN, BOX_CODING_STD


def shift(shape, stride, anchors):
    """Place reference anchors at every position of a feature map.

    Args:
        shape: (2,) int tensor, (height, width) of the feature map.
        stride: stride of the level in input pixels.
        anchors: (A, 4) reference anchors.

    Returns:
        (height * width * A, 4) float32 anchors, positions row-major, anchors innermost.
    """
    anchors = tf.cast(anchors, tf.float32)
    shift_x = (tf.cast(tf.range(shape[1]), tf.float32) + 0.5) * stride
    shift_y = (tf.cast(tf.range(shape[0]), tf.float32) + 0.5) * stride
    shift_x, shift_y = tf.meshgrid(shift_x, shift_y)
    shift_x = tf.reshape(shift_x, [-1])
    shift_y = tf.reshape(shift_y, [-1])
    shifts = tf.stack([shift_x, shift_y, shift_x, shift_y], axis=1)
    all_anchors = anchors[tf.newaxis, :, :] + shifts[:, tf.newaxis, :]
    return tf.reshape(all_anchors, [-1, 4])


def bbox_transform_inv(anchors, deltas, mean=None, std=None):
    """Decode regression values into boxes.

    Args:
        anchors: (..., 4) anchors ``(x1, y1, x2, y2)``.
        deltas: (..., 4) regression outputs.
        mean: (4,) coding mean (default ``BOX_CODING_MEAN``, 0).
        std: (4,) coding standard deviation (default ``BOX_CODING_STD``, 0.2).

    Returns:
        (..., 4) boxes ``(x1, y1, x2, y2)``.
    """
    if mean is None:
        mean = BOX_CODING_MEAN
    if std is None:
        std = BOX_CODING_STD
    anchors = tf.cast(anchors, tf.float32)
    deltas = tf.cast(deltas, tf.float32)
    width = anchors[..., 2] - anchors[..., 0]
    height = anchors[..., 3] - anchors[..., 1]
    scale = tf.stack([width, height, width, height], axis=-1)
    return anchors + (deltas * tf.constant(std, tf.float32) + tf.constant(mean, tf.float32)) * scale


def clip_boxes(boxes, height, width):
    """Clip boxes ``(x1, y1, x2, y2)`` to ``[0, width - 1] x [0, height - 1]``.

    Args:
        boxes: (..., 4) boxes.
        height, width: scalar image size.

    Returns:
        (..., 4) clipped boxes.
    """
    # One element-wise minimum against (W-1, H-1, W-1, H-1) rather than four unstacked clips: fewer
    # ops, and TFLite's selective quantization can keep a single-output op in float.
    upper = tf.cast(tf.stack([width, height, width, height]), boxes.dtype) - 1.0
    return tf.minimum(tf.maximum(boxes, 0.0), upper)


def resize_nearest_like(source, target_height, target_width):
    """Nearest-neighbour resize that picks source index ``floor(i * in / out)``.

    This is TF1's ``resize_images(..., NEAREST_NEIGHBOR)`` (no half-pixel centres),
    which keras-retinanet's ``UpsampleLike`` used; ``tf.image.resize`` differs. It is
    written as two gathers, whose gradients XLA compiles (ResizeNearestNeighborGrad
    has no XLA kernel) and which every export format supports.

    Args:
        source: (B, h, w, C) tensor.
        target_height, target_width: output size.

    Returns:
        (B, target_height, target_width, C) tensor.
    """
    shape = tf.shape(source)
    rows = (tf.range(target_height) * shape[1]) // target_height
    columns = (tf.range(target_width) * shape[2]) // target_width
    return tf.gather(tf.gather(source, rows, axis=1), columns, axis=2)
