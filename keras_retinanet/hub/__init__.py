"""Pretrained weights by name, path or URL: a registry of known files and a verified download cache.

    >>> from keras_retinanet import hub
    >>> hub.fetch("resnet50_imagenet")  # downloaded once into ~/.cache/keras_retinanet/weights/
    >>> hub.fetch("/data/ResNet-50-model.keras.h5")  # a local file is returned as it is
    >>> hub.weights_names()

Environment: ``KERAS_RETINANET_HOME`` (the cache, default ``$XDG_CACHE_HOME/keras_retinanet`` or
``~/.cache/keras_retinanet``) and ``KERAS_RETINANET_MIRROR`` (a base URL serving the files by name).
This package imports no TensorFlow.
"""

from .download import (
    ENV_HOME,
    ENV_MIRROR,
    ChecksumError,
    DownloadError,
    Fetched,
    cache_dir,
    check_source,
    fetch,
    home,
    is_known_source,
    is_url,
    resolve,
)
from .registry import REGISTRY, UnknownWeightsError, WeightsEntry, imagenet_weights_name, lookup, weights_names

__all__ = [
    "ENV_HOME",
    "ENV_MIRROR",
    "REGISTRY",
    "ChecksumError",
    "DownloadError",
    "Fetched",
    "UnknownWeightsError",
    "WeightsEntry",
    "cache_dir",
    "check_source",
    "fetch",
    "home",
    "imagenet_weights_name",
    "is_known_source",
    "is_url",
    "lookup",
    "resolve",
    "weights_names",
]
