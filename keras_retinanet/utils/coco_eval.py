"""COCO metrics of a detector on a dataset: re-exported from :mod:`keras_retinanet.evaluation.coco`."""

from ..evaluation.coco import (  # noqa: F401
    COCO_STAT_NAMES,
    _coco_mapping,
    _empty_results,
    _quiet,
    coco_detections,
    coco_ground_truth,
    coco_ground_truth_dataset,
    coco_stats,
    evaluate_coco,
    is_coco_dataset,
    named_coco_stats,
)
