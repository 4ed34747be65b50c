"""Moved to :mod:`keras_retinanet.checkpoint.atomic`; re-exported for old imports."""

from ..checkpoint.atomic import (  # noqa: F401
    TEMPORARY_SUFFIX,
    remove_stale_temporaries,
    save_model_atomically,
    temporary_pattern,
)
