"""The base class of every backbone: builds RetinaNets on it and preprocesses images for it."""

from .. import hub, initializers, layers, losses
from ..anchors import DEFAULT_PYRAMID_LEVELS, guess_shapes
from ..data.input_transform import preprocess_image


def freeze(model):
    """Make every layer of ``model`` untrainable; returns the model (a backbone ``modifier``, --freeze-backbone)."""
    for layer in model.layers:
        layer.trainable = False
    return model


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

    def imagenet_weights_name(self) -> str:
        """The registry name of this backbone's ImageNet weights, e.g. 'resnet50_imagenet'.

        Raises:
            keras_retinanet.hub.UnknownWeightsError: none are known for this backbone.
        """
        return hub.imagenet_weights_name(self.backbone)

    def imagenet_weights_entry(self) -> "hub.WeightsEntry":
        """The registry entry (URL, file name, hash) of this backbone's ImageNet weights."""
        return hub.lookup(self.imagenet_weights_name())

    def download_imagenet(self) -> str:
        """The local path of this backbone's ImageNet weights, downloaded into the cache on first use.

        As keras-retinanet's: the file keras-retinanet used for the backbone, verified by its
        published hash (see :mod:`keras_retinanet.hub`); ``$KERAS_RETINANET_MIRROR`` redirects it.

        Raises:
            keras_retinanet.hub.DownloadError: the download failed (the message names the URL and
                where to put the file instead).
        """
        return hub.fetch(self.imagenet_weights_name())

    def feature_shapes(self, image_shape, pyramid_levels=None):
        """Sizes of the pyramid levels for an input size (a ``shapes_callback`` for anchors).

        The ResNet rule ``(side + 2^l - 1) // 2^l``; backbones that round otherwise override it.

        Returns:
            list of (height, width) arrays, one per level (default P3-P7).
        """
        return guess_shapes(image_shape, pyramid_levels or list(DEFAULT_PYRAMID_LEVELS))

    def follow_model_padding(self, model) -> bool:
        """Count feature-map sizes as a loaded ``model`` pads its strided layers; True if that changed them.

        keras-resnet's files pad as this package does; ApplicationBackbone handles Keras 2.2-era MobileNets.
        """
        return False

    def preprocess_image(self, inputs):
        """Preprocess an image (or batch) the way this backbone was trained."""
        return preprocess_image(inputs, mode=self.preprocessing_mode)
