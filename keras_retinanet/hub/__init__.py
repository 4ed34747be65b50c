"""Pretrained weights by name, path or URL: a registry of known files and a verified download cache.

    >>> from keras_retinanet import hub
    >>> hub.fetch("resnet50_imagenet")  # downloaded once into ~/.cache/keras_retinanet/weights/
    >>> hub.fetch("/data/ResNet-50-model.keras.h5")  # a local file is returned as it is
    >>> hub.fetch("https://example.com/model.h5#sha256=<hex>")  # cached under weights/url/<key>/, hash checked
    >>> hub.weights_names()
    >>> hub.locate("resnet50_coco")  # a model by path, preset or URL: its file, and the DetectorSpec a preset's lacks

Environment: ``KERAS_RETINANET_HOME`` (the cache, default ``$XDG_CACHE_HOME/keras_retinanet`` or
``~/.cache/keras_retinanet``; each name or URL has its own place in it, :func:`cache_path`) and
``KERAS_RETINANET_MIRROR`` (a base URL serving the known names' files by name).
Presets (:mod:`.presets`) are published detectors by name: a weights file and the spec it lacks.
This package imports no TensorFlow.
"""

from .cache import ENV_HOME, ENV_MIRROR, SourceError, cache_dir, cache_path, check_source, home, is_known_source, is_url
from .download import ChecksumError, DownloadError, Fetched, fetch, resolve
from .presets import (
    MODEL_PRESETS,
    Located,
    Preset,
    UnknownModelError,
    check_model_source,
    describe_presets,
    find_preset,
    is_path_like,
    locate,
    preset_names,
)
from .registry import REGISTRY, UnknownWeightsError, WeightsEntry, imagenet_weights_name, lookup, weights_names

__all__ = [
    "ENV_HOME",
    "ENV_MIRROR",
    "Located",
    "MODEL_PRESETS",
    "Preset",
    "REGISTRY",
    "ChecksumError",
    "DownloadError",
    "Fetched",
    "SourceError",
    "UnknownModelError",
    "UnknownWeightsError",
    "WeightsEntry",
    "cache_dir",
    "cache_path",
    "check_model_source",
    "check_source",
    "describe_presets",
    "fetch",
    "find_preset",
    "home",
    "imagenet_weights_name",
    "is_path_like",
    "is_known_source",
    "is_url",
    "locate",
    "lookup",
    "preset_names",
    "resolve",
    "weights_names",
]
