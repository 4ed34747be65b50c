"""The one door to a model: :func:`open_model` turns a path, preset name or URL into a model ready to run.

A model file of this package says how to use it (its :class:`DetectorSpec`); the user's settings fill in
what it does not say and may override what legitimately varies (image sides), but never contradict it
(see :func:`keras_retinanet.config.spec.reconcile`). keras-retinanet's own files carry no spec: the
settings (backbone, image sides, anchors, class names) describe them, as they always had to, or a preset's
spec does. Training snapshots are converted; exports (SavedModel, TFLite, ONNX) are opened by their runtime
(:mod:`.exported`). ``load_detector``, every command and the server open models here and nowhere else.
"""

import dataclasses
import logging
import os
from typing import Any, List, Optional, Sequence, Union

import keras

from .. import hub, models
from ..checkpoint.files import read_spec
from ..config import RetinaNetConfig
from ..config.spec import DetectorSpec, check_class_count, reconcile
from ..errors import ModelError
from ..models.precision import with_precision
from ..models.retinanet import is_training_model, output_names
from ..models.model_with_spec import RetinaNetModel, spec_of
from .auto_precision import float32_parts_for, resolve_precision
from .detector import Detector, ExportedDetector
from .exported import is_exported, open_exported_model
from .refilter import anchor_layout, filter_layer, filter_overrides, filter_settings, refiltered

logger = logging.getLogger(__name__)


def _checked_kind(model: keras.Model, path: str, convert: Optional[bool]) -> bool:
    """Whether the loaded model is a training model, refusing what ``convert`` rules out.

    Args:
        convert: None converts a training model by itself; False refuses one; True requires one
            (keras-retinanet's --convert-model).

    Raises:
        ModelError: the model is not the kind asked for, or not a RetinaNet.
    """
    training = is_training_model(model)
    if convert is False and training:
        raise ModelError(f"{path} is a training model, not an inference model")
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


def _with_preset_spec(model: keras.Model, preset: DetectorSpec, config: RetinaNetConfig, source: str) -> RetinaNetModel:
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



@dataclasses.dataclass
class OpenedModel:
    """A model opened by :func:`open_model`: what runs it, the spec that says how, and the settings it was opened with.

    Attributes:
        model: the Keras inference model (a training snapshot converted), or an export's runner (:mod:`.runtimes`),
            either with ``predict_on_batch`` answering ``[boxes, scores, labels]``.
        spec: its :class:`DetectorSpec`, with the image sides it is run at.
        config: the user's configuration reconciled with the spec.
        notes: what the user's settings overrode (image sides, class names), one line each.
        from_file: whether the spec is the file's or its preset's (False: built from the settings, for
            keras-retinanet's own files).
        located: where the model was found (:func:`keras_retinanet.hub.locate`).
        export_format: 'savedmodel', 'tflite' or 'onnx' for an export, else None.
        converted: whether the file held a training model, converted on opening.
    """

    model: Any
    spec: DetectorSpec
    config: RetinaNetConfig
    notes: List[str]
    from_file: bool
    located: hub.Located
    export_format: Optional[str] = None
    converted: bool = False


def _refuse_filter_changes(spec: Optional[DetectorSpec], config: RetinaNetConfig, source: str) -> None:
    """An inference model that keeps its filter (``keep_filter``) and names it in its spec takes no other filter
    settings; keras-retinanet's inference files (no spec) keep theirs and the settings are ignored, as before.

    Raises:
        ModelError: a given filter setting differs from the spec's.
    """
    if spec is None or not spec.is_inference:
        return
    given = [key for key in spec.filter if config.given(f"model.{key}") and getattr(config.model, key) != spec.filter[key]]
    if given:
        flags = ", ".join("--" + key.replace("_", "-") for key in given)
        raise ModelError(
            f"{source} is already an inference model with its own filter settings; {flags} cannot change "
            "them: convert the training snapshot instead"
        )


def open_model(
    source: Union[str, os.PathLike, hub.Located],
    config: RetinaNetConfig,
    *,
    class_names: Optional[Sequence[str]] = None,
    class_source: str = "class_names",
    convert: Optional[bool] = None,
    safe_mode: bool = True,
    precision: str = "float32",
    threads: Optional[int] = None,
    keep_filter: bool = False,
) -> OpenedModel:
    """Open a model by path, preset name or URL: ready to run, with the spec and configuration to use it with.

    Args:
        source: a ``.keras`` or ``.h5`` file of this package or of keras-retinanet (a training snapshot is
            converted), an export of ``retinanet-convert-model`` (SavedModel folder, ``.tflite``, ``.onnx``), a
            preset name or a URL; or what :func:`keras_retinanet.hub.locate` gave for one (nothing is fetched again).
        config: the user's settings; with a spec only those the user gave count (``config.given``).
        class_names: names in label order, or None. Their number must match the model's; with a spec the
            spec's names are used (a note says when they differ), without one they name the labels.
        class_source: how to call ``class_names`` in messages (e.g. '--classes classes.csv').
        convert: None converts a training model by itself; False refuses one; True requires one (keras-retinanet's
            --convert-model).
        safe_mode: refuse files holding Lambda layers.
        precision: 'float32', 'mixed', 'mixed_float16', 'mixed_bfloat16' or 'auto' (see :mod:`.auto_precision`);
            an export runs as it was exported ('float32' or 'auto').
        threads: an export's runtime threads (TFLite, ONNX Runtime); default: the cores this process may use.
        keep_filter: an inference model keeps the filter stored in it (retinanet-convert-model): a filter setting
            that contradicts its spec is refused. Otherwise given filter settings rebuild its filter.

    Returns:
        an :class:`OpenedModel`.

    Raises:
        FileNotFoundError, UnknownModelError, DownloadError: no such model.
        ModelError, ModelFileError: a contradicting setting, a file that is not a RetinaNet, a bad file.
    """
    located = hub.locate(source)
    name, path = located.source, located.path
    if is_exported(path):
        runner, spec, config, notes = open_exported_model(
            path, config, class_names=class_names, class_source=class_source, convert=convert, precision=precision,
            threads=threads,
        )  # fmt: skip
        return OpenedModel(runner, spec, config, notes, True, located, export_format=runner.format)
    own_spec = read_spec(path)
    file_spec = own_spec if own_spec is not None else located.preset
    notes: List[str] = []
    if file_spec is not None:
        config, notes = reconcile(config, file_spec, name)
        if class_names is not None:
            check_class_count(file_spec, class_names, class_source, name)
            if tuple(str(class_name) for class_name in class_names) != file_spec.class_names:
                named = ", ".join(file_spec.class_names[:5])
                notes.append(f"naming the classes as {name} does ({named}), not as {class_source}")
    backbone_name = None if own_spec is not None else config.model.backbone
    model = models.load_model(path, backbone_name=backbone_name, compile=False, safe_mode=safe_mode)
    training = _checked_kind(model, path, convert)
    if own_spec is None and file_spec is not None:  # keras-retinanet's file of a preset: the model carries its spec
        model = _with_preset_spec(model, file_spec, config, name)
    if not training and keep_filter:
        _refuse_filter_changes(spec_of(model), config, name)
    elif not training:
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
    if spec is None:  # keras-retinanet's file, described by the settings
        spec = _spec_from_settings(model, config)
        if class_names is not None:
            check_class_count(spec, class_names, class_source, path)
            spec = spec.replace(class_names=tuple(class_names))
    else:
        if spec.filter is None:  # an inference model whose spec predates filter settings
            spec = spec.with_filter(**filter_settings(model))
        # Overridden image sides are how this detector prepares images (the model keeps the sides it was
        # trained at in its own spec).
        spec = spec.replace(
            image_min_side=config.data.image_min_side,
            image_max_side=config.data.image_max_side,
            resize=not config.data.no_resize,
        )
    return OpenedModel(model, spec, config, notes, file_spec is not None, located, converted=training)


def detector_of(opened: OpenedModel, score_threshold: Optional[float] = None) -> Detector:
    """The :class:`Detector` (an :class:`ExportedDetector` for an export) of a model :func:`open_model` opened.

    Args:
        opened: what :func:`keras_retinanet.inference.open_model` gave.
        score_threshold: the threshold :meth:`Detector.predict` applies when given none (None: the model's own).
    """
    if opened.export_format is not None:
        return ExportedDetector(opened.model, opened.spec, opened.notes, score_threshold=score_threshold)
    return Detector(opened.model, opened.spec, opened.notes, score_threshold=score_threshold, from_file=opened.from_file)


def load_detector(
    path: Union[str, os.PathLike, hub.Located],
    backbone: Optional[str] = None,
    class_names: Optional[Sequence[str]] = None,
    image_min_side: Optional[int] = None,
    image_max_side: Optional[int] = None,
    score_threshold: Optional[float] = None,
    precision: str = "float32",
    safe_mode: bool = True,
    threads: Optional[int] = None,
    max_detections: Optional[int] = None,
    max_candidates_per_level: Optional[int] = None,
    nms_method: Optional[str] = None,
    soft_nms_sigma: Optional[float] = None,
) -> Detector:
    """Load a model file, or a preset by name, as a :class:`Detector`.

    A file of this package needs nothing but its path: its spec names the backbone, classes, image sides and
    anchors. A preset (``keras_retinanet.hub.preset_names()``, e.g. 'resnet50_coco') is fetched into the cache
    and described by its spec (the COCO class names, ...). keras-retinanet's own files (no spec) are described
    by the arguments: backbone default 'resnet50', image sides default 800/1333, class names default '0', '1', ...

    Args:
        path: ``.keras`` or ``.h5`` file (a training snapshot is converted to an inference model), a preset
            name or a URL; or an export of ``retinanet-convert-model`` (a SavedModel folder, ``.tflite`` or
            ``.onnx`` file, raw-input or not), run by its own runtime and described by the spec stored in it;
            or what :func:`keras_retinanet.hub.locate` gave (opened by :func:`keras_retinanet.inference.open_model`).
        backbone: the backbone; must match the file's spec if it has one.
        class_names: label names in label order; their number must match the model's.
        image_min_side, image_max_side: resize images to these sides instead of those the model was trained at.
        score_threshold: the threshold :meth:`Detector.predict` applies by default (None: the model's own
            filter threshold, 0.05 for a converted training snapshot); below the model's own the filter is rebuilt.
        precision: 'float32', 'mixed', 'mixed_float16', 'mixed_bfloat16' or 'auto' (16-bit only where the
            hardware runs it natively and the model's detections are kept; one log line says what and why).
            Exports run as they were exported ('float32' or 'auto').
        safe_mode: refuse files holding Lambda layers (code stored in the file).
        threads: an export's runtime threads (TFLite, ONNX Runtime); default: the cores this process may use.
        max_detections: detections per image (None: the model's own, 300 for a converted training snapshot);
            another value rebuilds the filter of a Keras model (an export's is fixed in its graph).
        max_candidates_per_level: keep only each pyramid level's N best scores as NMS candidates, bounding the
            filter's work on images where very many scores pass the threshold, at the price of objects in
            crowded images (None: every score above the threshold, keras-retinanet's filter).
        nms_method, soft_nms_sigma: 'soft' for Gaussian Soft-NMS with that sigma instead of keras-retinanet's hard
            NMS ('hard'); None: the model's own.

    Returns:
        the :class:`Detector`.

    Raises:
        ModelError: an argument contradicts the file (another backbone, another number of classes).
        ModelFileError: the file is not a model file or not a RetinaNet.
        UnknownModelError: neither a file nor a preset; DownloadError: a preset could not be downloaded.
    """
    settings = {
        "model.backbone": backbone,
        "data.image_min_side": image_min_side,
        "data.image_max_side": image_max_side,
        "model.max_detections": max_detections,
        "model.max_candidates_per_level": max_candidates_per_level,
        "model.nms_method": nms_method,
        "model.soft_nms_sigma": soft_nms_sigma,
    }
    config = RetinaNetConfig.build({key: value for key, value in settings.items() if value is not None})
    opened = open_model(
        path, config, class_names=class_names, safe_mode=safe_mode, precision=precision, threads=threads
    )
    return detector_of(opened, score_threshold)
