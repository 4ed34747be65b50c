"""Anchors, upsampling and box decoding layers."""

import keras
import numpy as np
import tensorflow as tf

from .. import backend
from ..anchors import AnchorParameters, generate_anchors
from ..config.defaults import BOX_CODING_MEAN, BOX_CODING_STD

PACKAGE = "keras_retinanet"


@keras.saving.register_keras_serializable(package=PACKAGE)
class Anchors(keras.layers.Layer):
    """Anchors of one pyramid level, tiled over the batch.

    Input: (B, H, W, C) feature map. Output: (B, H * W * A, 4) float32 anchors.
    """

    def __init__(self, size, stride, ratios=None, scales=None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.size = int(size)
        self.stride = int(stride)
        self.ratios = np.asarray(
            AnchorParameters.default.ratios if ratios is None else ratios, dtype=np.float32
        )
        self.scales = np.asarray(
            AnchorParameters.default.scales if scales is None else scales, dtype=np.float32
        )
        self.num_anchors = len(self.ratios) * len(self.scales)
        self.reference_anchors = generate_anchors(self.size, self.ratios, self.scales).astype(np.float32)

    def call(self, features):
        shape = tf.shape(features)
        anchors = backend.shift(shape[1:3], self.stride, self.reference_anchors)
        return tf.tile(anchors[tf.newaxis], [shape[0], 1, 1])

    def compute_output_shape(self, input_shape):
        if input_shape[1] is not None and input_shape[2] is not None:
            total = input_shape[1] * input_shape[2] * self.num_anchors
        else:
            total = None
        return (input_shape[0], total, 4)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "size": self.size,
                "stride": self.stride,
                "ratios": [float(r) for r in self.ratios],
                "scales": [float(s) for s in self.scales],
            }
        )
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class UpsampleLike(keras.layers.Layer):
    """Nearest-neighbour resize of ``source`` to the spatial size of ``target``.

    Inputs: [source (B, h, w, C), target (B, H, W, C')]. Output: (B, H, W, C).
    """

    def call(self, inputs):
        source, target = inputs
        target_shape = tf.shape(target)
        return backend.resize_nearest_like(source, target_shape[1], target_shape[2])

    def compute_output_shape(self, input_shape):
        source_shape, target_shape = input_shape
        return (source_shape[0], target_shape[1], target_shape[2], source_shape[-1])


@keras.saving.register_keras_serializable(package=PACKAGE)
class RegressBoxes(keras.layers.Layer):
    """Decode regression values against anchors.

    Inputs: [anchors (B, N, 4), regression (B, N, 4)]. Output: (B, N, 4) float32 boxes.
    """

    def __init__(self, mean=None, std=None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.mean = np.asarray(BOX_CODING_MEAN if mean is None else mean, dtype=np.float32)
        self.std = np.asarray(BOX_CODING_STD if std is None else std, dtype=np.float32)

    def call(self, inputs):
        anchors, regression = inputs
        return backend.bbox_transform_inv(anchors, regression, mean=self.mean, std=self.std)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update({"mean": [float(m) for m in self.mean], "std": [float(s) for s in self.std]})
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class ClipBoxes(keras.layers.Layer):
    """Clip boxes to the input image.

    Inputs: [image (B, H, W, C), boxes (B, N, 4)]. Output: (B, N, 4) boxes within
    ``[0, W - 1] x [0, H - 1]``.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def call(self, inputs):
        image, boxes = inputs
        shape = tf.shape(image)
        return backend.clip_boxes(tf.cast(boxes, tf.float32), shape[1], shape[2])

    def compute_output_shape(self, input_shape):
        return input_shape[1]
