"""The weight files this package knows by name: where each is published and how it is verified.

Every backbone family's ImageNet weights are the files keras-retinanet 1.0.0 used (ResNet from
fizyr's keras-models release, MobileNet v1 from fchollet's deep-learning-models v0.6) or, for the
families it took from ``keras.applications``, Keras' own ``*_notop.h5`` files with the hashes
Keras publishes in its source (``keras/src/applications/*.py``). ``resnet50_coco`` is
keras-retinanet's COCO-trained detector.

A hash of 32 hex digits is an MD5 (what keras-retinanet and Keras publish), 64 a SHA-256. Files
without a published hash (MobileNet v1 and v2, the COCO detector) are pinned on first use: the
SHA-256 of the first complete download is kept beside it in the cache and checked every later time
(see :mod:`keras_retinanet.hub.checksums`). Each file name is the file's place in the cache
(``weights/<file name>``), so no two entries may share one.

This module is plain data and imports nothing heavy, so that command-line checks can use it.
"""

import dataclasses
from typing import Dict, List, Optional

from ..errors import RetinaNetError

FIZYR_KERAS_MODELS = "https://github.com/fizyr/keras-models/releases/download/v0.0.1/"
FCHOLLET_V06 = "https://github.com/fchollet/deep-learning-models/releases/download/v0.6/"
KERAS_APPLICATIONS = "https://storage.googleapis.com/tensorflow/keras-applications/"
KERAS_EFFICIENTNET = "https://storage.googleapis.com/keras-applications/"
KERAS_RETINANET_RELEASES = "https://github.com/fizyr/keras-retinanet/releases/download/"


@dataclasses.dataclass(frozen=True)
class WeightsEntry:
    """One known weight file.

    Attributes:
        name: the name users pass (``resnet50_imagenet``, ``resnet50_coco``).
        url: where it is published.
        file_name: its name in the cache and on a mirror (``$KERAS_RETINANET_MIRROR/<file_name>``).
        file_hash: the published hex digest (32 digits: MD5, 64: SHA-256), or None when none is published.
        kind: 'imagenet' (backbone weights) or 'detector' (a whole RetinaNet).
        backbone: the backbone the weights are for.
        description: one line for listings.
    """

    name: str
    url: str
    file_name: str
    file_hash: Optional[str]
    kind: str
    backbone: str
    description: str

    @property
    def hash_algorithm(self) -> Optional[str]:
        """'md5', 'sha256' or None (no published hash: pinned on first download)."""
        if self.file_hash is None:
            return None
        return "md5" if len(self.file_hash) == 32 else "sha256"


class UnknownWeightsError(RetinaNetError, ValueError):
    """A weights source that is neither a file, a URL nor a known name (or, as its subclass
    :class:`keras_retinanet.hub.SourceError`, a URL that cannot be used as written)."""


def _entry(name, url, file_hash, kind, backbone, description) -> WeightsEntry:
    return WeightsEntry(name, url, url.rsplit("/", 1)[-1], file_hash, kind, backbone, description)


def _resnet_entries() -> List[WeightsEntry]:
    # keras-retinanet 1.0.0, models/resnet.py: keras-resnet's ImageNet files and their MD5s.
    hashes = {
        50: "3e9f4e4f77bbe2c9bec13b53ee1c2319",
        101: "05dc86924389e5b401a9ea0348a3213c",
        152: "6ee11ef2b135592f8031058820bb9e71",
    }
    return [
        _entry(f"resnet{depth}_imagenet", f"{FIZYR_KERAS_MODELS}ResNet-{depth}-model.keras.h5", md5, "imagenet",
               f"resnet{depth}", f"ResNet-{depth} ImageNet weights (keras-resnet layout, as keras-retinanet used)")
        for depth, md5 in hashes.items()
    ]


def _vgg_entries() -> List[WeightsEntry]:
    # keras.applications vgg16.py / vgg19.py, WEIGHTS_PATH_NO_TOP and its file_hash.
    hashes = {"vgg16": "6d6bbae143d832006294945121d1f1fc", "vgg19": "253f8cb515780f3b799900260a226db6"}
    return [
        _entry(f"{name}_imagenet", f"{KERAS_APPLICATIONS}{name}/{name}_weights_tf_dim_ordering_tf_kernels_notop.h5",
               md5, "imagenet", name, f"{name.upper()} ImageNet weights (Keras, no top)")
        for name, md5 in hashes.items()
    ]


def _mobilenet_entries() -> List[WeightsEntry]:
    # keras-retinanet 1.0.0 fetched MobileNet v1 from fchollet's v0.6 release; Keras publishes no hash for them.
    alpha_texts = {"0.25": "2_5", "0.5": "5_0", "0.75": "7_5", "1.0": "1_0"}
    return [
        _entry(f"mobilenet{size}_{alpha}_imagenet", f"{FCHOLLET_V06}mobilenet_{text}_{size}_tf_no_top.h5", None,
               "imagenet", f"mobilenet{size}_{alpha}", f"MobileNet (alpha {alpha}, {size} px) ImageNet weights (no top)")
        for size in (128, 160, 192, 224)
        for alpha, text in alpha_texts.items()
    ]


def _mobilenet_v2_v3_entries() -> List[WeightsEntry]:
    entries = [
        # keras.applications mobilenet_v2.py: no hash published.
        _entry(f"mobilenetv2_{alpha}_imagenet",
               f"{KERAS_APPLICATIONS}mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_224_no_top.h5",
               None, "imagenet", f"mobilenetv2_{alpha}",
               f"MobileNetV2 (alpha {alpha}) ImageNet weights (Keras, no top)")
        for alpha in ("0.35", "0.5", "0.75", "1.0", "1.3", "1.4")
    ]
    # keras.applications mobilenet_v3.py WEIGHTS_HASHES, the no-top (second) hash of each model.
    v3_hashes = {
        ("large", "0.75"): "40af19a13ebea4e2ee0c676887f69a2e",
        ("large", "1.0"): "07fb09a5933dd0c8eaafa16978110389",
        ("small", "0.75"): "ebdb5cc8e0b497cd13a7c275d475c819",
        ("small", "1.0"): "d3e8ec802a04aa4fc771ee12a9a9b836",
    }
    entries += [
        _entry(f"mobilenetv3{size}_{alpha}_imagenet",
               f"{KERAS_APPLICATIONS}mobilenet_v3/weights_mobilenet_v3_{size}_224_{alpha}_float_no_top_v2.h5",
               md5, "imagenet", f"mobilenetv3{size}_{alpha}",
               f"MobileNetV3 {size} (alpha {alpha}) ImageNet weights (Keras, no top)")
        for (size, alpha), md5 in v3_hashes.items()
    ]
    return entries


def _densenet_entries() -> List[WeightsEntry]:
    # keras.applications densenet.py, the no-top file hashes.
    hashes = {
        "densenet121": "30ee3e1110167f948a6b9946edeeb738",
        "densenet169": "b8c4d4c20dd625c148057b9ff1c1176b",
        "densenet201": "c13680b51ded0fb44dff2d8f86ac8bb1",
    }
    return [
        _entry(f"{name}_imagenet",
               f"{KERAS_APPLICATIONS}densenet/{name}_weights_tf_dim_ordering_tf_kernels_notop.h5",
               md5, "imagenet", name, f"DenseNet-{name[len('densenet'):]} ImageNet weights (Keras, no top)")
        for name, md5 in hashes.items()
    ]


def _efficientnet_entries() -> List[WeightsEntry]:
    # keras.applications efficientnet.py WEIGHTS_HASHES, the no-top (second) hash of each model.
    hashes = {
        "b0": "50bc09e76180e00e4465e1a485ddc09d",
        "b1": "74c4e6b3e1f6a1eea24c589628592432",
        "b2": "111f8e2ac8aa800a7a99e3239f7bfb39",
        "b3": "af6d107764bb5b1abb91932881670226",
        "b4": "ebc24e6d6c33eaebbd558eafbeedf1ba",
        "b5": "38879255a25d3c92d5e44e04ae6cec6f",
        "b6": "9ecce42647a20130c1f39a5d4cb75743",
        "b7": "cbcfe4450ddf6f3ad90b1b398090fe4a",
    }
    return [
        _entry(f"efficientnet{size}_imagenet", f"{KERAS_EFFICIENTNET}efficientnet{size}_notop.h5", md5, "imagenet",
               f"EfficientNet{size.upper()}", f"EfficientNet-{size.upper()} ImageNet weights (Keras, no top)")
        for size, md5 in hashes.items()
    ]


def _detector_entries() -> List[WeightsEntry]:
    # keras-retinanet's release 0.5.1 publishes no hash of its COCO model: pinned on first download.
    return [
        _entry("resnet50_coco", f"{KERAS_RETINANET_RELEASES}0.5.1/resnet50_coco_best_v2.1.0.h5", None, "detector",
               "resnet50", "keras-retinanet's ResNet-50 RetinaNet trained on COCO (80 classes, 0.350 AP on val2017)"),
    ]


REGISTRY: Dict[str, WeightsEntry] = {
    entry.name: entry
    for entry in (
        _resnet_entries() + _vgg_entries() + _mobilenet_entries() + _mobilenet_v2_v3_entries()
        + _densenet_entries() + _efficientnet_entries() + _detector_entries()
    )
}

# Backbone names that mean a default width ('mobilenetv2' is alpha 1.0): the same files under a second name.
ALIASES = {
    "mobilenetv2_imagenet": "mobilenetv2_1.0_imagenet",
    "mobilenetv3small_imagenet": "mobilenetv3small_1.0_imagenet",
    "mobilenetv3large_imagenet": "mobilenetv3large_1.0_imagenet",
}


def weights_names(kind: Optional[str] = None) -> List[str]:
    """Every known weights name (of one kind, 'imagenet' or 'detector', if given), in registry order."""
    return [name for name, entry in REGISTRY.items() if kind is None or entry.kind == kind]


def find(name: str) -> Optional[WeightsEntry]:
    """The entry of a weights name (any letter case, aliases included), or None."""
    key = name.lower()
    return REGISTRY.get(ALIASES.get(key, key))


def lookup(name: str) -> WeightsEntry:
    """The entry of a weights name.

    Raises:
        UnknownWeightsError: the name is unknown; the one-line message lists the known names.
    """
    entry = find(name)
    if entry is None:
        raise UnknownWeightsError(f"unknown weights name '{name}'; known names: {', '.join(weights_names())}")
    return entry


def imagenet_weights_name(backbone: str) -> str:
    """The registry name of a backbone's ImageNet weights ('resnet50' -> 'resnet50_imagenet').

    Raises:
        UnknownWeightsError: no ImageNet weights are known for the backbone.
    """
    name = f"{backbone.lower()}_imagenet"
    entry = find(name)
    if entry is None or entry.kind != "imagenet":
        raise UnknownWeightsError(
            f"no ImageNet weights are known for backbone '{backbone}'; pass a weights file's path "
            "(--imagenet-weights PATH) or train from random weights (--no-weights)"
        )
    return entry.name
