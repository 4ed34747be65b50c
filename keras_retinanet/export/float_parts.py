"""Which ops of an exported graph stay float32 when the rest of it is quantized to int8.

Quantizing the whole graph would also quantize the anchors, box decoding, clipping and scores (256 levels over
an 800 px image), which breaks NMS, and a raw input's resizing (rounding the pixels the backbone sees). Both int8
exports, TFLite's selective quantization and ONNX Runtime's static quantization, therefore skip the ops of the
layers :func:`keras_retinanet.models.retinanet.keeps_float32` names and of the raw input's scope. Both converters
name an op by the TensorFlow name scopes it came from, e.g. ``retinanet-bbox_1/clipped_boxes_1/Minimum`` (layer
``clipped_boxes``); TFLite joins the names of fused ops with ``;``.
"""

import re
from typing import Iterable, List

from .raw_input import RAW_INPUT_SCOPE


def in_float_layer(scope: str) -> bool:
    """Whether one name scope belongs to a layer that stays float32.

    A scope is a layer name, possibly followed by one Keras call suffix (``pyramid_classification_4`` is the
    head's last conv, ``pyramid_classification_0_1`` its first hidden one, ``anchors_3_1`` the anchors of
    level 3).
    """
    # Imported here: models loads Keras and TensorFlow, which this package's import avoids.
    from ..models.retinanet import keeps_float32

    bare = re.sub(r"_\d+$", "", scope)
    return keeps_float32(scope) or keeps_float32(bare) or bare == RAW_INPUT_SCOPE


def float_op_names(names: Iterable[str]) -> List[str]:
    """The op names among ``names`` that belong to float32 layers (:func:`in_float_layer` on any scope).

    Returns:
        sorted list; a fused name (parts joined by ``;``) is given whole and also split into its parts.
    """
    kept = set()
    for name in names:
        parts = name.split(";")
        if any(in_float_layer(scope) for part in parts for scope in part.split("/")):
            kept.update([name, *parts])
    return sorted(kept)
