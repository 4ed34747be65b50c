"""Pascal-VOC average precision from detections and ground truth, in plain numpy (keras-retinanet 1.0.0's numbers).

Per class, each image's detections (highest score first) are matched to the annotation they overlap most; a
match with IoU >= ``iou_threshold`` on a not yet detected annotation is a true positive, anything else a false
positive. Detections of all images are then sorted by score into a precision-recall curve whose VOC 2010+ area
(:func:`_compute_ap`) is the class's AP.

Equal scores rank in the order the detections were collected: image order, then the model's output order
within an image (:func:`ranking_order`, a stable sort), so that the AP does not depend on the numpy version.

Nothing here runs a model: the detections come from :mod:`keras_retinanet.evaluation.detections` or from
anywhere else in the same layout.
"""

from collections import namedtuple
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np

from ..anchors import compute_overlap

PrecisionRecall = namedtuple(
    "PrecisionRecall", ["average_precision", "num_annotations", "precision", "recall", "scores"]
)
PrecisionRecall.__doc__ = """One class's evaluation.

Fields:
    average_precision: float, the VOC area under the interpolated curve (0 for a class without annotations).
    num_annotations: float, ground-truth boxes of the class over the dataset.
    precision: (D,) float64 precision after each detection, detections sorted by decreasing score.
    recall: (D,) float64 recall after each detection (empty for a class without annotations).
    scores: (D,) float64 the detections' scores in that order.
"""

# all_detections[image][label]: (K, 5) [x1, y1, x2, y2, score] or None; all_annotations[image][label]: (A, 4) or None.
PerImagePerLabel = List[List[Optional[np.ndarray]]]


def _compute_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the interpolated precision-recall curve (Pascal VOC 2010+ / py-faster-rcnn).

    The precision at each recall is replaced by the best precision at that recall or above (its envelope),
    and the area is summed over the points where recall changes.

    Args:
        recall: (D,) recall after each detection, non-decreasing.
        precision: (D,) precision after each detection.

    Returns:
        float, the average precision in [0, 1].
    """
    # Sentinels: the curve starts at recall 0 and ends at recall 1 with precision 0.
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))

    # Envelope: precision made non-increasing in recall, from the right.
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]

    changes = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[changes + 1] - mrec[changes]) * mpre[changes + 1]))


def ranking_order(scores: np.ndarray) -> np.ndarray:
    """Indices that rank detections by decreasing score, equal scores in the order they are given.

    The tie-break is part of the AP: with tied scores, which of them counts first moves the precision-recall
    curve. keras-retinanet used ``np.argsort``'s default kind (an unstable introsort, or a SIMD sort where
    numpy has one), whose order of equal scores changed between numpy versions; a stable sort keeps the order
    detections were collected in (image order, then the model's output order within an image) on every
    numpy. Distinct scores rank alike either way.

    Args:
        scores: (D,) scores.

    Returns:
        (D,) int64 indices, best first.
    """
    return np.argsort(-np.asarray(scores), kind="stable")


def match_detections(detections: np.ndarray, annotations: np.ndarray, iou_threshold: float = 0.5) -> np.ndarray:
    """Mark one image's detections of one class as true or false positives.

    Detections are taken in the given order (highest score first); each is matched to the annotation it
    overlaps most. It is a true positive when that IoU is >= ``iou_threshold`` and the annotation was not
    already matched, otherwise a false positive (a duplicate, a poor box, or an image without annotations).

    Args:
        detections: (D, 4+) boxes [x1, y1, x2, y2, ...], best first.
        annotations: (A, 4) ground-truth boxes.
        iou_threshold: minimum IoU of a match.

    Returns:
        (D,) float64, 1 for a true positive, 0 for a false positive.
    """
    true_positives = np.zeros((len(detections),), dtype=np.float64)
    if len(annotations) == 0 or len(detections) == 0:
        return true_positives
    overlaps = compute_overlap(np.asarray(detections)[:, :4], annotations)
    detected = set()
    for d, row in enumerate(overlaps):
        assigned = int(np.argmax(row))
        if row[assigned] >= iou_threshold and assigned not in detected:
            true_positives[d] = 1.0
            detected.add(assigned)
    return true_positives


def evaluate_class(
    all_detections: PerImagePerLabel, all_annotations: PerImagePerLabel, label: int, iou_threshold: float = 0.5
) -> PrecisionRecall:
    """Precision-recall curve and AP of one class over the dataset.

    Args:
        all_detections: all_detections[image][label] (K, 5) [x1, y1, x2, y2, score], best first per image;
            equal scores rank in image order, then in this order within an image.
        all_annotations: all_annotations[image][label] (A, 4).
        label: the class.
        iou_threshold: minimum IoU of a true positive.

    Returns:
        :class:`PrecisionRecall`; a class without annotations has AP 0 and 0 annotations, as in keras-retinanet.
    """
    true_positives, scores = [], []
    num_annotations = 0.0
    for detections, annotations in zip(
        (per_image[label] for per_image in all_detections), (per_image[label] for per_image in all_annotations)
    ):
        num_annotations += annotations.shape[0]
        true_positives.append(match_detections(detections, annotations, iou_threshold))
        scores.append(np.asarray(detections, dtype=np.float64)[:, 4] if len(detections) else np.zeros((0,)))

    true_positives = np.concatenate(true_positives) if true_positives else np.zeros((0,))
    scores = np.concatenate(scores) if scores else np.zeros((0,))
    if num_annotations == 0:
        return PrecisionRecall(0.0, 0.0, np.zeros((0,)), np.zeros((0,)), np.zeros((0,)))

    order = ranking_order(scores)
    true_positives = true_positives[order]
    cumulative_tp = np.cumsum(true_positives)
    cumulative_fp = np.cumsum(1.0 - true_positives)
    recall = cumulative_tp / num_annotations
    precision = cumulative_tp / np.maximum(cumulative_tp + cumulative_fp, np.finfo(np.float64).eps)
    return PrecisionRecall(_compute_ap(recall, precision), num_annotations, precision, recall, scores[order])


def evaluate_detections(
    all_detections: PerImagePerLabel,
    all_annotations: PerImagePerLabel,
    labels: Iterable[int],
    iou_threshold: float = 0.5,
) -> Dict[int, PrecisionRecall]:
    """:func:`evaluate_class` for several classes.

    Args:
        all_detections, all_annotations: per image and label, as
            :func:`keras_retinanet.evaluation.detections._get_detections` and ``_get_annotations`` return them.
        labels: the classes to evaluate (those the dataset has).
        iou_threshold: minimum IoU of a true positive.

    Returns:
        {label: PrecisionRecall}.
    """
    return {label: evaluate_class(all_detections, all_annotations, label, iou_threshold) for label in labels}


def mean_average_precision(average_precisions: Dict[int, Tuple[float, float]]) -> Tuple[float, float]:
    """Weighted and unweighted mean of per-class APs, as keras-retinanet's evaluate command computed them.

    Args:
        average_precisions: {label: (ap, num_annotations)}.

    Returns:
        (weighted, unweighted): weighted by each class's number of annotations; unweighted over the classes
        that have annotations. Both are 0.0 when no class has annotations.
    """
    instances = [num for _, num in average_precisions.values()]
    precisions = [ap for ap, _ in average_precisions.values()]
    total_instances = sum(instances)
    classes_present = sum(num > 0 for num in instances)
    if total_instances == 0 or classes_present == 0:
        return 0.0, 0.0
    weighted = sum(ap * num for ap, num in zip(precisions, instances)) / total_instances
    unweighted = sum(precisions) / classes_present
    return float(weighted), float(unweighted)
