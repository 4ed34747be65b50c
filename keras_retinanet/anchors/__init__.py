"""Anchors in numpy: generation, overlaps, box coding, matching and training targets.

Pure numpy (no Keras or TensorFlow): the data pipeline and the tools use it without building a graph.
The graph-side twins (anchors of a feature map, box decoding) are :mod:`keras_retinanet.backend` and
:mod:`keras_retinanet.layers`.

    generation  AnchorParameters, generate_anchors, shift, guess_shapes, anchors_for_shape
    overlap     compute_overlap
    box_coding  bbox_transform, bbox_transform_inv, BOX_CODING_MEAN/STD
    matching    compute_gt_annotations, unmatched_annotations, POSITIVE_OVERLAP/NEGATIVE_OVERLAP
    targets     anchor_targets_bbox, anchor_targets_with_anchors (the GIoU loss's)
    coverage    how well anchors cover boxes: best IoU per box, shares by class and object size
    optimize    fitting anchor ratios, scales and sizes to a dataset's boxes (scipy's differential evolution)
"""

from .generation import (
    DEFAULT_PYRAMID_LEVELS,
    AnchorParameters,
    anchors_for_shape,
    generate_anchors,
    guess_shapes,
    shift,
)
from .overlap import compute_overlap
from .box_coding import DEFAULT_BOX_MEAN, DEFAULT_BOX_STD, bbox_transform, bbox_transform_inv
from .matching import compute_gt_annotations, unmatched_annotations
from .targets import anchor_targets_bbox, anchor_targets_with_anchors

__all__ = [
    "DEFAULT_BOX_MEAN",
    "DEFAULT_BOX_STD",
    "DEFAULT_PYRAMID_LEVELS",
    "AnchorParameters",
    "anchor_targets_bbox",
    "anchor_targets_with_anchors",
    "anchors_for_shape",
    "bbox_transform",
    "bbox_transform_inv",
    "compute_gt_annotations",
    "compute_overlap",
    "generate_anchors",
    "guess_shapes",
    "shift",
    "unmatched_annotations",
]
