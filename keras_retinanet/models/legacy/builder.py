"""Rebuilding a keras-retinanet (Keras 2.x ``.h5``) model in Keras 3 from what :mod:`.reader` read.

The model is built with this package's builders (the :class:`keras_retinanet.models.Backbone`
the caller hands in) and every stored weight is assigned by layer name; a stored weight
that finds no place, or a model weight that finds no value, is an error. The Keras 2
names of ``keras.applications`` trunks (VGG, MobileNet, DenseNet's 'conv1/conv',
EfficientNet) are mapped to Keras 3's by the backbone's ``stored_layer_name``.

Where the file's model pads otherwise than Keras 3's builder (TensorFlow 2.3's MobileNet: a
((0, 1), (0, 1)) ``conv1_pad`` before a 'valid' conv1, where Keras 3 has a 'same' conv1, which pads
(1, 1) on odd sides), the model is rebuilt with the file's ZeroPadding2D layers and conv paddings
(:func:`stored_padding_changes`), so that it gives the file's outputs at every input size.

The builders are this package's own (:mod:`keras_retinanet.models`, whose ``load_model`` calls
:func:`load_legacy_model` for these files); inference files are converted with :func:`..retinanet.retinanet_bbox`.
"""

import warnings
from typing import Dict, NamedTuple, Tuple

import keras
import numpy as np

from ...checkpoint.optimizer import compile_training_model
from ...checkpoint.weights import set_layer_weights
from ...config.defaults import BOX_CODING_MEAN, BOX_CODING_STD
from ...errors import ModelFileError
from ..base import Backbone
from ..retinanet import retinanet_bbox
from .reader import SUBMODEL_NAMES, LegacyModelInfo, backbone_matches, read_legacy_file


def _submodel_assignments(submodel, stored, path):
    """Pair a nested submodel's layers with stored (name, array) weights.

    The stored names are '<sublayer>/kernel:0', '<sublayer>/bias:0', ...; when they do
    not name the submodel's layers (Keras 2 sometimes added suffixes), the weights are
    taken in the submodel's layer order, which is the order Keras 2 stored them in.

    Returns:
        list of (layer, [arrays]).
    """
    layers = [layer for layer in submodel.layers if layer.weights]
    by_layer = {}
    for name, value in stored:
        parts = name.split("/")
        sublayer = parts[-2] if len(parts) > 1 else ""
        by_layer.setdefault(sublayer, []).append(value)
    if set(by_layer) == {layer.name for layer in layers}:
        return [(layer, by_layer[layer.name]) for layer in layers]
    values = [value for _, value in stored]
    expected = sum(len(layer.weights) for layer in layers)
    if len(values) != expected:
        raise ModelFileError(
            path, f"'{submodel.name}' has {len(values)} stored weights, the model's has {expected}"
        )
    pairs, start = [], 0
    for layer in layers:
        pairs.append((layer, values[start : start + len(layer.weights)]))
        start += len(layer.weights)
    return pairs


def model_layer_names_of_stored(model, stored_names, backbone=None):
    """Which model layer each stored (Keras 2) layer name refers to.

    A stored name that is a layer of ``model`` keeps it; any other goes through the
    backbone's ``stored_layer_name`` (Keras 2 ``keras.applications`` names such as
    DenseNet's 'conv1/conv', which Keras 3 calls 'conv1_conv'). Names that are already
    right are never translated, so the heads ('C3_reduced', 'P6', ...) keep theirs.

    Args:
        model: the Keras 3 model.
        stored_names: layer names of the file.
        backbone: the :class:`models.Backbone`, or None.

    Returns:
        dict stored name -> model layer name (possibly not in the model).
    """
    translate = getattr(backbone, "stored_layer_name", None) or (lambda name: name)
    model_names = {layer.name for layer in model.layers}
    return {name: name if name in model_names else translate(name) for name in stored_names}


def assign_legacy_weights(model, info, backbone=None):
    """Set every weight of ``model`` from a keras-retinanet file's stored weights.

    Top-level layers are matched by name (Keras 2 names translated by the backbone, see
    :func:`model_layer_names_of_stored`); the nested subnets sublayer by sublayer. Layers
    whose weights the backbone sets itself (``constant_layer_names``, e.g. EfficientNet's
    input Normalization, which keras-retinanet models did not have) need no stored value.

    Args:
        model: the training model built for ``info``.
        info: :class:`LegacyModelInfo`.
        backbone: the :class:`models.Backbone` the model was built with, or None.

    Raises:
        ModelFileError: a stored layer has no place in the model, a model layer has no
            stored weights, two stored layers map to one model layer, or counts/shapes differ.
    """
    path = info.path
    by_model_name = {}
    for stored_name, model_name in model_layer_names_of_stored(model, info.weights, backbone).items():
        if model_name in by_model_name:
            raise ModelFileError(
                path, f"stored layers '{by_model_name[model_name]}' and '{stored_name}' both hold weights of '{model_name}'"
            )
        by_model_name[model_name] = stored_name
    constant = set(backbone.constant_layer_names(model)) if hasattr(backbone, "constant_layer_names") else set()
    used, missing = set(), []
    for layer in model.layers:
        if not layer.weights or layer.name in constant:
            continue
        if layer.name not in by_model_name:
            missing.append(layer.name)
            continue
        stored = info.weights[by_model_name[layer.name]]
        if hasattr(layer, "layers") and layer.name in SUBMODEL_NAMES:
            for sublayer, values in _submodel_assignments(layer, stored, path):
                set_layer_weights(sublayer, values, path, f"{layer.name}/{sublayer.name}")
        else:
            set_layer_weights(layer, [value for _, value in stored], path, layer.name)
        used.add(by_model_name[layer.name])
    unused = [name for name in info.weights if name not in used]
    if missing or unused:
        parts = []
        if missing:
            parts.append(f"model layers without stored weights: {missing[:8]}{'...' if len(missing) > 8 else ''}")
        if unused:
            parts.append(f"stored layers the model does not have: {unused[:8]}{'...' if len(unused) > 8 else ''}")
        raise ModelFileError(path, f"the file does not fit a {info.describe()}; " + "; ".join(parts))


class PaddingChanges(NamedTuple):
    """How a model built here must change to pad as a file's model did (names are the model's).

    Attributes:
        layer_padding: layer -> its new 'padding' ('same'/'valid' of a conv or pooling layer,
            ((top, bottom), (left, right)) of a ZeroPadding2D).
        pad_before: layer -> (name, ((top, bottom), (left, right))) of a ZeroPadding2D to put before it.
    """

    layer_padding: Dict[str, object]
    pad_before: Dict[str, Tuple[str, tuple]]

    def __bool__(self):
        return bool(self.layer_padding or self.pad_before)


def _input_layer(layer):
    """The layer whose output a single-use layer takes (None for several inputs or none)."""
    nodes = getattr(layer, "_inbound_nodes", [])
    tensors = nodes[0].input_tensors if len(nodes) == 1 else []
    return tensors[0]._keras_history.operation if len(tensors) == 1 else None


def stored_padding_changes(model, info, backbone=None) -> PaddingChanges:
    """Where ``model`` pads otherwise than the model of the file ``info`` describes.

    A stored ZeroPadding2D is matched by the layer it feeds (Keras 2 auto-named some, e.g.
    DenseNet's 'zero_padding2d_1'): if that layer's input here is a ZeroPadding2D, its padding is
    compared, else the stored one is to be put before it. Convolution and pooling layers are
    matched by name and their 'same'/'valid' compared.

    A stored ZeroPadding2D whose configuration names no layer it feeds (a 'model_config' without
    'inbound_nodes') cannot be placed and is left out.

    Raises:
        ModelFileError: a stored ZeroPadding2D feeds several layers, or one the model lacks.
    """
    names = model_layer_names_of_stored(model, info.paddings, backbone)
    model_names = {layer.name for layer in model.layers}
    changes = PaddingChanges({}, {})
    for stored, padding in info.paddings.items():
        if stored not in info.padding_consumers:
            # A conv or pooling layer; one the model lacks is reported when the weights are assigned.
            if names[stored] in model_names and model.get_layer(names[stored]).padding != padding:
                changes.layer_padding[names[stored]] = padding
            continue
        if not info.padding_consumers[stored]:
            continue
        consumers = list(model_layer_names_of_stored(model, info.padding_consumers[stored], backbone).values())
        if len(consumers) != 1 or consumers[0] not in model_names:
            raise ModelFileError(
                info.path, f"ZeroPadding2D '{stored}' feeds {info.padding_consumers[stored]}; "
                f"a {info.backbone_name} RetinaNet has no single layer of that name to pad for",
            )
        previous = _input_layer(model.get_layer(consumers[0]))
        if isinstance(previous, keras.layers.ZeroPadding2D):
            if tuple(tuple(side) for side in previous.padding) != padding:
                changes.layer_padding[previous.name] = padding
        else:
            changes.pad_before[consumers[0]] = (stored, padding)
    return changes


def apply_padding_changes(model, changes: PaddingChanges):
    """``model`` rebuilt from its layers' configurations with ``changes`` (no weights set).

    Every layer is a new one: layers shared with ``model`` would have two call sites, and
    :func:`models.convert_model` reads the outputs of the training model's layers.
    """

    def clone(layer):
        config = layer.get_config()
        if layer.name in changes.layer_padding:
            config["padding"] = changes.layer_padding[layer.name]
        return layer.__class__.from_config(config)

    def call(layer, *args, **kwargs):
        if layer.name in changes.pad_before:
            name, padding = changes.pad_before[layer.name]
            args = (keras.layers.ZeroPadding2D(padding, name=name)(args[0]), *args[1:])
        return layer(*args, **kwargs)

    rebuilt = keras.models.clone_model(model, clone_function=clone, call_function=call)
    if hasattr(model, "spec"):
        rebuilt.spec = model.spec
    return rebuilt


def build_legacy_model(info: LegacyModelInfo, backbone: Backbone) -> Tuple[keras.Model, keras.Model]:
    """Build this package's model for what ``info`` describes (weights not yet set).

    Args:
        info: what the file holds.
        backbone: the :class:`keras_retinanet.models.Backbone` to build on.

    Returns:
        (training_model, model): ``model`` is the inference model for inference files,
        else the training model itself.
    """
    options = info.builder_options()
    if info.legacy_padding:
        if not info.backbone_name.startswith("resnet"):
            raise ModelFileError(info.path, f"'padding_conv1' found in a {info.backbone_name} model; only ResNets have it")
        options["legacy_padding"] = True
    training_model = backbone.retinanet(**options)
    changes = stored_padding_changes(training_model, info, backbone)
    if changes:
        training_model = apply_padding_changes(training_model, changes)
    if not info.is_inference:
        return training_model, training_model
    model = retinanet_bbox(
        model=training_model,
        anchor_params=info.anchor_params,
        pyramid_levels=list(info.pyramid_levels),
        **info.filter_options,
    )
    if info.regression_mean != BOX_CODING_MEAN or info.regression_std != BOX_CODING_STD:
        # retinanet_bbox has no option for the box coding; the layer reads it at call time
        # and saves it in its config, so setting it before the first call is enough.
        boxes = model.get_layer("boxes")
        boxes.mean = np.asarray(info.regression_mean, np.float32)
        boxes.std = np.asarray(info.regression_std, np.float32)
    return training_model, model


def load_legacy_model(path: str, backbone: Backbone, compile: bool = True) -> keras.Model:
    """Load a keras-retinanet (Keras 2) ``.h5`` training or inference model.

    Args:
        path: the ``.h5`` file.
        backbone: the :class:`keras_retinanet.models.Backbone` the caller expects; its
            name must be the backbone in the file.
        compile: compile a training snapshot as :func:`compile_training_model` does, with
            the learning rate and clipnorm of the file's Adam (the optimiser's state is not restored).

    Returns:
        the Keras 3 model, with every weight of the file.

    Raises:
        ModelFileError: unreadable/truncated file, not a RetinaNet, backbone mismatch,
            or weights that do not fit.
    """
    backbone_name = backbone.backbone
    info = read_legacy_file(path)
    if not backbone_matches(info.backbone_name, backbone_name):
        raise ModelFileError(
            path,
            f"the file holds a RetinaNet on {info.backbone_name}, not on {backbone_name}; "
            f"load it with backbone_name='{info.backbone_name}' (--backbone {info.backbone_name})",
        )
    if info.mobilenet_conv1_pad and not info.padding_consumers.get("conv1_pad"):
        # Without the layer's configuration and inputs its padding is unknown (Keras 2.1 padded (1, 1),
        # later ones (0, 1)); the pad has no weights, so the file loads with Keras 3's 'same' conv1.
        warnings.warn(
            f"{path}: MobileNet with a 'conv1_pad' layer but no 'model_config' to read its padding and inputs from; "
            "rebuilt with a 'same' conv1, which gives the same outputs only for even input heights and widths",
            stacklevel=2,
        )
    training_model, model = build_legacy_model(info, backbone)
    assign_legacy_weights(training_model, info, backbone=backbone)
    if compile and not info.is_inference:
        learning_rate, clipnorm = info.optimizer_settings()
        compile_training_model(training_model, learning_rate, clipnorm)
    return model
