"""The evaluation ``retinanet-evaluate`` runs, from the configuration: COCO and/or Pascal VOC, printed and plotted."""

import os

from ..config import RetinaNetConfig
from .coco import evaluate_coco
from .report import print_evaluation, save_precision_recall_plots
from .voc import evaluate


def evaluate_model(generator, model, config: RetinaNetConfig) -> float:
    """Evaluate ``model`` on ``generator`` as ``config.evaluation`` says, print the results, write the plots.

    COCO datasets get COCO metrics (and only those); other datasets get keras-retinanet's
    per-class Pascal VOC AP table, plus COCO metrics with ``coco_metrics``.

    Returns:
        COCO AP@[.5:.95] on COCO data, else the (weighted, if configured) mAP.
    """
    settings = config.evaluation
    if settings.save_path:
        os.makedirs(settings.save_path, exist_ok=True)

    if config.data.dataset_type == "coco" or settings.coco_metrics:
        coco_stats = evaluate_coco(
            generator, model, threshold=settings.score_threshold, output_dir=settings.save_path or "."
        )
        if config.data.dataset_type == "coco":
            return coco_stats[0] if coco_stats is not None else 0.0

    average_precisions, inference_time, curves = evaluate(
        generator,
        model,
        iou_threshold=settings.iou_threshold,
        score_threshold=settings.score_threshold,
        max_detections=settings.max_detections,
        save_path=settings.save_path,
        return_curves=True,
    )
    weighted, unweighted = print_evaluation(
        average_precisions, generator.label_to_name, inference_time=inference_time, num_images=generator.size()
    )
    if settings.save_path:
        save_precision_recall_plots(curves, settings.save_path, label_to_name=generator.label_to_name)
    return weighted if settings.weighted_average else unweighted
