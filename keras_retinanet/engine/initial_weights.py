"""How a new training model starts: a whole model's weights (``--weights``: a path, preset, name or URL, for another
class count too) or its backbone's ImageNet weights, fetched through :mod:`keras_retinanet.hub`, or random."""

import os
import sys
from typing import List, Optional, Tuple

from .. import hub
from ..checkpoint.weights import assign_layer_weights, read_layer_weight_names, read_layer_weights, set_layer_weights
from ..config import RetinaNetConfig
from ..config.defaults import BACKBONE_IMAGENET_WEIGHTS, IMAGENET_WEIGHTS_ENV, NO_WEIGHTS
from ..errors import RetinaNetError


def imagenet_weights_source(config: RetinaNetConfig, backbone) -> Tuple[Optional[str], str]:
    """The ImageNet weights a new model's backbone starts from, and where that choice came from.

    keras-retinanet's rule: the backbone's own ImageNet weights unless the run names others,
    a whole-model ``--weights`` file or ``--no-weights``. ``$KERAS_RETINANET_IMAGENET_WEIGHTS``
    replaces the default (not a choice of the user or a preset), also when it is asked for by
    keras-retinanet's bare ``--imagenet-weights`` (:data:`BACKBONE_IMAGENET_WEIGHTS`, which wins over a preset).

    Returns:
        (source, reason): a path, weights name or URL, or None for random weights; and e.g.
        '--no-weights', 'the demo preset', 'the backbone's default'.
    """
    chosen = config.training.imagenet_weights
    if chosen == BACKBONE_IMAGENET_WEIGHTS:
        chosen = os.environ.get(IMAGENET_WEIGHTS_ENV, "").strip()
        if chosen:
            reason = f"{IMAGENET_WEIGHTS_ENV}={chosen}"
        else:
            chosen, reason = backbone.imagenet_weights_name(), "--imagenet-weights: the backbone's default"
    elif config.given("training.imagenet_weights"):
        reason = "--no-weights" if chosen == NO_WEIGHTS else "--imagenet-weights"
    elif chosen is not None:
        reason = f"the {config.preset} preset" if config.preset else "the configuration"
    elif os.environ.get(IMAGENET_WEIGHTS_ENV, "").strip():
        chosen = os.environ[IMAGENET_WEIGHTS_ENV].strip()
        reason = f"{IMAGENET_WEIGHTS_ENV}={chosen}"
    else:
        chosen, reason = backbone.imagenet_weights_name(), "the backbone's default"
    return (None if chosen == NO_WEIGHTS else chosen), reason


def load_initial_weights(model, config: RetinaNetConfig, backbone) -> None:
    """Initialise a new training model as the configuration says, and say from what.

    ``--weights`` (path, preset, name or URL) loads the whole model by layer name, re-initialising the
    classification head's last layer when the file has another class count (:func:`transfer_layer_weights`);
    otherwise the backbone
    gets its ImageNet weights (see :func:`imagenet_weights_source`), fetched through
    :mod:`keras_retinanet.hub` (cached, checksummed). Random weights with keras-resnet's frozen
    BatchNorm cannot learn (its statistics stay random), which gets a one-line warning.
    """
    training, model_config = config.training, config.model
    if training.weights:
        preset = hub.find_preset(training.weights)
        if preset is not None and preset.spec.backbone != model_config.backbone:
            raise RetinaNetError(
                f"--weights {training.weights} holds a {preset.spec.backbone} RetinaNet, not {model_config.backbone}; "
                f"train it with --backbone {preset.spec.backbone}"
            )
        target = preset.weights if preset is not None else training.weights
        fetched = hub.resolve(target, hint="or pass a local file with --weights FILE")
        stored, names = read_layer_weights(fetched.path), read_layer_weight_names(fetched.path)
        loaded, reinitialised = transfer_layer_weights(model, stored, fetched.path, names=names)
        print(f"Loaded weights of {loaded} layers from {fetched.describe()}")
        for note in reinitialised:
            print(note if note.startswith("Left out") else f"Re-initialised {note}")
        return
    source, reason = imagenet_weights_source(config, backbone)
    if source is None:
        print(f"Weights: random ({reason})")
        if backbone.has_frozen_batch_norm and not model_config.trainable_bn:
            print(
                f"WARNING: {model_config.backbone} from random weights with frozen BatchNorm will not learn "
                "(its BatchNorm statistics stay random); add --trainable-bn, or start from ImageNet weights",
                file=sys.stderr,
            )
        return
    fetched = hub.resolve(
        source, hint="or pass the file with --imagenet-weights PATH, or train from random weights with --no-weights"
    )
    loaded = backbone.load_imagenet_weights(model, fetched.path)
    name = f"{fetched.name}, " if fetched.name else ""
    print(f"Loaded ImageNet weights ({name}{reason}) of {loaded} layers from {fetched.describe()}")


def transfer_layer_weights(model, stored, source: str, names=None) -> Tuple[int, List[str]]:
    """Set ``model``'s layers from a whole model's weights by layer name, for another class count too.

    When the stored classification head was trained for another number of classes, its last layer
    ('pyramid_classification') keeps its new initialisation (prior-probability bias, so training starts
    stable) and every other layer, its other subnet layers included, is loaded. Subnets with another head norm
    (``names``, the stored weight names, given) load layer by layer: the convolutions by name, a norm the file lacks
    keeps its initialisation and one the model lacks is left out (:func:`transfer_subnet_layers`). Any other misfit is
    an error.

    Returns:
        (layers loaded, what was re-initialised and why, one line each).

    Raises:
        ModelFileError: stored weights that do not fit (other widths, another backbone's shapes).
    """
    stored = dict(stored)
    submodel_name, last_name = "classification_submodel", "pyramid_classification"
    layer_names = {layer.name for layer in model.layers}
    notes, loaded = [], 0
    for subnet in SUBNETS:
        if subnet in stored and subnet in layer_names and (names or {}).get(subnet):
            submodel = model.get_layer(subnet)
            if len(stored[subnet]) != sum(len(layer.weights) for layer in submodel.layers if layer.weights):
                notes += transfer_subnet_layers(model, submodel, stored.pop(subnet), names[subnet], source)
                loaded += 1
    if submodel_name in stored and submodel_name in layer_names:
        submodel = model.get_layer(submodel_name)
        sublayers = [layer for layer in submodel.layers if layer.weights]
        arrays = stored[submodel_name]
        last = submodel.get_layer(last_name)
        if len(arrays) == sum(len(layer.weights) for layer in sublayers) and sublayers[-1] is last:
            start = len(arrays) - len(last.weights)
            kernel = arrays[start]
            wanted = tuple(last.weights[0].shape)
            if tuple(kernel.shape) != wanted and tuple(kernel.shape[:-1]) == wanted[:-1]:
                num_classes = int(model.get_layer("classification").output.shape[-1])
                anchors = wanted[-1] // num_classes
                begin = 0
                for sublayer in sublayers[:-1]:
                    end = begin + len(sublayer.weights)
                    set_layer_weights(sublayer, arrays[begin:end], source, f"{submodel_name}/{sublayer.name}")
                    begin = end
                del stored[submodel_name]
                loaded += 1
                notes.append(
                    f"{submodel_name}/{last_name} (the classification head's last layer, prior-probability bias): "
                    f"{source} detects {kernel.shape[-1] // anchors} classes, this run trains {num_classes}"
                )
    return loaded + assign_layer_weights(model, stored, source), notes


SUBNETS = ("regression_submodel", "classification_submodel")


def transfer_subnet_layers(model, submodel, arrays, weight_names, source: str) -> List[str]:
    """Load a subnet stored with another head norm, layer by layer (weight names 'layer/kernel', 'layer/gamma', ...).

    The last classification layer of another class count keeps its initialisation, as in
    :func:`transfer_layer_weights`.

    Returns:
        one note per layer that kept its initialisation (its name, why) or was left out ('Left out ...').
    """
    grouped = {}
    for name, array in zip(weight_names, arrays):
        grouped.setdefault(name.split("/", 1)[0], []).append(array)
    notes = []
    num_classes = int(model.get_layer("classification").output.shape[-1])
    for layer in submodel.layers:
        if not layer.weights:
            continue
        label = f"{submodel.name}/{layer.name}"
        values = grouped.pop(layer.name, None)
        if values is None:
            notes.append(f"{label}: not in {source} (its subnets have another head norm)")
            continue
        wanted = tuple(layer.weights[0].shape)
        if layer.name == "pyramid_classification" and tuple(values[0].shape) != wanted and values[0].shape[:-1] == wanted[:-1]:
            anchors = wanted[-1] // num_classes
            notes.append(f"{label} (the classification head's last layer, prior-probability bias): {source} detects "
                         f"{values[0].shape[-1] // anchors} classes, this run trains {num_classes}")  # fmt: skip
            continue
        set_layer_weights(layer, values, source, label)
    for name in grouped:
        notes.append(f"Left out {submodel.name}/{name} of {source}: this model's subnets have another head norm")
    return notes
