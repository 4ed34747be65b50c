"""One interface for evaluating any detection model on any dataset, in the manner of detectron2's DatasetEvaluator.

An :class:`Evaluator` runs a model over a dataset and answers a flat results dict. Every evaluator puts its
headline number under ``"mAP"``, so that training callbacks, best-model snapshots and early stopping can follow
one key whichever metric is configured; the rest of the dict holds the metric's details.
"""

from typing import Any, Dict, Optional

from .average_precision import mean_average_precision
from .coco import COCO_STAT_NAMES, evaluate_coco, named_coco_stats
from .voc import evaluate

HEADLINE_KEY = "mAP"


class Evaluator:
    """Evaluates a detector on a dataset.

    Subclasses implement :meth:`evaluate`. The dataset follows keras-retinanet's Generator API (see
    :mod:`keras_retinanet.evaluation.detections`); the model is a :class:`keras_retinanet.inference.Detector`
    (run on each image as it predicts), or a bare inference model whose ``predict_on_batch`` answers
    ``[boxes (1, D, 4), scores (1, D), labels (1, D)]`` (run on the image as the dataset prepares it).
    """

    def evaluate(self, generator, model) -> Dict[str, Any]:
        """Results of ``model`` on ``generator``: a dict that always holds the headline ``"mAP"`` (a float)."""
        raise NotImplementedError


class VOCEvaluator(Evaluator):
    """Pascal-VOC AP per class (:func:`keras_retinanet.evaluation.voc.evaluate`).

    Args:
        iou_threshold: minimum IoU of a true positive.
        score_threshold: detections with a score at or below it are dropped.
        max_detections: detections kept per image.
        save_path: folder for images with annotations and detections drawn, or None.
        weighted_average: headline mAP weighted by each class's number of annotations instead of a plain mean.
        verbose: show a progress bar over the images.

    Results:
        ``mAP`` (weighted or unweighted as configured), ``weighted_mAP``, ``unweighted_mAP``,
        ``average_precisions`` {label: (ap, num_annotations)} and ``inference_time`` (mean seconds per image).
    """

    def __init__(
        self,
        iou_threshold: float = 0.5,
        score_threshold: float = 0.05,
        max_detections: int = 100,
        save_path: Optional[str] = None,
        weighted_average: bool = False,
        verbose=0,
    ):
        self.iou_threshold = iou_threshold
        self.score_threshold = score_threshold
        self.max_detections = max_detections
        self.save_path = save_path
        self.weighted_average = weighted_average
        self.verbose = verbose

    def evaluate(self, generator, model) -> Dict[str, Any]:
        average_precisions, inference_time = evaluate(
            generator,
            model,
            iou_threshold=self.iou_threshold,
            score_threshold=self.score_threshold,
            max_detections=self.max_detections,
            save_path=self.save_path,
            verbose=self.verbose,
        )
        weighted, unweighted = mean_average_precision(average_precisions)
        return {
            HEADLINE_KEY: weighted if self.weighted_average else unweighted,
            "weighted_mAP": weighted,
            "unweighted_mAP": unweighted,
            "average_precisions": average_precisions,
            "inference_time": inference_time,
        }


class COCOEvaluator(Evaluator):
    """COCO metrics (:func:`keras_retinanet.evaluation.coco.evaluate_coco`), on COCO or any other dataset.

    Args:
        threshold: minimum score of a detection.
        output_dir: folder for the results JSON files, or None to write none.
        verbose: progress bar and pycocotools' printed summary.

    Results:
        ``mAP`` = AP@[.5:.95] (the first COCO stat), then the 12 stats under :data:`COCO_STAT_NAMES`, all floats,
        and ``average_precisions``: {label: (AP@[.5:.95], number of annotations)}.
    """

    def __init__(self, threshold: float = 0.05, output_dir: Optional[str] = ".", verbose=0):
        self.threshold = threshold
        self.output_dir = output_dir
        self.verbose = verbose

    def evaluate(self, generator, model) -> Dict[str, Any]:
        stats, per_class = evaluate_coco(
            generator, model, threshold=self.threshold, output_dir=self.output_dir, verbose=self.verbose,
            per_class=True,
        )
        named = named_coco_stats(stats)
        return {HEADLINE_KEY: named[COCO_STAT_NAMES[0]], **named, "average_precisions": per_class}
