"""Moved to :mod:`keras_retinanet.data.diagnostics`; kept so that the old import path still works."""

from ..data.diagnostics import (  # noqa: F401
    AnchorCoverage,
    anchor_coverage,
    count_unmatched_annotations,
    image_anchor_coverage,
)
