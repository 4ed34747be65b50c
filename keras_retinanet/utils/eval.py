"""Pascal-VOC-style evaluation of a detector on a dataset, with keras-retinanet 1.0.0's numbers.

The pipeline is the one keras-retinanet's ``evaluate`` used, so that the same detections give the same AP:

1. :func:`_get_detections` runs the model on every image (load, preprocess, resize, predict, scale the boxes
   back), keeps scores above ``score_threshold`` and the ``max_detections`` best, and buckets them per label.
2. :func:`_get_annotations` reads the ground truth per image and label.
3. :func:`evaluate_detections` matches, per class, each detection (highest score first within an image) to the
   annotation it overlaps most; a match with IoU >= ``iou_threshold`` on a not yet detected annotation is a
   true positive, anything else a false positive. Detections of all images are then sorted by score into a
   precision-recall curve whose VOC 2010+ area (:func:`_compute_ap`) is the class's AP.

The dataset ("generator") is duck-typed after keras-retinanet's Generator: ``size()``, ``num_classes()``,
``has_label(label)``, ``label_to_name(label)``, ``load_image(i)``, ``load_annotations(i)``,
``preprocess_image(image)`` and ``resize_image(image)``. The model needs ``predict_on_batch(batch)`` returning
at least ``[boxes (1, D, 4), scores (1, D), labels (1, D)]`` as an inference model does.
"""

import os
import re
import sys
import time
from collections import namedtuple

import cv2
import keras
import numpy as np

from .anchors import compute_overlap
from .visualization import draw_annotations, draw_detections

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


def _compute_ap(recall, precision):
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


def _model_outputs(model, batch):
    """Run ``model.predict_on_batch`` and check it answered like an inference model.

    Returns:
        boxes (1, D, 4), scores (1, D), labels (1, D) as numpy arrays.
    """
    outputs = model.predict_on_batch(batch)
    if not isinstance(outputs, (list, tuple)) or len(outputs) < 3:
        what = f"{len(outputs)} arrays" if isinstance(outputs, (list, tuple)) else type(outputs).__name__
        raise ValueError(
            f"evaluation needs an inference model whose predict returns [boxes, scores, labels]; this model returns "
            f"{what}. A training model must be converted first (models.convert_model, or --convert-model)."
        )
    boxes, scores, labels = (np.asarray(o) for o in outputs[:3])
    if boxes.ndim != 3 or boxes.shape[-1] != 4 or scores.shape != boxes.shape[:2] or labels.shape != boxes.shape[:2]:
        raise ValueError(
            "evaluation needs outputs boxes (1, D, 4), scores (1, D), labels (1, D); got shapes "
            f"{boxes.shape}, {scores.shape}, {labels.shape}. Is this a converted inference model?"
        )
    return boxes, scores, labels


def predict_image(generator, model, index):
    """Detections of one dataset image, in the image's original pixels.

    Preprocesses then resizes the image as keras-retinanet's evaluation did.

    Args:
        generator: the dataset.
        model: an inference model.
        index: image index.

    Returns:
        (raw_image (H, W, 3) uint8, boxes (D, 4), scores (D,), labels (D,), inference_seconds). D is the
        model's number of outputs, padding (score -1) included.
    """
    raw_image = generator.load_image(index)
    image = generator.preprocess_image(raw_image.copy())
    image, scale = generator.resize_image(image)
    if keras.backend.image_data_format() == "channels_first":
        image = image.transpose((2, 0, 1))

    start = time.time()
    boxes, scores, labels = _model_outputs(model, np.expand_dims(image, axis=0))
    inference_time = time.time() - start

    # Back to the original image's pixels (not in place: the model may hand out its own buffers).
    boxes = boxes[0] / scale
    return raw_image, boxes, scores[0], labels[0], inference_time


def _select_detections(boxes, scores, labels, score_threshold, max_detections):
    """Scores strictly above the threshold, the best ``max_detections`` of them, best first.

    Returns:
        boxes (K, 4), scores (K,), labels (K,).
    """
    indices = np.where(scores > score_threshold)[0]
    order = np.argsort(-scores[indices])[:max_detections]
    kept = indices[order]
    return boxes[kept], scores[kept], labels[kept]


def _progbar(target, verbose):
    return keras.utils.Progbar(target, verbose=1 if verbose else 0, unit_name="image") if target > 0 else None


def _get_detections(generator, model, score_threshold=0.05, max_detections=100, save_path=None, verbose=1):
    """Run the model on every image and bucket its detections per label.

    Args:
        generator: the dataset.
        model: an inference model.
        score_threshold: detections with a score at or below it are dropped.
        max_detections: detections kept per image (the best ones).
        save_path: folder where each image is written as ``{index}.png`` with its annotations (green) and
            detections (class colours) drawn; None writes nothing.
        verbose: show a progress bar.

    Returns:
        (all_detections, all_inferences): all_detections[image][label] is a (K, 5) float array
        [x1, y1, x2, y2, score] sorted by decreasing score, None for labels the dataset does not have;
        all_inferences[image] is the seconds predict took.
    """
    num_images, num_classes = generator.size(), generator.num_classes()
    all_detections = [[None] * num_classes for _ in range(num_images)]
    all_inferences = [0.0] * num_images
    if save_path is not None:
        os.makedirs(save_path, exist_ok=True)

    def caption_name(label):
        # A model trained on other classes may predict labels this dataset does not name.
        return generator.label_to_name(label) if generator.has_label(label) else str(label)

    progbar = _progbar(num_images, verbose)
    for i in range(num_images):
        raw_image, boxes, scores, labels, inference_time = predict_image(generator, model, i)
        image_boxes, image_scores, image_labels = _select_detections(
            boxes, scores, labels, score_threshold, max_detections
        )
        image_detections = np.concatenate([image_boxes, image_scores[:, None]], axis=1)

        if save_path is not None:
            draw_annotations(raw_image, generator.load_annotations(i), label_to_name=generator.label_to_name)
            draw_detections(
                raw_image, image_boxes, image_scores, image_labels,
                label_to_name=caption_name, score_threshold=score_threshold,
            )
            cv2.imwrite(os.path.join(save_path, f"{i}.png"), raw_image)

        for label in range(num_classes):
            if generator.has_label(label):
                all_detections[i][label] = image_detections[image_labels == label]
        all_inferences[i] = inference_time
        if progbar is not None:
            progbar.update(i + 1)

    return all_detections, all_inferences


def _get_annotations(generator, verbose=0):
    """Ground-truth boxes per image and label.

    Args:
        generator: the dataset.
        verbose: show a progress bar.

    Returns:
        all_annotations[image][label]: (K, 4) boxes, None for labels the dataset does not have.
    """
    num_images, num_classes = generator.size(), generator.num_classes()
    all_annotations = [[None] * num_classes for _ in range(num_images)]
    progbar = _progbar(num_images, verbose)
    for i in range(num_images):
        annotations = generator.load_annotations(i)
        bboxes = np.asarray(annotations["bboxes"], dtype=np.float64).reshape(-1, 4)
        labels = np.asarray(annotations["labels"]).reshape(-1)
        for label in range(num_classes):
            if generator.has_label(label):
                all_annotations[i][label] = bboxes[labels == label].copy()
        if progbar is not None:
            progbar.update(i + 1)
    return all_annotations


def match_detections(detections, annotations, iou_threshold=0.5):
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


def evaluate_class(all_detections, all_annotations, label, iou_threshold=0.5):
    """Precision-recall curve and AP of one class over the dataset.

    Args:
        all_detections: all_detections[image][label] (K, 5) [x1, y1, x2, y2, score], best first per image.
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

    # Over all images, best score first. np.argsort's default kind, as keras-retinanet, so ties order alike.
    order = np.argsort(-scores)
    true_positives = true_positives[order]
    cumulative_tp = np.cumsum(true_positives)
    cumulative_fp = np.cumsum(1.0 - true_positives)
    recall = cumulative_tp / num_annotations
    precision = cumulative_tp / np.maximum(cumulative_tp + cumulative_fp, np.finfo(np.float64).eps)
    return PrecisionRecall(_compute_ap(recall, precision), num_annotations, precision, recall, scores[order])


def evaluate_detections(all_detections, all_annotations, labels, iou_threshold=0.5):
    """:func:`evaluate_class` for several classes.

    Args:
        all_detections, all_annotations: as :func:`_get_detections` and :func:`_get_annotations` return them.
        labels: the classes to evaluate (those the dataset has).
        iou_threshold: minimum IoU of a true positive.

    Returns:
        {label: PrecisionRecall}.
    """
    return {label: evaluate_class(all_detections, all_annotations, label, iou_threshold) for label in labels}


def evaluate(
    generator,
    model,
    iou_threshold=0.5,
    score_threshold=0.05,
    max_detections=100,
    save_path=None,
    return_curves=False,
    verbose=1,
):
    """Pascal-VOC-style AP of every class the dataset has, as keras-retinanet's ``evaluate``.

    Args:
        generator: the dataset.
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

    average_precisions = {label: (c.average_precision, c.num_annotations) for label, c in curves.items()}
    inference_time = float(np.sum(all_inferences) / generator.size()) if generator.size() else 0.0
    if return_curves:
        return average_precisions, inference_time, curves
    return average_precisions, inference_time


def mean_average_precision(average_precisions):
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


def print_evaluation(average_precisions, label_to_name, inference_time=None, num_images=None, file=None):
    """Print the per-class AP table and the mAPs in the wording of keras-retinanet's evaluate command.

    Args:
        average_precisions: {label: (ap, num_annotations)}.
        label_to_name: callable label -> class name.
        inference_time: mean seconds per image, printed when given with ``num_images``.
        num_images: number of images evaluated.
        file: stream to write to (default stdout).

    Returns:
        (weighted_mAP, mAP) as :func:`mean_average_precision`.
    """
    file = file or sys.stdout
    for label, (average_precision, num_annotations) in average_precisions.items():
        print(
            "{:.0f} instances of class {} with average precision: {:.4f}".format(
                num_annotations, label_to_name(label), average_precision
            ),
            file=file,
        )
    weighted, unweighted = mean_average_precision(average_precisions)
    if sum(num for _, num in average_precisions.values()) == 0:
        print("No test instances found.", file=file)
        return weighted, unweighted
    if inference_time is not None and num_images is not None:
        print("Inference time for {:.0f} images: {:.4f}".format(num_images, inference_time), file=file)
    print("mAP using the weighted average of precisions among classes: {:.4f}".format(weighted), file=file)
    print("mAP: {:.4f}".format(unweighted), file=file)
    return weighted, unweighted


def _safe_file_name(text):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("_") or "class"


def save_precision_recall_plots(curves, output_dir, label_to_name=None, dpi=80):
    """Write one precision-recall plot per class as a PNG.

    Each plot shows the raw curve and its interpolated envelope (whose area is the AP). Uses matplotlib's Agg
    canvas directly, so no display and no pyplot global state are involved.

    Args:
        curves: {label: PrecisionRecall} as ``evaluate(..., return_curves=True)`` returns.
        output_dir: folder to write into (created if missing).
        label_to_name: callable label -> class name for titles and file names; None uses the label.
        dpi: resolution of the 6x4.5 inch figure.

    Returns:
        {label: path of the PNG written}, file names ``precision_recall_{label}_{name}.png``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    os.makedirs(output_dir, exist_ok=True)
    paths = {}
    for label, curve in curves.items():
        name = label_to_name(label) if label_to_name else str(label)
        figure = Figure(figsize=(6, 4.5), dpi=dpi)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot(1, 1, 1)
        if len(curve.recall):
            # The envelope over the sentinel-extended curve is what _compute_ap integrates.
            recall = np.concatenate(([0.0], curve.recall, [1.0]))
            envelope = np.maximum.accumulate(np.concatenate(([0.0], curve.precision, [0.0]))[::-1])[::-1]
            axes.plot(curve.recall, curve.precision, ".-", color="tab:blue", label="precision")
            axes.step(recall, envelope, where="pre", color="tab:orange", label="interpolated (area = AP)")
            axes.legend(loc="lower left")
        else:
            axes.text(0.5, 0.5, "no annotations of this class", ha="center", va="center")
        axes.set_xlim(0.0, 1.0)
        axes.set_ylim(0.0, 1.05)
        axes.set_xlabel("recall")
        axes.set_ylabel("precision")
        axes.grid(True, alpha=0.3)
        axes.set_title(
            "{}: AP {:.4f} ({:.0f} instances)".format(name, curve.average_precision, curve.num_annotations)
        )
        path = os.path.join(output_dir, f"precision_recall_{label}_{_safe_file_name(name)}.png")
        figure.savefig(path)
        paths[label] = path
    return paths
