"""Pascal-VOC-style evaluation of a detector on a dataset, with keras-retinanet 1.0.0's numbers.

The pipeline is the one keras-retinanet's ``evaluate`` used, so that the same detections give the same AP:
:func:`~keras_retinanet.evaluation.detections._get_detections` runs the model on every image,
:func:`~keras_retinanet.evaluation.detections._get_annotations` reads the ground truth, and
:func:`~keras_retinanet.evaluation.average_precision.evaluate_detections` turns both into per-class curves.
"""

from typing import Dict, Optional, Tuple

import numpy as np

from .average_precision import evaluate_detections
from .detections import _get_annotations, _get_detections


def evaluate(
    generator,
    model,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.05,
    max_detections: int = 100,
    save_path: Optional[str] = None,
    return_curves: bool = False,
    verbose=1,
) -> Tuple:
    """Pascal-VOC-style AP of every class the dataset has, as keras-retinanet's ``evaluate``.

    Args:
        generator: the dataset (see :mod:`keras_retinanet.evaluation.detections`).
        model: an inference model (a converted one; a training model is refused with a clear error).
        iou_threshold: minimum IoU of a true positive.
        score_threshold: detections with a score at or below it are dropped.
        max_detections: detections kept per image.
        save_path: folder for the images with annotations and detections drawn, or None.
        return_curves: also return the per-class :class:`PrecisionRecall` curves.
        verbose: show a progress bar over the images.

    Returns:
        (average_precisions, mean_inference_time), with average_precisions {label: (ap, num_annotations)};
        with ``return_curves`` a third element {label: PrecisionRecall}.
    """
    all_detections, all_inferences = _get_detections(
        generator, model, score_threshold=score_threshold, max_detections=max_detections,
        save_path=save_path, verbose=verbose,
    )
    all_annotations = _get_annotations(generator)
    labels = [label for label in range(generator.num_classes()) if generator.has_label(label)]
    curves = evaluate_detections(all_detections, all_annotations, labels, iou_threshold=iou_threshold)

    average_precisions: Dict[int, Tuple[float, float]] = {
        label: (c.average_precision, c.num_annotations) for label, c in curves.items()
    }
    inference_time = float(np.sum(all_inferences) / generator.size()) if generator.size() else 0.0
    if return_curves:
        return average_precisions, inference_time, curves
    return average_precisions, inference_time
