"""Moved to :mod:`keras_retinanet.anchors`; kept so that keras-retinanet's import path still works.

    from keras_retinanet.utils.anchors import anchors_for_shape, anchor_targets_bbox
"""

from ..anchors import (  # noqa: F401
    DEFAULT_BOX_MEAN,
    DEFAULT_BOX_STD,
    DEFAULT_PYRAMID_LEVELS,
    AnchorParameters,
    __all__,
    anchor_targets_bbox,
    anchors_for_shape,
    bbox_transform,
    bbox_transform_inv,
    compute_gt_annotations,
    compute_overlap,
    generate_anchors,
    guess_shapes,
    shift,
    unmatched_annotations,
)

# Private helpers of the former single module, for code that reached into it.
from ..anchors.box_coding import _bbox_transform_into  # noqa: F401,E402
from ..anchors.matching import _best_overlaps, _split_by_overlap  # noqa: F401,E402
from ..anchors.overlap import _DENSE_OVERLAP_MAX_PAIRS, _box_columns, _dense_overlaps, _overlaps_with_box  # noqa: F401,E402
