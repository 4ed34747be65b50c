"""Opening a model file for detection: its spec, or one built from the user's settings, and an inference model.

A model file of this package says how to use it (its :class:`DetectorSpec`); the user's settings fill in
what it does not say and may override what legitimately varies (image sides), but never contradict it
(see :func:`keras_retinanet.config.spec.reconcile`). keras-retinanet's own files carry no spec: the
settings (backbone, image sides, anchors, class names) describe them, as they always had to.
"""

import logging
import os
from typing import List, Optional, Sequence, Tuple

import keras

from .. import hub, models
from ..checkpoint.files import read_spec
from ..config import RetinaNetConfig
from ..config.spec import DetectorSpec, check_class_count, reconcile
from ..errors import ModelError
from ..models.precision import with_precision
from ..models.retinanet import output_names
from ..models.retinanet_model import RetinaNetModel, spec_of
from .auto_precision import float32_parts_for, resolve_precision
from .refilter import anchor_layout, filter_layer, filter_overrides, filter_settings, is_training_model, refiltered

logger = logging.getLogger(__name__)


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


def locate_model(path) -> Tuple[str, Optional[DetectorSpec]]:
    """The local file of a model path, preset name or URL, and the preset's spec (None for a path).

    A preset or URL is fetched through :mod:`keras_retinanet.hub` (cached, verified); a path that does not
    exist is a FileNotFoundError as before, a name that is no preset an UnknownModelError listing the presets.

    Raises:
        FileNotFoundError, UnknownModelError, DownloadError, ChecksumError.
    """
    source = os.fspath(path)
    if os.path.isfile(source):
        return source, None
    try:
        hub.check_model_source(source)
    except hub.UnknownModelError:
        if hub.is_path_like(source):
            raise FileNotFoundError(f"model file '{source}' does not exist") from None
        raise
    return hub.resolve_model(source)


def _preset_spec(model: keras.Model, preset: DetectorSpec, config: RetinaNetConfig, source: str) -> DetectorSpec:
    """A preset's spec completed by the inference model it describes: its anchors, filter and image sides.

    Raises:
        ModelError: the file detects another number of classes than the preset names.
    """
    num_classes = int(model.get_layer("classification").output.shape[-1])
    if num_classes != preset.num_classes:
        raise ModelError(f"{source}: the file detects {num_classes} classes, its preset names {preset.num_classes}")
    parameters, levels = anchor_layout(model)
    return preset.replace(
        anchors=parameters.get_config(),
        pyramid_levels=tuple(levels),
        image_min_side=config.data.image_min_side,
        image_max_side=config.data.image_max_side,
        resize=not config.data.no_resize,
        filter=filter_settings(model),
    )


def with_preset_spec(model: keras.Model, preset: DetectorSpec, config: RetinaNetConfig, source: str) -> RetinaNetModel:
    """A keras-retinanet model of a preset as a :class:`RetinaNetModel` carrying the preset's spec (same layers).

    An inference model's spec is completed by the model (its anchors and filter); a training model's keeps the
    preset's anchors. Either way the image sides are the configuration's (reconciled with the preset).

    Raises:
        ModelError: the model detects another number of classes than the preset names.
    """
    if is_training_model(model):
        num_classes = int(model.get_layer("classification").output.shape[-1])
        if num_classes != preset.num_classes:
            raise ModelError(f"{source}: the file detects {num_classes} classes, its preset names {preset.num_classes}")
        spec = preset.replace(
            image_min_side=config.data.image_min_side,
            image_max_side=config.data.image_max_side,
            resize=not config.data.no_resize,
            filter=None,
        )
    else:
        spec = _preset_spec(model, preset, config, source)
    return RetinaNetModel(inputs=model.inputs, outputs=model.outputs, name=model.name, spec=spec)


def open_inference_model(
    path: str,
    config: RetinaNetConfig,
    class_names: Optional[Sequence[str]] = None,
    class_source: str = "class_names",
    convert: Optional[bool] = None,
    safe_mode: bool = True,
    precision: str = "float32",
    spec: Optional[DetectorSpec] = None,
) -> Tuple[keras.Model, DetectorSpec, RetinaNetConfig, List[str], bool]:
    """Load a model file as an inference model, with the spec and the configuration to use it with.

    Args:
        path: a ``.keras`` or ``.h5`` file of this package or of keras-retinanet, or a preset name or URL
            (fetched through :mod:`keras_retinanet.hub`; a preset's spec describes its keras-retinanet file).
        config: the user's settings; with a spec file only those the user gave count (``config.given``).
        class_names: names in label order, or None. Their number must match the model's; with a spec file
            the spec's names are used (a note says when they differ), without one they name the labels.
        class_source: how to call ``class_names`` in messages (e.g. '--classes classes.csv').
        convert: None converts a training model by itself; False refuses one; True requires one.
        safe_mode: refuse files holding Lambda layers.
        precision: 'float32', 'mixed', 'mixed_float16', 'mixed_bfloat16' or 'auto' (see :mod:`.auto_precision`).
        spec: the spec of a file that holds none (what :func:`keras_retinanet.hub.resolve_model` gave with the
            path); a file's own spec wins.

    Returns:
        (inference model, its spec, the reconciled configuration, notes about overridden settings, whether
        the spec came from the file or a preset (False: built from the settings, for keras-retinanet's files)).

    Raises:
        ModelError, ModelFileError: a contradicting setting, a file that is not a RetinaNet, a bad file.
    """
    source = os.fspath(path)
    path, preset = locate_model(source)
    preset = preset if preset is not None else spec
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model file '{path}' does not exist")
    own_spec = read_spec(path)
    file_spec = own_spec if own_spec is not None else preset
    notes: List[str] = []
    if file_spec is not None:
        config, notes = reconcile(config, file_spec, source)
        if class_names is not None:
            check_class_count(file_spec, class_names, class_source, source)
            if tuple(str(name) for name in class_names) != file_spec.class_names:
                named = ", ".join(file_spec.class_names[:5])
                notes.append(f"naming the classes as {source} does ({named}), not as {class_source}")
    backbone_name = None if own_spec is not None else config.model.backbone
    model = models.load_model(path, backbone_name=backbone_name, compile=False, safe_mode=safe_mode)
    training = _checked_kind(model, path, convert)
    if not training:
        overrides = filter_overrides(model, config)
        if overrides:  # a snapshot converts with them below; an inference model's filter is rebuilt with them
            model = refiltered(model, **overrides)
    if precision == "auto":
        # After reconcile: the backbone is the file's (or its preset's) where it says, else the settings'.
        precision = resolve_precision("auto", config.model.backbone).precision
    if precision != "float32":
        # What the detections need in float32 (measured per backbone family, see auto_precision).
        parts = float32_parts_for(config.model.backbone)
        if parts:
            logger.info("precision %s: %s kept in float32 (%s models lose detections otherwise)",
                        precision, " and ".join(parts), config.model.backbone)
        model = with_precision(model, precision, parts)
    if training:
        # With a spec the anchors come from it (reconcile put them into the configuration).
        model = models.convert_model(model, **config.model.filter_options())
    spec = spec_of(model)
    if spec is None and file_spec is not None:  # keras-retinanet's file of a preset
        spec = _preset_spec(model, file_spec, config, source)
    elif spec is None:
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
