"""Evaluation of detectors: Pascal-VOC AP (keras-retinanet's numbers), COCO metrics, and an :class:`Evaluator`
interface the training callbacks use.

Modules:
    average_precision: matching and VOC AP from detections, plain numpy.
    detections: running a detector (or a bare inference model) over a dataset (boxes in image pixels).
    voc: :func:`evaluate`, keras-retinanet's Pascal-VOC evaluation of a model on a dataset.
    coco: COCO metrics with pycocotools, on COCO or any dataset.
    report: the printed AP table, precision-recall plots and the per-class AP chart.
    evaluator: :class:`Evaluator`, :class:`VOCEvaluator`, :class:`COCOEvaluator`.
    run: :func:`evaluate_model` / :func:`run_evaluation`, the evaluation retinanet-evaluate runs from a
        configuration.
    record: :func:`record_evaluation`, that evaluation kept as evaluation.json and per_class_ap.png.
"""

from .average_precision import (
    PrecisionRecall,
    evaluate_class,
    evaluate_detections,
    match_detections,
    mean_average_precision,
    ranking_order,
)
from .coco import COCO_STAT_NAMES, coco_ground_truth, coco_ground_truth_dataset, evaluate_coco
from .detections import input_transform_of, keep_confident, predict_image
from .evaluator import HEADLINE_KEY, COCOEvaluator, Evaluator, VOCEvaluator
from .record import EvaluationRecord, record_evaluation
from .report import print_evaluation, save_per_class_ap_chart, save_precision_recall_plots
from .run import evaluate_model, run_evaluation
from .voc import evaluate

__all__ = [
    "COCOEvaluator",
    "COCO_STAT_NAMES",
    "EvaluationRecord",
    "Evaluator",
    "HEADLINE_KEY",
    "PrecisionRecall",
    "VOCEvaluator",
    "coco_ground_truth",
    "coco_ground_truth_dataset",
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
    "ranking_order",
    "record_evaluation",
    "run_evaluation",
    "save_per_class_ap_chart",
    "save_precision_recall_plots",
]
