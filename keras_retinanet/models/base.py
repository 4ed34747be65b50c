"""The base class of every backbone: builds RetinaNets on it and preprocesses images for it."""

from .. import initializers, layers, losses
from ..anchors import DEFAULT_PYRAMID_LEVELS, guess_shapes
from ..data.input_transform import preprocess_image


class Backbone:
    """A backbone family: builds RetinaNets on it and preprocesses images for it.

    Subclasses set ``preprocessing_mode`` and implement :meth:`validate`,
    :meth:`retinanet` and :meth:`load_imagenet_weights`.
    """

    preprocessing_mode = "caffe"
    # ResNets use keras-resnet's frozen BatchNorm and accept ``freeze_bn`` in :meth:`retinanet`.
    has_frozen_batch_norm = False

    def __init__(self, backbone):
        self.backbone = backbone
        # Everything is registered with Keras; kept for code written for keras-retinanet.
        self.custom_objects = {
            "UpsampleLike": layers.UpsampleLike,
            "PriorProbability": initializers.PriorProbability,
            "RegressBoxes": layers.RegressBoxes,
            "FilterDetections": layers.FilterDetections,
            "Anchors": layers.Anchors,
            "ClipBoxes": layers.ClipBoxes,
            "BatchNormalization": layers.BatchNormalization,
            "_smooth_l1": losses.smooth_l1(),
            "_focal": losses.focal(),
        }
        self.validate()

    def retinanet(self, *args, **kwargs):
        """A RetinaNet training model on this backbone."""
        raise NotImplementedError("retinanet method not implemented.")

    def validate(self):
        """Raise ModelError if the backbone name is not one this class builds."""
        raise NotImplementedError("validate method not implemented.")

    def load_imagenet_weights(self, model, path):
        """Load pretrained backbone weights from the local file ``path``."""
        raise NotImplementedError("load_imagenet_weights method not implemented.")

    def download_imagenet(self):
        """keras-retinanet downloaded weights here; this package never downloads."""
        raise RuntimeError(
            "keras_retinanet does not download weights. Download the ImageNet weights file yourself and pass "
            "its path (retinanet-train --imagenet-weights PATH, or backbone.load_imagenet_weights(model, PATH))."
        )

    def feature_shapes(self, image_shape, pyramid_levels=None):
        """Sizes of the pyramid levels for an input size (a ``shapes_callback`` for anchors).

        The ResNet rule ``(side + 2^l - 1) // 2^l``; backbones that round otherwise override it.

        Returns:
            list of (height, width) arrays, one per level (default P3-P7).
        """
        return guess_shapes(image_shape, pyramid_levels or list(DEFAULT_PYRAMID_LEVELS))

    def preprocess_image(self, inputs):
        """Preprocess an image (or batch) the way this backbone was trained."""
        return preprocess_image(inputs, mode=self.preprocessing_mode)
