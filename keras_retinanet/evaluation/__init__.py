"""Evaluation of detectors: Pascal-VOC AP (keras-retinanet's numbers), COCO metrics, and an :class:`Evaluator`
interface the training callbacks use.

Modules:
    average_precision: matching and VOC AP from detections, plain numpy.
    detections: running an inference model over images and datasets (boxes in image pixels).
    voc: :func:`evaluate`, keras-retinanet's Pascal-VOC evaluation of a model on a dataset.
    coco: COCO metrics with pycocotools, on COCO or any dataset.
    report: the printed AP table and precision-recall plots.
    evaluator: :class:`Evaluator`, :class:`VOCEvaluator`, :class:`COCOEvaluator`.
    run: :func:`evaluate_model`, the evaluation retinanet-evaluate runs from a configuration.
"""

from .average_precision import (
    PrecisionRecall,
    evaluate_class,
    evaluate_detections,
    match_detections,
    mean_average_precision,
)
from .coco import COCO_STAT_NAMES, coco_ground_truth, coco_ground_truth_dataset, evaluate_coco
from .detections import detect_image, input_transform_of, keep_confident, predict_image
from .evaluator import HEADLINE_KEY, COCOEvaluator, Evaluator, VOCEvaluator
from .report import print_evaluation, save_precision_recall_plots
from .run import evaluate_model
from .voc import evaluate

__all__ = [
    "COCOEvaluator",
    "COCO_STAT_NAMES",
    "Evaluator",
    "HEADLINE_KEY",
    "PrecisionRecall",
    "VOCEvaluator",
    "coco_ground_truth",
    "coco_ground_truth_dataset",
    "detect_image",
    "evaluate",
    "evaluate_class",
    "evaluate_coco",
    "evaluate_detections",
    "evaluate_model",
    "input_transform_of",
    "keep_confident",
    "match_detections",
    "mean_average_precision",
    "predict_image",
    "print_evaluation",
    "save_precision_recall_plots",
]
