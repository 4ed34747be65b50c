"""The graph that takes one raw image: preprocessing and resizing inside, boxes in the image's own pixels.

It reproduces the prediction pipeline of keras-retinanet (``InputTransform(..., preprocess_first=True)``):
the uint8 BGR image is preprocessed to float (the spec's mode), then resized with OpenCV's
``cv2.resize(image, None, fx=scale, fy=scale)`` (bilinear, ``INTER_LINEAR``), the scale from
:func:`~keras_retinanet.data.input_transform.compute_resize_scale`.

The resize is written out as gathers and linear interpolation rather than ``tf.image.resize``:
OpenCV maps output pixel ``d`` to input ``(d + 0.5) / scale - 0.5`` with the *requested* scale, while
``tf.image.resize`` uses the ratio of the rounded sizes (e.g. 203 / 173 instead of 150 / 128 for a
150x203 image at 128), which moves samples by up to a quarter pixel at the far edge. The ops used
(Gather, Floor, Minimum, Mul, Add) exist in TFLite's builtins and in ONNX alike.

TensorFlow is imported inside the functions: :mod:`keras_retinanet.export` is imported by the
commands, whose ``--help`` and argument errors should not wait for TensorFlow.
"""

from typing import Any, Dict

from ..config.spec import DetectorSpec
from ..data.input_transform import CAFFE_MEANS_BGR
from .formats import RAW_INPUT_NAME

# The name scope of the ops added around the model; int8 export keeps them in float32.
RAW_INPUT_SCOPE = "raw_input"


def preprocess(image, mode: str):
    """(H, W, 3) float32 BGR pixel values -> network values, as ``data.input_transform.preprocess_image``."""
    import tensorflow as tf

    if mode == "tf":
        return image / 127.5 - 1.0
    if mode == "caffe":
        return image - tf.constant(CAFFE_MEANS_BGR, dtype=tf.float32)
    if mode == "none":
        return image
    raise ValueError(f"unknown preprocessing mode '{mode}'; expected 'caffe', 'tf' or 'none'")


def resize_scale(rows, cols, min_side: int, max_side: int):
    """``compute_resize_scale`` on scalar float32 tensors: the smaller side to ``min_side``, the larger at most ``max_side``."""
    import tensorflow as tf

    scale = min_side / tf.minimum(rows, cols)
    largest = tf.maximum(rows, cols)
    return tf.where(largest * scale > max_side, max_side / largest, scale)


def _linear_sampling(size, out_size, scale):
    """Indices and weights of OpenCV's bilinear resize along one axis.

    Args:
        size: int32 scalar, the input length.
        out_size: int32 scalar, the output length.
        scale: float32 scalar, output / input.

    Returns:
        (first (out_size,) int32, second (out_size,) int32, weight of the second (out_size,) float32);
        samples outside the image take the edge pixel, as OpenCV's replicated border does.
    """
    import tensorflow as tf

    last = tf.cast(size - 1, tf.float32)
    position = (tf.cast(tf.range(out_size), tf.float32) + 0.5) / scale - 0.5
    position = tf.clip_by_value(position, 0.0, last)
    first = tf.floor(position)
    weight = position - first
    first = tf.cast(first, tf.int32)
    second = tf.minimum(first + 1, size - 1)
    return first, second, weight


def resize_like_opencv(image, scale, out_rows, out_cols):
    """``cv2.resize(image, None, fx=scale, fy=scale)`` (INTER_LINEAR) of a float image.

    Args:
        image: (H, W, C) float32.
        scale: float32 scalar.
        out_rows, out_cols: int32 scalars, ``round(H * scale)`` and ``round(W * scale)``.

    Returns:
        (out_rows, out_cols, C) float32.
    """
    import tensorflow as tf

    shape = tf.shape(image)
    top, bottom, row_weight = _linear_sampling(shape[0], out_rows, scale)
    row_weight = row_weight[:, tf.newaxis, tf.newaxis]
    image = tf.gather(image, top, axis=0) * (1.0 - row_weight) + tf.gather(image, bottom, axis=0) * row_weight
    left, right, col_weight = _linear_sampling(shape[1], out_cols, scale)
    col_weight = col_weight[tf.newaxis, :, tf.newaxis]
    return tf.gather(image, left, axis=1) * (1.0 - col_weight) + tf.gather(image, right, axis=1) * col_weight


def network_input(image, spec: DetectorSpec):
    """One raw image as the network sees it.

    Args:
        image: (H, W, 3) uint8 BGR.
        spec: the model's spec (preprocessing mode, image sides, whether to resize).

    Returns:
        ((H', W', 3) float32 network input, float32 scalar scale from image to input pixels).
    """
    import tensorflow as tf

    values = preprocess(tf.cast(image, tf.float32), spec.preprocessing)
    if not spec.resize:
        return values, tf.constant(1.0, tf.float32)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = resize_scale(shape[0], shape[1], spec.image_min_side, spec.image_max_side)
    # tf.round rounds halves to even, as OpenCV's saturate_cast (lrint) does when it sizes the output.
    out_rows = tf.cast(tf.round(shape[0] * scale), tf.int32)
    out_cols = tf.cast(tf.round(shape[1] * scale), tf.int32)
    return resize_like_opencv(values, scale, out_rows, out_cols), scale


def raw_serving_function(model, spec: DetectorSpec):
    """The inference model as a ``tf.function`` of one raw image.

    Args:
        model: an inference model (boxes, scores, labels first).
        spec: its spec; says how to preprocess and resize.

    Returns:
        ``tf.function`` with input signature ``image`` (None, None, 3) uint8 BGR, returning a dict of
        ``boxes`` (D, 4) float32 in the image's pixels, ``scores`` (D,) float32, ``labels`` (D,) int32,
        rows past the detections -1.
    """
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec((None, None, 3), tf.uint8, name=RAW_INPUT_NAME)])
    def detect(image) -> Dict[str, Any]:
        with tf.name_scope(RAW_INPUT_SCOPE):
            values, scale = network_input(image, spec)
        boxes, scores, labels = model(values[tf.newaxis], training=False)[:3]
        with tf.name_scope(RAW_INPUT_SCOPE):
            boxes, scores, labels = boxes[0], scores[0], labels[0]
            # The -1 padding stays -1; real boxes go back to the image's pixels.
            boxes = tf.where(labels[:, tf.newaxis] >= 0, boxes / scale, -1.0)
        return {"boxes": boxes, "scores": scores, "labels": labels}

    return detect
