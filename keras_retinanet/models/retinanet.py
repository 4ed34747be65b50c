"""RetinaNet assembled from parts: backbone features, a feature pyramid and two subnets.

The training model maps an image batch to ``regression`` (B, N, 4) and
``classification`` (B, N, C); :func:`retinanet_bbox` adds anchors, box decoding and
detection filtering on top of it for inference.
"""

import math

import keras

from .. import initializers, layers
from ..errors import ModelError
from .model_with_spec import RetinaNetModel, spec_of
from ..anchors import DEFAULT_PYRAMID_LEVELS, AnchorParameters

# Layers that compute in float32 whatever the precision policy: the heads' last
# convolutions (logits and box deltas), everything after them, and anchors.
FLOAT32_LAYER_NAMES = frozenset(
    {
        "pyramid_classification",
        "pyramid_classification_reshape",
        "pyramid_classification_sigmoid",
        "pyramid_regression",
        "pyramid_regression_reshape",
        "regression",
        "classification",
        "anchors",
        "boxes",
        "clipped_boxes",
        "filtered_detections",
    }
)


# The normalisations the subnets can put after each of their four hidden convolutions (``--head-norm``).
HEAD_NORMS = ("none", "group")
# GroupNorm's groups in the subnets (Wu & He, 2018; torchvision's RetinaNet v2); narrower heads take the largest
# divisor of their width.
HEAD_NORM_GROUPS = 32


def head_norm_groups(channels: int) -> int:
    """The groups of a subnet's GroupNorm: :data:`HEAD_NORM_GROUPS`, or the largest common divisor with ``channels``."""
    return math.gcd(HEAD_NORM_GROUPS, int(channels))


def _check_head_norm(head_norm):
    if head_norm not in HEAD_NORMS:
        raise ModelError(f"unknown head norm '{head_norm}'; expected one of {', '.join(HEAD_NORMS)}")


def _hidden_layer(outputs, filters, name, head_norm, **options):
    """One hidden layer of a subnet: a 3x3 convolution with ReLU, or with ``head_norm='group'`` a convolution, GroupNorm
    and ReLU (the convolution keeps its bias and name, so weights load by name between the two kinds of heads)."""
    if head_norm == "none":
        return keras.layers.Conv2D(filters=filters, activation="relu", name=name, **options)(outputs)
    outputs = keras.layers.Conv2D(filters=filters, name=name, **options)(outputs)
    outputs = keras.layers.GroupNormalization(groups=head_norm_groups(filters), epsilon=1e-5, name=f"{name}_norm")(outputs)
    return keras.layers.Activation("relu", name=f"{name}_relu")(outputs)


def keeps_float32(layer_name):
    """Whether a layer computes in float32 whatever the precision: one of FLOAT32_LAYER_NAMES or a level's anchors."""
    return layer_name in FLOAT32_LAYER_NAMES or (layer_name.startswith("anchors_") and layer_name[8:].isdigit())


def default_classification_model(
    num_classes,
    num_anchors,
    pyramid_feature_size=256,
    prior_probability=0.01,
    classification_feature_size=256,
    name="classification_submodel",
    head_norm="none",
):
    """The classification subnet, shared across pyramid levels.

    Four 3x3 conv + ReLU layers (with ``head_norm='group'``: conv, GroupNorm, ReLU), then a 3x3 conv to
    ``num_anchors * num_classes`` sigmoid scores. Kernels start from N(0, 0.01); the last bias from the prior.

    Returns:
        Model mapping (B, H, W, pyramid_feature_size) to (B, H * W * num_anchors, num_classes).
    """
    _check_head_norm(head_norm)
    options = {"kernel_size": 3, "strides": 1, "padding": "same"}
    inputs = keras.layers.Input(shape=(None, None, pyramid_feature_size))
    outputs = inputs
    for i in range(4):
        outputs = _hidden_layer(
            outputs,
            classification_feature_size,
            f"pyramid_classification_{i}",
            head_norm,
            kernel_initializer=keras.initializers.RandomNormal(mean=0.0, stddev=0.01),
            bias_initializer="zeros",
            **options,
        )
    outputs = keras.layers.Conv2D(
        filters=num_classes * num_anchors,
        kernel_initializer=keras.initializers.RandomNormal(mean=0.0, stddev=0.01),
        bias_initializer=initializers.PriorProbability(probability=prior_probability),
        name="pyramid_classification",
        dtype="float32",  # logits in float32 under mixed precision
        **options,
    )(outputs)
    outputs = keras.layers.Reshape((-1, num_classes), dtype="float32", name="pyramid_classification_reshape")(outputs)
    outputs = keras.layers.Activation("sigmoid", dtype="float32", name="pyramid_classification_sigmoid")(outputs)
    return keras.Model(inputs=inputs, outputs=outputs, name=name)


def default_regression_model(
    num_values,
    num_anchors,
    pyramid_feature_size=256,
    regression_feature_size=256,
    name="regression_submodel",
    head_norm="none",
):
    """The box regression subnet, shared across pyramid levels (``head_norm``: as the classification subnet's).

    Returns:
        Model mapping (B, H, W, pyramid_feature_size) to (B, H * W * num_anchors, num_values).
    """
    options = {
        "kernel_size": 3,
        "strides": 1,
        "padding": "same",
        "kernel_initializer": keras.initializers.RandomNormal(mean=0.0, stddev=0.01),
        "bias_initializer": "zeros",
    }
    _check_head_norm(head_norm)
    inputs = keras.layers.Input(shape=(None, None, pyramid_feature_size))
    outputs = inputs
    for i in range(4):
        outputs = _hidden_layer(outputs, regression_feature_size, f"pyramid_regression_{i}", head_norm, **options)
    outputs = keras.layers.Conv2D(num_anchors * num_values, name="pyramid_regression", dtype="float32", **options)(outputs)
    outputs = keras.layers.Reshape((-1, num_values), dtype="float32", name="pyramid_regression_reshape")(outputs)
    return keras.Model(inputs=inputs, outputs=outputs, name=name)


def default_submodels(
    num_classes,
    num_anchors,
    pyramid_feature_size=256,
    classification_feature_size=256,
    regression_feature_size=256,
    prior_probability=0.01,
    head_norm="none",
):
    """The (name, subnet) pairs of a standard RetinaNet: regression first, then classification.

    ``head_norm``: 'none' (keras-retinanet's heads) or 'group' (GroupNorm after each hidden convolution of both).
    """
    return [
        (
            "regression",
            default_regression_model(
                4,
                num_anchors,
                pyramid_feature_size=pyramid_feature_size,
                regression_feature_size=regression_feature_size,
                head_norm=head_norm,
            ),
        ),
        (
            "classification",
            default_classification_model(
                num_classes,
                num_anchors,
                pyramid_feature_size=pyramid_feature_size,
                prior_probability=prior_probability,
                classification_feature_size=classification_feature_size,
                head_norm=head_norm,
            ),
        ),
    ]


def create_pyramid_features(backbone_layers, pyramid_levels=None, feature_size=256):
    """The FPN of the paper, P3-P7 (P2 too when asked for and C2 is given).

    Args:
        backbone_layers: dict with 'C3', 'C4', 'C5' (and optionally 'C2') tensors.
        pyramid_levels: levels to return, e.g. [3, 4, 5, 6, 7].
        feature_size: channels of every pyramid level.

    Returns:
        dict 'P{level}' -> (B, H_l, W_l, feature_size) tensor for the requested levels.
    """
    if pyramid_levels is None:
        pyramid_levels = list(DEFAULT_PYRAMID_LEVELS)
    if 2 in pyramid_levels and "C2" not in backbone_layers:
        raise ModelError(
            "pyramid level P2 is not supported on this backbone: P2 is built from the stride-4 features (C2), "
            "which only the ResNet backbones give; use levels 3-7, or a resnet backbone for P2"
        )
    C3, C4, C5 = backbone_layers["C3"], backbone_layers["C4"], backbone_layers["C5"]
    conv = {"strides": 1, "padding": "same"}
    outputs = {}

    P5 = keras.layers.Conv2D(feature_size, kernel_size=1, name="C5_reduced", **conv)(C5)
    P5_upsampled = layers.UpsampleLike(name="P5_upsampled")([P5, C4])
    outputs["P5"] = keras.layers.Conv2D(feature_size, kernel_size=3, name="P5", **conv)(P5)

    P4 = keras.layers.Conv2D(feature_size, kernel_size=1, name="C4_reduced", **conv)(C4)
    P4 = keras.layers.Add(name="P4_merged")([P5_upsampled, P4])
    P4_upsampled = layers.UpsampleLike(name="P4_upsampled")([P4, C3])
    outputs["P4"] = keras.layers.Conv2D(feature_size, kernel_size=3, name="P4", **conv)(P4)

    P3 = keras.layers.Conv2D(feature_size, kernel_size=1, name="C3_reduced", **conv)(C3)
    P3 = keras.layers.Add(name="P3_merged")([P4_upsampled, P3])
    if 2 in pyramid_levels:
        P3_upsampled = layers.UpsampleLike(name="P3_upsampled")([P3, backbone_layers["C2"]])
        P2 = keras.layers.Conv2D(feature_size, kernel_size=1, name="C2_reduced", **conv)(backbone_layers["C2"])
        P2 = keras.layers.Add(name="P2_merged")([P3_upsampled, P2])
        outputs["P2"] = keras.layers.Conv2D(feature_size, kernel_size=3, name="P2", **conv)(P2)
    outputs["P3"] = keras.layers.Conv2D(feature_size, kernel_size=3, name="P3", **conv)(P3)

    # "P6 is obtained via a 3x3 stride-2 conv on C5"
    P6 = keras.layers.Conv2D(feature_size, kernel_size=3, strides=2, padding="same", name="P6")(C5)
    outputs["P6"] = P6
    if 7 in pyramid_levels:
        # "P7 is computed by applying ReLU followed by a 3x3 stride-2 conv on P6"
        P7 = keras.layers.Activation("relu", name="C6_relu")(P6)
        outputs["P7"] = keras.layers.Conv2D(feature_size, kernel_size=3, strides=2, padding="same", name="P7")(P7)

    return {f"P{level}": outputs[f"P{level}"] for level in pyramid_levels}


def retinanet(
    inputs,
    backbone_layers,
    num_classes,
    num_anchors=None,
    create_pyramid_features=create_pyramid_features,
    pyramid_levels=None,
    submodels=None,
    pyramid_feature_size=256,
    classification_feature_size=256,
    regression_feature_size=256,
    prior_probability=0.01,
    name="retinanet",
    spec=None,
    head_norm="none",
):
    """The RetinaNet training model.

    Args:
        inputs: the image input tensor (B, H, W, 3).
        backbone_layers: dict of backbone outputs 'C3', 'C4', 'C5' (and 'C2').
        num_classes: number of classes C.
        num_anchors: anchors per position A (default 9).
        create_pyramid_features: function building the FPN from the backbone layers.
        pyramid_levels: levels the subnets run on (default [3, 4, 5, 6, 7]).
        submodels: list of (name, model); default regression then classification.
        head_norm: the default subnets' normalisation, 'none' (keras-retinanet's) or 'group' (GroupNorm).
        spec: the :class:`~keras_retinanet.config.spec.DetectorSpec` the model carries, or None.

    Returns:
        :class:`RetinaNetModel` with outputs ``regression`` (B, N, 4) and ``classification`` (B, N, C).
    """
    if num_anchors is None:
        num_anchors = AnchorParameters.default.num_anchors()
    if pyramid_levels is None:
        pyramid_levels = list(DEFAULT_PYRAMID_LEVELS)
    if submodels is None:
        submodels = default_submodels(
            num_classes,
            num_anchors,
            pyramid_feature_size=pyramid_feature_size,
            classification_feature_size=classification_feature_size,
            regression_feature_size=regression_feature_size,
            prior_probability=prior_probability,
            head_norm=head_norm,
        )

    features = create_pyramid_features(backbone_layers, pyramid_levels, feature_size=pyramid_feature_size)
    features = [features[f"P{level}"] for level in pyramid_levels]
    outputs = [
        keras.layers.Concatenate(axis=1, name=submodel_name, dtype="float32")([submodel(f) for f in features])
        for submodel_name, submodel in submodels
    ]
    return RetinaNetModel(inputs=inputs, outputs=outputs, name=name, spec=spec)


def is_training_model(model) -> bool:
    """Whether ``model`` is a RetinaNet training model: the one test, its outputs 'regression' and 'classification'."""
    names = output_names(model)
    return "regression" in names and "classification" in names


def assert_training_model(model):
    """Raise ModelError unless ``model`` is a training model (:func:`is_training_model`); the commands report it
    as their one-line error."""
    if not is_training_model(model):
        names = output_names(model)
        raise ModelError(
            f"model '{model.name}' is not a RetinaNet training model: it has outputs {names}, "
            "expected 'regression' and 'classification'. Is it already an inference model?"
        )


def output_names(model):
    """Names of a model's outputs: the layers that produce them."""
    return [tensor._keras_history.operation.name for tensor in model.outputs]


def build_level_anchors(anchor_params, features):
    """Anchors of each pyramid level: a list of (B, N_l, 4), one per feature map."""
    return [
        layers.Anchors(
            size=anchor_params.sizes[i],
            stride=anchor_params.strides[i],
            ratios=anchor_params.ratios,
            scales=anchor_params.scales,
            name=f"anchors_{i}",
        )(f)
        for i, f in enumerate(features)
    ]


def retinanet_bbox(
    model=None,
    nms=True,
    class_specific_filter=True,
    name="retinanet-bbox",
    anchor_params=None,
    pyramid_levels=None,
    nms_threshold=0.5,
    score_threshold=0.05,
    max_detections=300,
    parallel_iterations=32,
    max_candidates=None,
    max_candidates_per_level=None,
    candidates_per_level=None,
    nms_method="hard",
    soft_nms_sigma=0.5,
    **kwargs,
):
    """The inference model: a training model plus anchors, box decoding and filtering.

    Args:
        model: a training model from :func:`retinanet` (built with ``**kwargs`` if None).
        nms: apply non-maximum suppression.
        class_specific_filter: NMS per class (True) or over each anchor's best class.
        anchor_params: :class:`AnchorParameters` (default: the model's spec's, else the paper's).
        pyramid_levels: levels of the model's pyramid (default: the model's spec's, else [3, 4, 5, 6, 7]).
        max_candidates: at most this many candidates per image enter NMS (None: all).
        max_candidates_per_level: at most this many of each pyramid level's best scores above the threshold
            enter NMS, as torchvision and detectron2 do (None: every one, keras-retinanet's filter). A cap
            bounds the work on saturated images but drops objects from crowded ones.
        candidates_per_level: the earlier name of ``max_candidates_per_level``.
        nms_method: 'hard' (keras-retinanet's NMS) or 'soft' (Gaussian Soft-NMS with ``soft_nms_sigma``).

    Returns:
        :class:`RetinaNetModel` mapping images to boxes (B, D, 4), scores (B, D) and labels (B, D),
        D = max_detections, padded with -1; its spec is the training model's with these filter settings.
    """
    if max_candidates_per_level is None:
        max_candidates_per_level = candidates_per_level
    spec = spec_of(model) if model is not None else None
    if anchor_params is None:
        anchor_params = spec.anchor_parameters if spec is not None else AnchorParameters.default
    if pyramid_levels is None:
        pyramid_levels = list(spec.pyramid_levels) if spec is not None else list(DEFAULT_PYRAMID_LEVELS)
    if model is None:
        model = retinanet(num_anchors=anchor_params.num_anchors(), pyramid_levels=pyramid_levels, **kwargs)
    else:
        assert_training_model(model)
    if len(pyramid_levels) != len(anchor_params.sizes):
        raise ModelError(
            f"{len(pyramid_levels)} pyramid levels {list(pyramid_levels)} but anchor parameters for "
            f"{len(anchor_params.sizes)} levels; the config file must give one size and stride per level"
        )

    features = [model.get_layer(f"P{level}").output for level in pyramid_levels]
    level_anchors = build_level_anchors(anchor_params, features)
    anchors = keras.layers.Concatenate(axis=1, name="anchors", dtype="float32")(level_anchors)

    names = output_names(model)
    regression = model.outputs[names.index("regression")]
    classification = model.outputs[names.index("classification")]
    other = [t for t, n in zip(model.outputs, names) if n not in ("regression", "classification")]

    boxes = layers.RegressBoxes(name="boxes")([anchors, regression])
    boxes = layers.ClipBoxes(name="clipped_boxes")([model.inputs[0], boxes])
    detections = layers.FilterDetections(
        nms=nms,
        class_specific_filter=class_specific_filter,
        name="filtered_detections",
        nms_threshold=nms_threshold,
        score_threshold=score_threshold,
        max_detections=max_detections,
        parallel_iterations=parallel_iterations,
        max_candidates=max_candidates,
        max_candidates_per_level=max_candidates_per_level,
        nms_method=nms_method,
        soft_nms_sigma=soft_nms_sigma,
    )([boxes, classification] + other, level_anchors=level_anchors)
    # model.input keeps the training model's input structure (a single tensor, not a list of one), so
    # calling the inference model on an image batch does not warn about mismatched input structure.
    if spec is not None:
        spec = spec.replace(anchors=anchor_params.get_config(), pyramid_levels=tuple(pyramid_levels)).with_filter(
            nms=nms,
            class_specific_filter=class_specific_filter,
            nms_threshold=nms_threshold,
            score_threshold=score_threshold,
            max_detections=max_detections,
            max_candidates_per_level=max_candidates_per_level,
            nms_method=nms_method,
            soft_nms_sigma=soft_nms_sigma,
        )
    return RetinaNetModel(inputs=model.input, outputs=detections, name=name, spec=spec)
