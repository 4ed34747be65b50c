"""Moved to :mod:`keras_retinanet.checkpoint.legacy_reader` and ``legacy_builder``; re-exported for old imports."""

from ..checkpoint.legacy_builder import (  # noqa: F401
    assign_legacy_weights,
    build_legacy_model,
    load_legacy_model,
    model_layer_names_of_stored,
)
from ..checkpoint.legacy_reader import (  # noqa: F401
    RETINANET_CLASS_NAMES,
    SUBMODEL_NAMES,
    LegacyModelInfo,
    backbone_matches,
    detect_backbone,
    is_keras_retinanet_file,
    keras_major_version,
    read_legacy_file,
)
from ..checkpoint.storage import decode_text as _text, decode_texts as _texts  # noqa: F401
