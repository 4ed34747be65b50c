"""Backbones, model construction, conversion to inference and loading of saved models."""

import os

from .. import initializers, layers, losses, optimizers  # noqa: F401  (registers the serialisable objects: GlobalBatchAdam, layers, losses)
from ..checkpoint.files import load_model_file, model_file_kind, read_spec
from ..config.defaults import DEFAULTS
from ..errors import ModelError
from .base import Backbone
from .densenet import DenseNetBackbone
from .effnet import EfficientNetBackbone
from .legacy.builder import load_legacy_model
from .mobilenet import MobileNetBackbone, MobileNetV2Backbone, MobileNetV3Backbone
from .resnet import ResNetBackbone
from .retinanet import assert_training_model, retinanet_bbox
from .model_with_spec import RetinaNetModel, spec_of
from .vgg import VGGBackbone

# keras-retinanet's default, for its files, which do not say which backbone they hold.
DEFAULT_BACKBONE = DEFAULTS["model"]["backbone"]


def _backbone_classes():
    """(lower-case name prefix, Backbone class, the names it builds) triples, tried in order by :func:`backbone`.

    A longer prefix comes before any prefix of it ('mobilenetv2' before 'mobilenet'); each
    class's ``validate`` then accepts only its own names: ``names()`` of a keras.applications
    family (MobileNet's ``allowed_backbones`` are keras-retinanet 1.0.0's size prefixes such as
    'mobilenet224', to which callers append '_{alpha}'), ResNet's ``allowed_backbones``.
    """
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


def load_model(filepath, backbone_name=None, compile=True, safe_mode=True):
    """Load a model saved by this package (``.keras`` or ``.h5``) or by keras-retinanet (Keras 2 ``.h5``).

    Args:
        filepath: path to the model file.
        backbone_name: backbone the model was built with. None: the one the file's spec names
            (keras-retinanet's files, which have none: 'resnet50', keras-retinanet's default).
            A name that contradicts the file is an error.
        compile: restore the optimiser and losses of a training snapshot.
        safe_mode: refuse files that would run code when loaded (Lambda layers).

    Returns:
        the Keras model; a model of this package carries its :class:`DetectorSpec` as ``model.spec``.
    """
    if backbone_name is not None:
        backbone(backbone_name)  # an unknown name is an error before the file is read
    if not os.path.exists(filepath):
        raise FileNotFoundError(f"{filepath}: no such model file")
    spec = read_spec(filepath)
    if spec is not None and backbone_name is not None and backbone_name != spec.backbone:
        raise ModelError(
            f"{filepath} holds a {spec.backbone} RetinaNet, not {backbone_name}; "
            "leave out --backbone (the file says which) or give its own"
        )
    name = backbone_name or (spec.backbone if spec is not None else DEFAULT_BACKBONE)
    if model_file_kind(filepath) == "keras2":  # keras-retinanet's format: rebuilt on the backbone, weights by name
        return load_legacy_model(filepath, backbone(name), compile=compile)
    return load_model_file(filepath, compile=compile, safe_mode=safe_mode)


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


# keras-retinanet's second name for the check, which printed and exited; here it raises the same ModelError as
# assert_training_model (library code never exits), and the commands report that as their one-line error.
check_training_model = assert_training_model


__all__ = [
    "Backbone",
    "backbone",
    "backbone_names",
    "load_model",
    "convert_model",
    "assert_training_model",
    "check_training_model",
    "RetinaNetModel",
    "spec_of",
]
