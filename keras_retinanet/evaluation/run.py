"""The evaluation ``retinanet-evaluate`` runs, from the configuration: COCO and/or Pascal VOC, printed and plotted."""

import os
from typing import Any, Dict, List, Optional

from ..config import RetinaNetConfig
from .coco import evaluate_coco, named_coco_stats
from .report import print_evaluation, save_precision_recall_plots
from .voc import evaluate

# What the headline number of a run is, by how it was computed.
METRIC_COCO = "COCO AP@[.5:.95]"
METRIC_MAP = "mAP"
METRIC_WEIGHTED_MAP = "weighted mAP"


def _class_rows(average_precisions: Dict[int, tuple], label_to_name) -> List[Dict[str, Any]]:
    """{label: (ap, num_annotations)} as JSON-able rows in label order (the printed order)."""
    return [
        {"label": int(label), "name": str(label_to_name(label)), "num_annotations": float(num),
         "average_precision": float(ap)}
        for label, (ap, num) in average_precisions.items()
    ]  # fmt: skip


def run_evaluation(generator, model, config: RetinaNetConfig, output_dir: Optional[str] = None) -> Dict[str, Any]:
    """Evaluate ``model`` on ``generator`` as ``config.evaluation`` says, print the results, write the plots.

    COCO datasets get COCO metrics (and only those); other datasets get keras-retinanet's
    per-class Pascal VOC AP table, plus COCO metrics with ``coco_metrics``. Images with detections drawn and
    precision-recall plots are written only with ``save_path``.

    Args:
        generator: the dataset.
        model: an inference model or Detector.
        config: the configuration; ``config.evaluation`` holds the settings.
        output_dir: folder for pycocotools' result files; None: ``save_path``, else the working directory
            (where keras-retinanet wrote them).

    Returns:
        dict with ``mAP`` (the headline: COCO AP@[.5:.95] on COCO data, else the mAP, weighted if configured),
        ``metric`` (which of those it is), ``pascal_voc`` (None on COCO data; else ``classes`` rows {label, name,
        num_annotations, average_precision} in label order, ``mAP``, ``weighted_mAP``, ``inference_time``
        (mean seconds per image), ``num_images``, ``iou_threshold``) and ``coco`` (None unless computed; else
        ``stats`` {name: value} in :data:`COCO_STAT_NAMES` order and per-class AP@[.5:.95] ``classes`` rows).
        The numbers are the unrounded values of what is printed.
    """
    settings = config.evaluation
    if settings.save_path:
        os.makedirs(settings.save_path, exist_ok=True)
    results: Dict[str, Any] = {"mAP": 0.0, "metric": METRIC_COCO, "pascal_voc": None, "coco": None}

    if config.data.dataset_type == "coco" or settings.coco_metrics:
        stats, per_class = evaluate_coco(
            generator, model, threshold=settings.score_threshold,
            output_dir=output_dir or settings.save_path or ".", per_class=True,
        )  # fmt: skip
        results["coco"] = {"stats": named_coco_stats(stats), "classes": _class_rows(per_class, generator.label_to_name)}
        if config.data.dataset_type == "coco":
            results["mAP"] = float(stats[0])
            return results

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
    results["pascal_voc"] = {
        "classes": _class_rows(average_precisions, generator.label_to_name),
        "mAP": float(unweighted),
        "weighted_mAP": float(weighted),
        "inference_time": float(inference_time),
        "num_images": int(generator.size()),
        "iou_threshold": float(settings.iou_threshold),
    }
    results["mAP"] = float(weighted if settings.weighted_average else unweighted)
    results["metric"] = METRIC_WEIGHTED_MAP if settings.weighted_average else METRIC_MAP
    return results


def evaluate_model(generator, model, config: RetinaNetConfig) -> float:
    """:func:`run_evaluation`'s headline number: COCO AP@[.5:.95] on COCO data, else the (weighted, if
    configured) mAP."""
    return run_evaluation(generator, model, config)["mAP"]

