"""Presets: published detectors by name, each a known weights file and the spec the file itself lacks.

    >>> from keras_retinanet import load_detector
    >>> load_detector("resnet50_coco").predict("photo.jpg")["names"]   # downloaded once, then cached

keras-retinanet's files (Keras 2 ``.h5``) store no :class:`DetectorSpec`: which backbone, preprocessing,
class names, image sides and anchors they were trained with was told by the user on every command line.
A preset says it once: ``resnet50_coco`` is keras-retinanet's COCO model (registry entry ``resnet50_coco``),
a ResNet-50 with caffe preprocessing, the 80 COCO class names in category-id order, images resized to
800/1333 and keras-retinanet's default anchors. Every command and :func:`keras_retinanet.load_detector`
take a preset name wherever they take a model file; a local file keeps working as before.

This module imports no TensorFlow: commands resolve (and download) a preset before loading TensorFlow, so that
an offline machine is told so within seconds.
"""

import dataclasses
import os
from typing import Dict, List, Optional, TextIO

from ..config.spec import DetectorSpec
from .coco_names import COCO_CLASS_NAMES
from .cache import check_source, is_url
from .download import DEFAULT_TIMEOUT, resolve
from .registry import UnknownWeightsError, find, lookup


class UnknownModelError(UnknownWeightsError):
    """A model that is neither a file, a URL nor a preset name."""


@dataclasses.dataclass(frozen=True)
class Preset:
    """A published detector: its weights file and how to use it.

    Attributes:
        name: the name users pass ('resnet50_coco').
        weights: the registry name of its file (:func:`keras_retinanet.hub.lookup`).
        spec: what the file does not say: backbone, preprocessing, class names, image sides, anchors and head
            widths (no filter settings: those are the file's own).
        description: one line for listings.
    """

    name: str
    weights: str
    spec: DetectorSpec
    description: str


def _resnet50_coco() -> Preset:
    # keras-retinanet's COCO model was trained with its defaults: resnet50 (caffe preprocessing), min side 800,
    # max side 1333, AnchorParameters.default on levels 3-7, 256-wide pyramid and subnets.
    spec = DetectorSpec(
        backbone="resnet50",
        preprocessing="caffe",
        class_names=COCO_CLASS_NAMES,
        image_min_side=800,
        image_max_side=1333,
    )
    return Preset("resnet50_coco", "resnet50_coco", spec, lookup("resnet50_coco").description)


# Published detectors by name (not config.CONFIG_PRESETS, which are named configuration settings).
MODEL_PRESETS: Dict[str, Preset] = {preset.name: preset for preset in (_resnet50_coco(),)}


def preset_names() -> List[str]:
    """Every preset name, in order."""
    return list(MODEL_PRESETS)


def find_preset(name: str) -> Optional[Preset]:
    """The preset of a name (any letter case), or None."""
    return MODEL_PRESETS.get(str(name).lower())


def describe_presets() -> str:
    """The presets for a help text: 'resnet50_coco (keras-retinanet's ...)'."""
    return "; ".join(f"{preset.name} ({preset.description})" for preset in MODEL_PRESETS.values())


def _preset_of_weights(weights_name: Optional[str]) -> Optional[Preset]:
    if weights_name is None:
        return None
    return next((preset for preset in MODEL_PRESETS.values() if preset.weights == weights_name), None)


def is_path_like(source: str) -> bool:
    """Whether a source that is no file was meant as a path (a folder in it, or a model file extension)."""
    return os.sep in source or "/" in source or source.lower().endswith((".h5", ".hdf5", ".keras"))


def unknown_model(source: str, what: str = "model") -> UnknownModelError:
    """The one-line error of a model source that is no file, URL or preset."""
    if is_path_like(source):
        return UnknownModelError(f"{what} '{source}' does not exist")
    entry = find(source)
    if entry is not None and entry.kind != "detector":
        return UnknownModelError(
            f"{what} '{source}' names {entry.kind} backbone weights, not a detector; presets: {', '.join(MODEL_PRESETS)}"
        )
    return UnknownModelError(f"{what} '{source}' is not a file, a URL or a preset; presets: {', '.join(MODEL_PRESETS)}")


def check_model_source(source: str, what: str = "model") -> None:
    """Raise :class:`UnknownModelError` unless ``source`` is an existing path, a URL or a preset (no download);
    :class:`keras_retinanet.hub.SourceError` for a URL with a malformed hash."""
    source = os.fspath(source)
    if os.path.exists(os.path.expanduser(source)):
        return
    if is_url(source):
        check_source(source)  # a malformed '#sha256=' is an error now, not after TensorFlow has loaded
        return
    if find_preset(source) is not None:
        return
    entry = find(source)
    if entry is not None and entry.kind == "detector":
        return
    raise unknown_model(source, what)


@dataclasses.dataclass(frozen=True)
class Located:
    """Where a model named on a command line or in Python is: what :func:`locate` gives :func:`keras_retinanet.inference.open_model`.

    Attributes:
        source: what the user wrote (a path, a preset name or a URL), for messages.
        path: the local file (or export folder).
        preset: the preset's :class:`DetectorSpec` describing a file that holds none, or None.
    """

    source: str
    path: str
    preset: Optional[DetectorSpec] = None


def locate(
    source,
    *,
    hint: Optional[str] = None,
    progress: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    stream: Optional[TextIO] = None,
) -> Located:
    """The local model file of a path, a preset name or a URL, and the preset's spec if it is one.

    The one place a model's name becomes a file: the commands call it before TensorFlow loads (an offline
    machine fails within seconds, in one line) and hand the result to ``open_model``, so nothing is fetched twice.
    An existing path is returned as it is, with no spec (a file of this package carries its own). A preset's
    file is fetched through the cache (:func:`keras_retinanet.hub.resolve`: downloaded once, verified), and so
    is a URL; a URL of a preset's file gets the preset's spec.

    Args:
        source: a path, a preset name (:func:`preset_names`), a URL, or a :class:`Located` (returned as it is).
        hint: what else the user can do when the download fails, added to the message.
        progress, timeout, stream: see :func:`keras_retinanet.hub.resolve`.

    Raises:
        FileNotFoundError: a path (a folder in it, or a model file extension) that does not exist.
        UnknownModelError: not a file, a URL or a preset.
        DownloadError: the download failed; the one-line message names the URL and the local alternative.
        ChecksumError: the downloaded file has another hash (it was deleted).
    """
    if isinstance(source, Located):
        return source
    source = os.fspath(source)
    if os.path.exists(os.path.expanduser(source)):
        return Located(source, os.path.expanduser(source))
    if is_path_like(source) and not is_url(source):
        raise FileNotFoundError(f"model '{source}' does not exist")
    check_model_source(source)
    preset = find_preset(source)
    target = preset.weights if preset is not None else source
    hint = hint or "or pass the local path of the model file instead"
    fetched = resolve(target, hint=hint, progress=progress, timeout=timeout, stream=stream)
    preset = preset or _preset_of_weights(fetched.name)
    return Located(source, fetched.path, preset.spec if preset is not None else None)
