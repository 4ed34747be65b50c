"""Opening a model file for detection: its spec, or one built from the user's settings, and an inference model.

A model file of this package says how to use it (its :class:`DetectorSpec`); the user's settings fill in
what it does not say and may override what legitimately varies (image sides), but never contradict it
(see :func:`keras_retinanet.config.spec.reconcile`). keras-retinanet's own files carry no spec: the
settings (backbone, image sides, anchors, class names) describe them, as they always had to.
"""

import os
from typing import List, Optional, Sequence, Tuple

import keras

from .. import models
from ..checkpoint.files import read_spec
from ..config import RetinaNetConfig
from ..config.spec import DetectorSpec, check_class_count, reconcile
from ..errors import ModelError
from ..models.precision import with_precision
from ..models.retinanet import output_names
from ..models.retinanet_model import spec_of
from .refilter import anchor_layout, filter_layer, filter_settings, is_training_model


def _checked_kind(model: keras.Model, path: str, convert: Optional[bool]) -> bool:
    """Whether the loaded model is a training model, refusing what ``convert`` rules out.

    Args:
        convert: None converts a training model by itself; False refuses one (the commands without
            --convert-model); True requires one.

    Raises:
        ModelError: the model is not the kind asked for, or not a RetinaNet.
    """
    training = is_training_model(model)
    if convert is False and training:
        raise ModelError(f"{path} is a training model; pass --convert-model to use it")
    if convert is True and not training:
        raise ModelError(
            f"{path} is not a RetinaNet training model (outputs: {', '.join(output_names(model))}); "
            "drop --convert-model for an inference model"
        )
    if not training:
        try:
            filter_layer(model)
        except ModelError:
            outputs = ", ".join(output_names(model))
            message = f"{path} is not a RetinaNet model: it has no detection filter (outputs: {outputs})"
            raise ModelError(message) from None
    return training


def _spec_from_settings(model: keras.Model, config: RetinaNetConfig) -> DetectorSpec:
    """The spec of a file that has none (keras-retinanet's), from the settings and the inference model's graph.

    Anchors and filter come from the model itself (they are in its graph); backbone, image sides and head widths
    from the settings; class names are '0', '1', ... for as many classes as the model detects.
    """
    num_classes = int(model.get_layer("classification").output.shape[-1])
    parameters, levels = anchor_layout(model)
    return DetectorSpec(
        backbone=config.model.backbone,
        preprocessing=models.backbone(config.model.backbone).preprocessing_mode,
        class_names=tuple(str(label) for label in range(num_classes)),
        image_min_side=config.data.image_min_side,
        image_max_side=config.data.image_max_side,
        resize=not config.data.no_resize,
        anchors=parameters.get_config(),
        pyramid_levels=tuple(levels),
        pyramid_feature_size=config.model.pyramid_feature_size,
        classification_feature_size=config.model.classification_feature_size,
        regression_feature_size=config.model.regression_feature_size,
        filter=filter_settings(model),
    )


def open_inference_model(
    path: str,
    config: RetinaNetConfig,
    class_names: Optional[Sequence[str]] = None,
    class_source: str = "class_names",
    convert: Optional[bool] = None,
    safe_mode: bool = True,
    precision: str = "float32",
) -> Tuple[keras.Model, DetectorSpec, RetinaNetConfig, List[str], bool]:
    """Load a model file as an inference model, with the spec and the configuration to use it with.

    Args:
        path: a ``.keras`` or ``.h5`` file of this package or of keras-retinanet.
        config: the user's settings; with a spec file only those the user gave count (``config.given``).
        class_names: names in label order, or None. Their number must match the model's; with a spec file
            the spec's names are used (a note says when they differ), without one they name the labels.
        class_source: how to call ``class_names`` in messages (e.g. '--classes classes.csv').
        convert: None converts a training model by itself; False refuses one; True requires one.
        safe_mode: refuse files holding Lambda layers.
        precision: 'float32', 'mixed', 'mixed_float16' or 'mixed_bfloat16'.

    Returns:
        (inference model, its spec, the reconciled configuration, notes about overridden settings, whether
        the spec came from the file (False: built from the settings, for keras-retinanet's files)).

    Raises:
        ModelError, ModelFileError: a contradicting setting, a file that is not a RetinaNet, a bad file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model file '{path}' does not exist")
    file_spec = read_spec(path)
    notes: List[str] = []
    if file_spec is not None:
        config, notes = reconcile(config, file_spec, path)
        if class_names is not None:
            check_class_count(file_spec, class_names, class_source, path)
            if tuple(str(name) for name in class_names) != file_spec.class_names:
                named = ", ".join(file_spec.class_names[:5])
                notes.append(f"naming the classes as {path} does ({named}), not as {class_source}")
    backbone_name = None if file_spec is not None else config.model.backbone
    model = models.load_model(path, backbone_name=backbone_name, compile=False, safe_mode=safe_mode)
    training = _checked_kind(model, path, convert)
    if precision != "float32":
        model = with_precision(model, precision)
    if training:
        # With a spec the anchors come from it (reconcile put them into the configuration).
        model = models.convert_model(model, **config.model.filter_options())
    spec = spec_of(model)
    if spec is None:
        spec = _spec_from_settings(model, config)
        if class_names is not None:
            check_class_count(spec, class_names, class_source, path)
            spec = spec.replace(class_names=tuple(class_names))
    else:
        if spec.filter is None:  # an inference model whose spec predates filter settings
            spec = spec.with_filter(**filter_settings(model))
        # Overridden image sides are how this detector prepares images.
        spec = spec.replace(
            image_min_side=config.data.image_min_side,
            image_max_side=config.data.image_max_side,
            resize=not config.data.no_resize,
        )
    return model, spec, config, notes, file_spec is not None
