"""Backbones, model construction, conversion to inference and loading of saved models."""

import os

from .. import distribute, layers, losses, initializers  # noqa: F401  (registers the serialisable objects: GlobalBatchAdam, layers, losses)
from ..checkpoint.files import load_model_file
from ..errors import ModelError


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
        from ..anchors import DEFAULT_PYRAMID_LEVELS, guess_shapes

        return guess_shapes(image_shape, pyramid_levels or list(DEFAULT_PYRAMID_LEVELS))

    def preprocess_image(self, inputs):
        """Preprocess an image (or batch) the way this backbone was trained."""
        from ..data.input_transform import preprocess_image

        return preprocess_image(inputs, mode=self.preprocessing_mode)


def _backbone_classes():
    """(lower-case name prefix, Backbone class, the names it builds) triples, tried in order by :func:`backbone`.

    A longer prefix comes before any prefix of it ('mobilenetv2' before 'mobilenet'); each
    class's ``validate`` then accepts only its own names: ``names()`` of a keras.applications
    family (MobileNet's ``allowed_backbones`` are keras-retinanet 1.0.0's size prefixes such as
    'mobilenet224', to which callers append '_{alpha}'), ResNet's ``allowed_backbones``.
    """
    from .densenet import DenseNetBackbone
    from .effnet import EfficientNetBackbone
    from .mobilenet import MobileNetBackbone, MobileNetV2Backbone, MobileNetV3Backbone
    from .resnet import ResNetBackbone
    from .vgg import VGGBackbone

    classes = [
        ("resnet", ResNetBackbone, ResNetBackbone.allowed_backbones),
        ("vgg", VGGBackbone, VGGBackbone.names()),
        ("mobilenetv3", MobileNetV3Backbone, MobileNetV3Backbone.names()),
        ("mobilenetv2", MobileNetV2Backbone, MobileNetV2Backbone.names()),
        ("mobilenet", MobileNetBackbone, MobileNetBackbone.names()),
        ("densenet", DenseNetBackbone, DenseNetBackbone.names()),
        ("efficientnet", EfficientNetBackbone, EfficientNetBackbone.names()),
    ]
    return classes


def backbone_names():
    """Every backbone name :func:`backbone` accepts."""
    return [name for _, _, names in _backbone_classes() for name in names]


def backbone(backbone_name):
    """The :class:`Backbone` for a name such as 'resnet50'.

    Raises:
        ModelError: the name is unknown, also within a family ('vgg99', 'densenet7'); the one-line
            message lists the valid names.
    """
    for prefix, cls, _ in _backbone_classes():
        if backbone_name.lower().startswith(prefix):
            try:
                return cls(backbone_name)
            except ModelError:
                break  # a family's prefix but none of its names: list every valid name below
    raise ModelError(f"unknown backbone '{backbone_name}'; valid backbones: {', '.join(backbone_names())}")


def load_model(filepath, backbone_name="resnet50", compile=True, safe_mode=True):
    """Load a model saved by this package (``.keras`` or ``.h5``) or by keras-retinanet (Keras 2 ``.h5``).

    Args:
        filepath: path to the model file.
        backbone_name: backbone the model was built with (checked against the file).
        compile: restore the optimiser and losses of a training snapshot.
        safe_mode: refuse files that would run code when loaded (Lambda layers).

    Returns:
        the Keras model.
    """
    expected = backbone(backbone_name)  # an unknown name is an error before the file is read
    if not os.path.exists(filepath):
        raise FileNotFoundError(f"{filepath}: no such model file")
    return load_model_file(filepath, expected, compile=compile, safe_mode=safe_mode, convert_model=convert_model)


def convert_model(
    model,
    nms=True,
    class_specific_filter=True,
    anchor_params=None,
    pyramid_levels=None,
    nms_threshold=0.5,
    score_threshold=0.05,
    max_detections=300,
    parallel_iterations=32,
    **kwargs,
):
    """Turn a training model into an inference model that outputs boxes, scores and labels."""
    from .retinanet import retinanet_bbox

    return retinanet_bbox(
        model=model,
        nms=nms,
        class_specific_filter=class_specific_filter,
        anchor_params=anchor_params,
        pyramid_levels=pyramid_levels,
        nms_threshold=nms_threshold,
        score_threshold=score_threshold,
        max_detections=max_detections,
        parallel_iterations=parallel_iterations,
        **kwargs,
    )


def assert_training_model(model):
    """Raise ModelError unless ``model`` is a training model."""
    from .retinanet import assert_training_model as _assert

    _assert(model)


def check_training_model(model):
    """Exit with a one-line message unless ``model`` is a training model."""
    try:
        assert_training_model(model)
    except ModelError as error:
        raise SystemExit(f"error: {error}")


__all__ = [
    "Backbone",
    "backbone",
    "backbone_names",
    "load_model",
    "convert_model",
    "assert_training_model",
    "check_training_model",
]
