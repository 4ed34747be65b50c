"""Reading an inference model's filter and anchors back, and rebuilding its filter with another score threshold.

An inference model drops every detection scoring at or below the threshold it was converted with; asking it for
less confident detections must not silently give nothing, so the filter is built anew on the training part of
the same graph (the layers 'regression' and 'classification', the same weights), as ``models.convert_model``
builds it.
"""

from typing import Any, Dict, List, Tuple

import keras

from ..anchors.generation import AnchorParameters
from ..config import RetinaNetConfig
from ..config.spec import FILTER_KEYS
from ..errors import ModelError
from ..layers import Anchors, FilterDetections
from ..models.retinanet import output_names, retinanet_bbox
from ..models.model_with_spec import RetinaNetModel, spec_of

# FilterDetections settings beyond the spec's, kept as they are when the filter is rebuilt.
_EXTRA_FILTER_KEYS = ("parallel_iterations", "max_candidates")
# The filter settings a user may change on a model file that is already an inference model: how many
# detections, the candidate cap and the kind of NMS (the thresholds stay those the model was converted with).
OVERRIDABLE_FILTER_KEYS = ("max_detections", "max_candidates_per_level", "nms_method", "soft_nms_sigma")


def filter_layer(model: keras.Model) -> FilterDetections:
    """The FilterDetections layer of an inference model.

    Raises:
        ModelError: the model has none (a training model, or not a RetinaNet).
    """
    for layer in model.layers:
        if isinstance(layer, FilterDetections):
            return layer
    raise ModelError(
        f"model '{model.name}' is not a RetinaNet inference model: it has no detection filter "
        f"(outputs: {', '.join(output_names(model))})"
    )


def filter_settings(model: keras.Model) -> Dict[str, Any]:
    """The filter settings of an inference model, as a spec stores them ({nms, ..., max_detections})."""
    layer = filter_layer(model)
    return {key: getattr(layer, key) for key in FILTER_KEYS}


def anchor_layout(model: keras.Model) -> Tuple[AnchorParameters, List[int]]:
    """The anchors an inference model generates and the pyramid levels they sit on, read from its Anchors layers.

    Read from the graph rather than from a spec, so that keras-retinanet's files (no spec) keep their own anchors.

    Raises:
        ModelError: the model has no Anchors layers.
    """
    anchor_layers = [layer for layer in model.layers if isinstance(layer, Anchors)]
    if not anchor_layers:
        raise ModelError(f"model '{model.name}' has no anchor layers; is it a RetinaNet inference model?")
    # Each Anchors layer reads one pyramid level 'P<level>': the level is in the name of the layer feeding it.
    levels = [int(layer.input._keras_history.operation.name.lstrip("P")) for layer in anchor_layers]
    order = sorted(range(len(levels)), key=levels.__getitem__)
    first = anchor_layers[0]
    parameters = AnchorParameters(
        sizes=[anchor_layers[i].size for i in order],
        strides=[anchor_layers[i].stride for i in order],
        ratios=[float(r) for r in first.ratios],
        scales=[float(s) for s in first.scales],
    )
    return parameters, [levels[i] for i in order]


def training_part(model: keras.Model) -> RetinaNetModel:
    """The training model inside an inference model: same input, same layers, outputs regression and classification."""
    try:
        outputs = [model.get_layer("regression").output, model.get_layer("classification").output]
    except ValueError:
        raise ModelError(
            f"model '{model.name}' has no 'regression' and 'classification' layers; its filter cannot be rebuilt"
        ) from None
    spec = spec_of(model)
    return RetinaNetModel(
        inputs=model.input,
        outputs=outputs,
        name=f"{model.name}-training",
        spec=spec.replace(filter=None) if spec is not None else None,
    )


def refiltered(model: keras.Model, **changes: Any) -> RetinaNetModel:
    """The inference model with its filter rebuilt with ``changes``; every other setting kept.

    Args:
        model: an inference model (converted, or loaded from a file).
        changes: FilterDetections settings to change, e.g. ``score_threshold=0.01`` (keep scores strictly above
            it), ``max_detections=3000`` or ``max_candidates_per_level=1000``.

    Returns:
        a new inference model sharing ``model``'s layers and weights.
    """
    layer = filter_layer(model)
    unknown = sorted(set(changes) - set(FILTER_KEYS + _EXTRA_FILTER_KEYS))
    if unknown:
        raise ValueError(f"unknown filter settings: {', '.join(unknown)}")
    options = {key: getattr(layer, key) for key in FILTER_KEYS + _EXTRA_FILTER_KEYS}
    options.update(changes)
    parameters, levels = anchor_layout(model)
    return retinanet_bbox(
        training_part(model), anchor_params=parameters, pyramid_levels=levels, name=model.name, **options
    )


def filter_overrides(model: keras.Model, config: RetinaNetConfig) -> Dict[str, Any]:
    """The filter settings the user gave (``config.given``) that differ from an inference model's own."""
    settings = filter_settings(model)
    return {
        key: getattr(config.model, key)
        for key in OVERRIDABLE_FILTER_KEYS
        if config.given(f"model.{key}") and getattr(config.model, key) != settings[key]
    }
