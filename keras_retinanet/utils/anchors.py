"""keras-retinanet's ``utils.anchors``: its names, from :mod:`keras_retinanet.anchors` where the code lives.

    from keras_retinanet.utils.anchors import anchors_for_shape, anchor_targets_bbox
"""

from ..anchors import (
    AnchorParameters,
    anchor_targets_bbox,
    anchors_for_shape,
    bbox_transform,
    compute_gt_annotations,
    compute_overlap,
    generate_anchors,
    guess_shapes,
    shift,
)

__all__ = [
    "AnchorParameters",
    "anchor_targets_bbox",
    "anchors_for_shape",
    "bbox_transform",
    "compute_gt_annotations",
    "compute_overlap",
    "generate_anchors",
    "guess_shapes",
    "shift",
]
