"""Reading what a file of fizyr's keras-retinanet (a Keras 2.x ``.h5`` file) holds, without building a model.

keras-retinanet wrote training snapshots and converted inference models with Keras
2.1-2.4. Keras 3 cannot read their configurations (custom layers from keras-resnet
and keras-retinanet, ``Model``/``Functional`` class names), but their weights are
plain HDF5: ``model_weights/<layer>/<weight name>``, with the two subnets stored as
nested groups (``regression_submodel/pyramid_regression_0/kernel:0``).

Everything the file was built with is read from the file itself:

* number of classes and anchors, and the widths of the pyramid and of the subnets,
  from the shapes of the head kernels;
* the pyramid levels from the ``P*`` layers present;
* the backbone from its layer names (``res4f`` -> resnet50, ``res4b22`` -> resnet101, ...);
* keras-resnet 0.1.0's conv1 (``padding_conv1`` ZeroPadding(3), then a 'valid' conv);
* the padding of every ZeroPadding2D, convolution and pooling layer, and the layer each
  ZeroPadding2D feeds (TensorFlow 2.3's MobileNet pads conv1 with a ((0, 1), (0, 1))
  ``conv1_pad`` before a 'valid' conv, where Keras 3's conv1 is 'same');
* for inference models, the NMS options of ``filtered_detections``, the anchor
  parameters of ``anchors_0..N`` and the box coding of ``boxes``;
* for training snapshots, the Adam learning rate and clipnorm of the training config.

:mod:`.builder` rebuilds the model from what is read here; :mod:`.writer` writes the format.
"""

import json
import re
from typing import Optional, Tuple

import numpy as np

from ...anchors import AnchorParameters
from ...checkpoint.storage import decode_text, decode_texts, open_hdf5, weights_group
from ...config.defaults import BOX_CODING_MEAN, BOX_CODING_STD, DEFAULTS
from ...errors import ModelFileError

# Layer names that only a keras-retinanet model has.
SUBMODEL_NAMES = ("regression_submodel", "classification_submodel")
# Layer classes whose 'padding' setting decides their output size.
PADDED_CLASS_NAMES = (
    "ZeroPadding2D", "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "MaxPooling2D", "AveragePooling2D",
)


class LegacyModelInfo:
    """What a keras-retinanet file holds, read from its weights and configuration.

    Attributes:
        path: the file.
        keras_version: the Keras version that wrote it ('2.4.0', ...; '' if not stored).
        layer_names: every layer of the saved model, in order.
        weights: dict layer name -> list of (stored weight name, array).
        backbone_name: the backbone found ('resnet50', 'vgg16', 'mobilenet_0.5', ...), or None.
        legacy_padding: conv1 is keras-resnet 0.1.0's ZeroPadding(3) + 'valid' conv.
        mobilenet_conv1_pad: a MobileNet of Keras 2.2-2.4 (keras_applications, TensorFlow 2.3),
            whose conv1 is a (0, 1) ZeroPadding 'conv1_pad' + 'valid' conv, not 'same'.
        paddings: dict layer name -> padding of the ZeroPadding2D, convolution and pooling layers
            of 'model_config' (((top, bottom), (left, right)) ints, or 'same' / 'valid').
        padding_consumers: dict ZeroPadding2D name -> names of the layers it feeds.
        num_classes, num_anchors: from the head kernels.
        pyramid_levels: e.g. [3, 4, 5, 6, 7].
        pyramid_feature_size, classification_feature_size, regression_feature_size: widths.
        is_inference: the file is a converted inference model.
        filter_options: dict of FilterDetections options (inference models), else None.
        anchor_params: AnchorParameters of the inference model, else None.
        regression_mean, regression_std: box coding of the inference model.
        training_config: the Keras 2 training config (dict) of a compiled snapshot, or None.
    """

    def __init__(self, path):
        self.path = str(path)
        self.keras_version = ""
        self.layer_names = []
        self.weights = {}
        self.layer_configs = {}
        self.backbone_name = None
        self.legacy_padding = False
        self.mobilenet_conv1_pad = False
        self.paddings = {}
        self.padding_consumers = {}
        self.num_classes = None
        self.num_anchors = None
        self.pyramid_levels = []
        self.pyramid_feature_size = None
        self.classification_feature_size = None
        self.regression_feature_size = None
        self.is_inference = False
        self.filter_options = None
        self.anchor_params = None
        self.regression_mean = BOX_CODING_MEAN
        self.regression_std = BOX_CODING_STD
        self.training_config = None

    def builder_options(self):
        """Keyword arguments for ``Backbone.retinanet`` that rebuild this file's model."""
        return {
            "num_classes": self.num_classes,
            "num_anchors": self.num_anchors,
            "pyramid_levels": list(self.pyramid_levels),
            "pyramid_feature_size": self.pyramid_feature_size,
            "classification_feature_size": self.classification_feature_size,
            "regression_feature_size": self.regression_feature_size,
        }

    def optimizer_settings(self) -> Tuple[float, Optional[float]]:
        """(learning rate, clipnorm) of the Adam a training snapshot was compiled with.

        keras-retinanet's train.py compiled with ``Adam(lr=--lr, clipnorm=0.001)``; a file
        whose training config names no Adam gets those defaults (lr 1e-5).
        """
        learning_rate, clipnorm = DEFAULTS["training"]["lr"], DEFAULTS["training"]["optimizer_clipnorm"]
        optimizer = (self.training_config or {}).get("optimizer_config", {})
        if optimizer.get("class_name", "").lower() == "adam":
            config = optimizer.get("config", {})
            learning_rate = float(config.get("learning_rate", config.get("lr", learning_rate)))
            clipnorm = config.get("clipnorm", clipnorm)
        return learning_rate, clipnorm

    def describe(self):
        """One line for logs: what the file is."""
        kind = "inference" if self.is_inference else "training"
        padding = ", keras-resnet 0.1.0 conv1 padding" if self.legacy_padding else ""
        return (
            f"keras-retinanet {kind} model (Keras {self.keras_version or '2.x'}), backbone {self.backbone_name}"
            f"{padding}, {self.num_classes} classes, {self.num_anchors} anchors, levels {self.pyramid_levels}"
        )


def _read_weights(path, handle):
    """dict layer name -> [(weight name, array)], and the list of every layer name."""
    group = weights_group(handle)
    if "layer_names" not in group.attrs:
        raise ModelFileError(path, "HDF5 file without Keras weights (no 'layer_names' attribute); not a Keras model")
    layer_names = decode_texts(group.attrs["layer_names"])
    weights = {}
    for layer_name in layer_names:
        try:
            layer_group = group[layer_name]
            names = decode_texts(layer_group.attrs.get("weight_names", []))
            values = [(name, np.asarray(layer_group[name])) for name in names]
        except (KeyError, OSError, RuntimeError) as error:
            raise ModelFileError(
                path, f"weights of layer '{layer_name}' cannot be read ({error}); the file is truncated or corrupt"
            ) from None
        if values:
            weights[layer_name] = values
    return layer_names, weights


def _read_layer_configs(path, handle):
    """dict layer name -> {'class_name', 'config'} of the top-level layers, from 'model_config'."""
    if "model_config" not in handle.attrs:
        return {}
    try:
        config = json.loads(decode_text(handle.attrs["model_config"]))
        layers = config["config"]["layers"]
        return {layer["config"]["name"]: layer for layer in layers}
    except (ValueError, KeyError, TypeError) as error:
        raise ModelFileError(path, f"'model_config' of the file is not a Keras model configuration ({error})") from None


def _zero_padding(value):
    """A Keras ZeroPadding2D 'padding' setting (int, (rows, cols) or pairs) as ((top, bottom), (left, right))."""
    if isinstance(value, int):
        return ((value, value), (value, value))
    rows, cols = value
    rows = (rows, rows) if isinstance(rows, int) else tuple(rows)
    cols = (cols, cols) if isinstance(cols, int) else tuple(cols)
    return (tuple(int(v) for v in rows), tuple(int(v) for v in cols))


def inbound_layer_names(layer_config):
    """Names of the layers a Keras 2 layer configuration takes its inputs from (every call of it)."""
    names = []
    for node in layer_config.get("inbound_nodes", []):
        for entry in node if isinstance(node, list) else []:
            if isinstance(entry, list) and entry and isinstance(entry[0], str) and entry[0] not in names:
                names.append(entry[0])
    return names


def _read_paddings(info):
    """The padding of each padded layer of 'model_config', and the layers each ZeroPadding2D feeds."""
    consumers = {}
    for name, layer in info.layer_configs.items():
        for inbound in inbound_layer_names(layer):
            consumers.setdefault(inbound, []).append(name)
        class_name = layer.get("class_name")
        if class_name not in PADDED_CLASS_NAMES or "padding" not in layer.get("config", {}):
            continue
        padding = layer["config"]["padding"]
        try:
            info.paddings[name] = _zero_padding(padding) if class_name == "ZeroPadding2D" else str(padding).lower()
        except (TypeError, ValueError):
            raise ModelFileError(info.path, f"layer '{name}' has a padding Keras does not write: {padding!r}") from None
        if class_name == "ZeroPadding2D":
            info.padding_consumers[name] = consumers.setdefault(name, [])


def _read_training_config(handle):
    if "training_config" not in handle.attrs:
        return None
    try:
        return json.loads(decode_text(handle.attrs["training_config"]))
    except ValueError:
        return None


def _kernel(info, layer_name, sublayer=None):
    """The kernel array of a stored layer (or of a layer inside a stored submodel), or None."""
    values = info.weights.get(layer_name, [])
    for name, value in values:
        parts = name.split("/")
        if parts[-1].startswith("kernel") and (sublayer is None or (len(parts) > 1 and parts[-2] == sublayer)):
            return value
    return None


def detect_backbone(layer_names, weights=None):
    """The backbone a keras-retinanet model was built on, from its layer names.

    Args:
        layer_names: every layer name of the file.
        weights: dict layer name -> [(name, array)], to tell MobileNet widths apart.

    Returns:
        'resnet50' | 'resnet101' | 'resnet152' | 'vgg16' | 'vgg19' | 'densenet121' |
        'densenet169' | 'densenet201' | 'mobilenet_{alpha}' | 'EfficientNetB0..7', or None.
    """
    names = set(layer_names)
    if "res2a_branch2a" in names:
        if "res4b35_branch2a" in names:
            return "resnet152"
        if "res4b22_branch2a" in names:
            return "resnet101"
        if "res4f_branch2a" in names:
            return "resnet50"
        return None
    if "block5_conv3" in names:
        return "vgg19" if "block5_conv4" in names else "vgg16"
    if "conv5_block1_concat" in names:
        if "conv4_block48_concat" in names:
            return "densenet201"
        if "conv4_block32_concat" in names:
            return "densenet169"
        if "conv4_block24_concat" in names:
            return "densenet121"
        return None
    if "conv_pw_13" in names or "conv_pw_13_relu" in names:
        alpha = None
        if weights is not None and "conv1" in weights:
            alpha = weights["conv1"][0][1].shape[-1] / 32.0
        return "mobilenet" if alpha is None else f"mobilenet_{alpha:g}"
    if "stem_conv" in names and "top_conv" in names:
        top_widths = {1408: 2, 1536: 3, 1792: 4, 2048: 5, 2304: 6, 2560: 7}
        top = weights["top_conv"][0][1].shape[-1] if weights and "top_conv" in weights else None
        if top == 1280:
            return "EfficientNetB1" if "block1b_dwconv" in names else "EfficientNetB0"
        if top in top_widths:
            return f"EfficientNetB{top_widths[top]}"
        return "EfficientNet"
    return None


def backbone_matches(found, requested):
    """True if the backbone found in a file is the one ``requested`` names.

    MobileNet names carry an input size that weights cannot show
    ('mobilenet224_1.0'): only the width multiplier is compared.
    """
    if found is None:
        return False
    found_l, requested_l = found.lower(), requested.lower()
    if found_l.startswith("mobilenet"):
        if not requested_l.startswith("mobilenet"):
            return False
        if found_l == "mobilenet":
            return True
        requested_alpha = requested_l.split("_")[-1] if "_" in requested_l else "1.0"
        try:
            return abs(float(requested_alpha) - float(found_l.split("_")[-1])) < 1e-6
        except ValueError:
            return False
    if found_l == "efficientnet":
        return requested_l.startswith("efficientnet")
    return requested_l.split("_")[0] == found_l


def _read_head_shapes(info):
    """Classes, anchors and widths from the head kernels (3, 3, F, A*C) and (3, 3, F, A*4)."""
    path = info.path
    for submodel in SUBMODEL_NAMES:
        if submodel not in info.weights:
            found = [n for n in info.layer_names if info.weights.get(n)][:8]
            raise ModelFileError(
                path,
                f"not a RetinaNet: no '{submodel}' weights (layers with weights found: {found}"
                f"{'...' if len(info.weights) > 8 else ''})",
            )
    regression = _kernel(info, "regression_submodel", "pyramid_regression")
    classification = _kernel(info, "classification_submodel", "pyramid_classification")
    regression_0 = _kernel(info, "regression_submodel", "pyramid_regression_0")
    classification_0 = _kernel(info, "classification_submodel", "pyramid_classification_0")
    if any(k is None for k in (regression, classification, regression_0, classification_0)):
        raise ModelFileError(
            path,
            "not a standard RetinaNet: the subnets lack 'pyramid_regression(_0)' / 'pyramid_classification(_0)' kernels",
        )
    if regression.shape[-1] % 4:
        raise ModelFileError(path, f"'pyramid_regression' kernel {regression.shape} does not output 4 values per anchor")
    info.num_anchors = regression.shape[-1] // 4
    if classification.shape[-1] % info.num_anchors:
        raise ModelFileError(
            path,
            f"'pyramid_classification' kernel {classification.shape} does not fit {info.num_anchors} anchors",
        )
    info.num_classes = classification.shape[-1] // info.num_anchors
    info.pyramid_feature_size = int(regression_0.shape[2])
    info.regression_feature_size = int(regression_0.shape[-1])
    info.classification_feature_size = int(classification_0.shape[-1])


def _read_inference_options(info):
    """NMS options, anchor parameters and box coding of an inference model's configuration."""
    configs = info.layer_configs
    filtered = configs["filtered_detections"].get("config", {})
    info.filter_options = {
        "nms": bool(filtered.get("nms", True)),
        "class_specific_filter": bool(filtered.get("class_specific_filter", True)),
        "nms_threshold": float(filtered.get("nms_threshold", 0.5)),
        "score_threshold": float(filtered.get("score_threshold", 0.05)),
        "max_detections": int(filtered.get("max_detections", 300)),
        "parallel_iterations": int(filtered.get("parallel_iterations", 32)),
    }
    anchor_layers = sorted(
        (name for name in configs if re.fullmatch(r"anchors_\d+", name)), key=lambda name: int(name.split("_")[1])
    )
    if anchor_layers:
        sizes, strides, ratios, scales = [], [], None, None
        default = AnchorParameters.default
        for name in anchor_layers:
            config = configs[name].get("config", {})
            if "size" not in config or "stride" not in config:
                raise ModelFileError(info.path, f"layer '{name}' has no anchor size/stride in its configuration")
            sizes.append(config["size"])
            strides.append(config["stride"])
            layer_ratios = np.asarray(config.get("ratios", default.ratios), np.float32)
            layer_scales = np.asarray(config.get("scales", default.scales), np.float32)
            if ratios is not None and (not np.array_equal(ratios, layer_ratios) or not np.array_equal(scales, layer_scales)):
                raise ModelFileError(info.path, f"layer '{name}' uses other anchor ratios/scales than 'anchors_0'")
            ratios, scales = layer_ratios, layer_scales
        info.anchor_params = AnchorParameters(sizes, strides, ratios, scales)
        if info.anchor_params.num_anchors() != info.num_anchors:
            raise ModelFileError(
                info.path,
                f"the anchor layers make {info.anchor_params.num_anchors()} anchors per position, "
                f"the head kernels {info.num_anchors}",
            )
        if len(sizes) != len(info.pyramid_levels):
            raise ModelFileError(
                info.path, f"{len(sizes)} anchor layers for {len(info.pyramid_levels)} pyramid levels {info.pyramid_levels}"
            )
    boxes = configs.get("boxes", {}).get("config", {})
    info.regression_mean = tuple(float(v) for v in (boxes.get("mean") or BOX_CODING_MEAN))
    info.regression_std = tuple(float(v) for v in (boxes.get("std") or BOX_CODING_STD))


def read_legacy_file(path):
    """Read what a keras-retinanet ``.h5`` file holds, without building a model.

    Args:
        path: the ``.h5`` file.

    Returns:
        :class:`LegacyModelInfo`.

    Raises:
        ModelFileError: the file is unreadable, truncated, or not a keras-retinanet RetinaNet.
    """
    info = LegacyModelInfo(path)
    with open_hdf5(path) as handle:
        info.keras_version = decode_text(handle.attrs.get("keras_version", ""))
        info.layer_configs = _read_layer_configs(path, handle)
        info.layer_names, info.weights = _read_weights(path, handle)
        info.training_config = _read_training_config(handle)

    _read_head_shapes(info)
    info.pyramid_levels = sorted(int(name[1:]) for name in info.layer_names if re.fullmatch(r"P\d", name))
    if not info.pyramid_levels:
        raise ModelFileError(path, "not a RetinaNet: no pyramid layers 'P3'..'P7' found")
    info.backbone_name = detect_backbone(info.layer_names, info.weights)
    if info.backbone_name is None:
        raise ModelFileError(
            path, f"cannot tell which backbone the RetinaNet uses (first layers: {info.layer_names[:6]})"
        )
    info.legacy_padding = "padding_conv1" in info.layer_names
    info.mobilenet_conv1_pad = info.backbone_name.startswith("mobilenet") and "conv1_pad" in info.layer_names
    _read_paddings(info)
    info.is_inference = "filtered_detections" in info.layer_names or "filtered_detections" in info.layer_configs
    if info.is_inference:
        if "filtered_detections" not in info.layer_configs:
            raise ModelFileError(path, "inference model without a 'model_config'; its NMS options cannot be read")
        _read_inference_options(info)
    return info
