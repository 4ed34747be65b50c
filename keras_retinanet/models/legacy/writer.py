"""Writing a RetinaNet as a Keras 2 ``.h5`` file that tf.keras 2.x and keras-retinanet 1.0.0 load.

Keras 3's ``.h5`` files cannot be read by Keras 2 (``Unrecognized keyword arguments: ['batch_shape',
'optional']``): their layer configurations carry Keras 3 keys, dtype policies as objects and initializers
with a module. This writer translates the Keras 3 model configuration into the one tf.keras 2.4 wrote
for keras-retinanet (``class_name: "Functional"``, ``inbound_nodes`` as
``[[layer, node, tensor, {}], ...]``, only the keys Keras 2.4's layers take, keras-retinanet's own layer
classes ``UpsampleLike``, ``Anchors``, ``RegressBoxes``, ``ClipBoxes``, ``FilterDetections``,
``PriorProbability`` and keras-resnet's ``BatchNormalization(freeze=...)``), and stores the weights as
Keras 2 did::

    attrs: keras_version '2.4.0', backend 'tensorflow', model_config, training_config (training models)
    model_weights/                 attrs layer_names, keras_version, backend
      conv1/                       attrs weight_names ['conv1/kernel:0']
        conv1/kernel:0
      regression_submodel/         attrs weight_names ['pyramid_regression_0/kernel:0', ...]
        pyramid_regression_0/kernel:0

Keras 2 loads a file's weights by position (the i-th stored layer with weights into the i-th model
layer with weights), so the layers are stored in the model's order, which Keras 2 rebuilds (by depth,
then in traversal order) as Keras 3 does; within a layer, trainable weights first, as Keras 2 kept them.

Only h5py, numpy and json are used on the file; the model is read through Keras' public API.
"""

import io
import json
from typing import Dict, List, Optional, Tuple

import h5py
import numpy as np

from ...atomic_files import write_bytes_atomically
from ...config.defaults import DEFAULTS
from ...errors import ExportError
from .reader import detect_backbone

KERAS2_VERSION = "2.4.0"
BACKEND = "tensorflow"
# The backbones keras-retinanet 1.0.0 builds, as detect_backbone names them.
KERAS_RETINANET_BACKBONES = ("resnet", "mobilenet_", "vgg", "densenet")

_BASE = ("name", "trainable", "dtype")
_CONV = ("kernel_size", "strides", "padding", "data_format", "dilation_rate", "activation", "use_bias",
         "bias_initializer", "bias_regularizer", "activity_regularizer", "bias_constraint")
_BATCH_NORM = ("axis", "momentum", "epsilon", "center", "scale", "beta_initializer", "gamma_initializer",
               "moving_mean_initializer", "moving_variance_initializer", "beta_regularizer", "gamma_regularizer",
               "beta_constraint", "gamma_constraint")
_POOLING = ("pool_size", "padding", "strides", "data_format")
# The configuration keys each layer class takes in Keras 2.4 (tf.keras 2.3), beyond the _BASE ones.
LAYER_KEYS: Dict[str, Tuple[str, ...]] = {
    "Conv2D": ("filters", "groups", "kernel_initializer", "kernel_regularizer", "kernel_constraint") + _CONV,
    "DepthwiseConv2D": ("depth_multiplier", "depthwise_initializer", "depthwise_regularizer",
                        "depthwise_constraint") + _CONV,
    "BatchNormalization": _BATCH_NORM,
    "ReLU": ("max_value", "negative_slope", "threshold"),
    "Activation": ("activation",),
    "ZeroPadding2D": ("padding", "data_format"),
    "MaxPooling2D": _POOLING,
    "AveragePooling2D": _POOLING,
    "GlobalAveragePooling2D": ("data_format",),
    "Add": (),
    "Concatenate": ("axis",),
    "Reshape": ("target_shape",),
    "Dense": ("units", "activation", "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer",
              "bias_regularizer", "activity_regularizer", "kernel_constraint", "bias_constraint"),
    # keras-retinanet 1.0.0's layers.
    "UpsampleLike": (),
    "Anchors": ("size", "stride", "ratios", "scales"),
    "RegressBoxes": ("mean", "std"),
    "ClipBoxes": (),
    "FilterDetections": ("nms", "class_specific_filter", "nms_threshold", "score_threshold", "max_detections",
                         "parallel_iterations"),
}
INITIALIZER_KEYS: Dict[str, Tuple[str, ...]] = {
    "Zeros": (),
    "Ones": (),
    "Constant": ("value",),
    "RandomNormal": ("mean", "stddev", "seed"),
    "RandomUniform": ("minval", "maxval", "seed"),
    "TruncatedNormal": ("mean", "stddev", "seed"),
    "VarianceScaling": ("scale", "mode", "distribution", "seed"),
    "PriorProbability": ("probability",),  # keras-retinanet's
    **{name: ("seed",) for name in ("GlorotUniform", "GlorotNormal", "HeNormal", "HeUniform", "LecunNormal",
                                    "LecunUniform")},
}
# Keras 3 weight names Keras 2 called otherwise, per layer class.
WEIGHT_NAMES = {"DepthwiseConv2D": {"kernel": "depthwise_kernel"}}
# Tensor keyword arguments of our layers that keras-retinanet's layers do not take (and need not:
# FilterDetections' per-level anchors only speed up the candidate selection).
DROPPED_TENSOR_KWARGS = {"FilterDetections": ("level_anchors",)}


def _initializer(value, where):
    """A Keras 3 initializer configuration as Keras 2's {'class_name', 'config'}."""
    if value is None or isinstance(value, str):
        return value
    class_name = value.get("class_name")
    if class_name not in INITIALIZER_KEYS:
        raise ExportError(f"{where}: initializer {class_name} has no Keras 2 equivalent this writer knows")
    config = value.get("config", {})
    return {"class_name": class_name, "config": {key: config[key] for key in INITIALIZER_KEYS[class_name] if key in config}}


def _dtype(value):
    """A Keras 3 dtype policy as Keras 2's dtype string ('float32', 'mixed_float16')."""
    if isinstance(value, dict):
        return value.get("config", {}).get("name", "float32")
    return value or "float32"


def _keras2_value(key, value, where):
    if key.endswith("_initializer"):
        return _initializer(value, where)
    if key.endswith(("_regularizer", "_constraint")) and value is not None:
        raise ExportError(f"{where}: {key} is set; the Keras 2 writer keeps none")
    if key == "dtype":
        return _dtype(value)
    return value


def _tensor_reference(tensor, nested):
    """A Keras 3 '__keras_tensor__' as Keras 2's [layer, node, tensor, {}].

    Keras 2 counted a nested model's own construction as its node 0, so its calls start at 1.
    """
    layer, node, index = tensor["config"]["keras_history"]
    return [layer, node + (1 if layer in nested else 0), index, {}]


def _is_tensor(value):
    return isinstance(value, dict) and value.get("class_name") == "__keras_tensor__"


def _inbound_nodes(layer, nested, where):
    """Keras 3 inbound nodes ({'args': [...], 'kwargs': {...}}) as Keras 2's lists of tensor references."""
    nodes = []
    for node in layer.get("inbound_nodes", []):
        args = node.get("args", [])
        # Keras 3 records defaults such as 'mask': None, which Keras 2's layers do not all take.
        dropped = DROPPED_TENSOR_KWARGS.get(layer["class_name"], ())
        kwargs = {key: value for key, value in node.get("kwargs", {}).items() if value is not None and key not in dropped}
        if len(args) != 1 or kwargs:
            raise ExportError(f"{where}: a call with {len(args)} positional inputs and keywords {sorted(kwargs)} "
                              "has no Keras 2 form")
        inputs = args[0] if isinstance(args[0], list) else [args[0]]
        if not all(_is_tensor(tensor) for tensor in inputs):
            raise ExportError(f"{where}: a call on non-tensor inputs has no Keras 2 form")
        nodes.append([_tensor_reference(tensor, nested) for tensor in inputs])
    return nodes


def _endpoints(value):
    """Keras 3 input/output layer lists ([name, node, tensor] alone when single) as Keras 2's list of them."""
    return [list(value)] if value and isinstance(value[0], str) else [list(entry) for entry in value]


def keras2_layer_config(layer, nested=(), where="model"):
    """One layer entry of a Keras 3 model configuration as Keras 2.4 wrote it.

    Args:
        layer: the entry ({'class_name', 'config', 'name', 'inbound_nodes', ...}).
        nested: names of the nested models of the enclosing model (their node indices shift by one).
        where: for messages, the enclosing model's name.

    Raises:
        ExportError: a layer class, initializer, regularizer or call Keras 2 cannot take.
    """
    class_name, config, name = layer["class_name"], layer["config"], layer["name"]
    where = f"{where}/{name}"
    if class_name in ("Functional", "RetinaNetModel"):
        converted = {"class_name": "Functional", "config": keras2_model_config(config, where)}
    elif class_name == "InputLayer":
        shape = config.get("batch_shape", config.get("batch_input_shape"))
        converted = {
            "class_name": "InputLayer",
            "config": {"batch_input_shape": list(shape), "dtype": _dtype(config.get("dtype")), "sparse": bool(config.get("sparse", False)),
                       "ragged": bool(config.get("ragged", False)), "name": name},
        }
    elif class_name in LAYER_KEYS:
        keys = _BASE + LAYER_KEYS[class_name] + (("freeze",) if class_name == "BatchNormalization" else ())
        converted = {
            "class_name": class_name,
            "config": {key: _keras2_value(key, config[key], where) for key in keys if key in config},
        }
    else:
        raise ExportError(f"{where}: layer class {class_name} has no Keras 2 equivalent this writer knows")
    converted["name"] = name
    converted["inbound_nodes"] = _inbound_nodes(layer, nested, where)
    return converted


def keras2_model_config(config, where="model"):
    """A Keras 3 functional model configuration (``model.get_config()``) as Keras 2.4's 'Functional' config."""
    nested = {layer["name"] for layer in config["layers"] if layer["class_name"] in ("Functional", "RetinaNetModel")}
    return {
        "name": config["name"],
        "layers": [keras2_layer_config(layer, nested, where) for layer in config["layers"]],
        "input_layers": _endpoints(config["input_layers"]),
        "output_layers": _endpoints(config["output_layers"]),
    }


def _legacy_weights(layer) -> List[Tuple[str, np.ndarray]]:
    """(Keras 2 weight name, array) of a layer, trainable first, as Keras 2 ordered and named them."""
    owners = [layer] if not hasattr(layer, "layers") else [sub for sub in layer.layers if sub.weights]
    if any(hasattr(owner, "layers") for owner in owners if owner is not layer):
        raise ExportError(f"'{layer.name}': models nested two deep have no Keras 2 form this writer knows")
    names = {}
    for owner in owners:
        renames = WEIGHT_NAMES.get(type(owner).__name__, {})
        for variable in owner.weights:
            short = variable.name.split("/")[-1]
            names[id(variable)] = f"{owner.name}/{renames.get(short, short)}:0"
    ordered = list(layer.trainable_weights) + list(layer.non_trainable_weights)
    return [(names[id(variable)], np.asarray(variable.numpy(), dtype=np.float32)) for variable in ordered]


def check_keras_retinanet_backbone(model) -> str:
    """The backbone of ``model``, if keras-retinanet 1.0.0 has it; else ExportError."""
    names = [layer.name for layer in model.layers]
    # detect_backbone reads MobileNet's width from conv1's kernel shape.
    weights = {"conv1": [("kernel", np.empty(tuple(model.get_layer("conv1").kernel.shape)))]} if "conv1" in names else None
    backbone = detect_backbone(names, weights)
    if backbone is None or not backbone.lower().startswith(KERAS_RETINANET_BACKBONES):
        raise ExportError(
            f"h5-keras2 writes the backbones keras-retinanet 1.0.0 has (ResNet, MobileNet, VGG, DenseNet); "
            f"model '{model.name}' is built on {backbone or 'another backbone'}"
        )
    return backbone


def training_config(model) -> Optional[dict]:
    """keras-retinanet's train.py compile settings for a training model (None for an inference model)."""
    if "regression" not in [tensor._keras_history.operation.name for tensor in model.outputs]:
        return None
    learning_rate, clipnorm = DEFAULTS["training"]["lr"], DEFAULTS["training"]["optimizer_clipnorm"]
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        learning_rate = float(np.asarray(optimizer.learning_rate))
        clipnorm = getattr(optimizer, "clipnorm", clipnorm)
    adam = {"name": "Adam", "learning_rate": learning_rate, "decay": 0.0, "beta_1": 0.9, "beta_2": 0.999,
            "epsilon": 1e-07, "amsgrad": False}
    if clipnorm is not None:
        adam["clipnorm"] = float(clipnorm)
    return {
        "loss": {"regression": "_smooth_l1", "classification": "_focal"},
        "metrics": None, "weighted_metrics": None, "loss_weights": None,
        "optimizer_config": {"class_name": "Adam", "config": adam},
    }


def keras2_h5_bytes(model) -> bytes:
    """The Keras 2 ``.h5`` file of a RetinaNet training or inference model, as bytes (see the module doc)."""
    check_keras_retinanet_backbone(model)
    config = model.get_config()
    model_config = {"class_name": "Functional", "config": keras2_model_config(config, model.name)}
    layer_names = [layer["name"] for layer in config["layers"]]
    if layer_names != [layer.name for layer in model.layers]:
        raise ExportError(f"model '{model.name}': its configuration lists its layers in another order than Keras does")
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as handle:
        handle.attrs["keras_version"] = KERAS2_VERSION.encode("utf8")
        handle.attrs["backend"] = BACKEND.encode("utf8")
        handle.attrs["model_config"] = json.dumps(model_config).encode("utf8")
        compile_settings = training_config(model)
        if compile_settings is not None:
            handle.attrs["training_config"] = json.dumps(compile_settings).encode("utf8")
        group = handle.create_group("model_weights")
        group.attrs["layer_names"] = np.array([name.encode("utf8") for name in layer_names])
        group.attrs["backend"] = BACKEND.encode("utf8")
        group.attrs["keras_version"] = KERAS2_VERSION.encode("utf8")
        for layer in model.layers:
            layer_group = group.create_group(layer.name)
            weights = _legacy_weights(layer)
            layer_group.attrs["weight_names"] = np.array([name.encode("utf8") for name, _ in weights]) if weights else np.array([])
            for name, value in weights:
                layer_group.create_dataset(name, data=value)
    return buffer.getvalue()


def save_keras2_h5(model, path: str) -> str:
    """Write ``model`` (training or inference RetinaNet) as a Keras 2 ``.h5`` file, atomically; returns ``path``.

    Raises:
        ExportError: a backbone keras-retinanet 1.0.0 does not have, or a layer Keras 2 cannot read.
    """
    return write_bytes_atomically(keras2_h5_bytes(model), path)
