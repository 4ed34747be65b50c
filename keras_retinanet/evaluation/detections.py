"""Running a detector over a dataset, with boxes back in each image's own pixels.

Each image goes through a :class:`keras_retinanet.inference.Detector` (its one step, ``run_batch``): the detector
given, which prepares images with its own InputTransform and slices them into tiles when it has ``tiles``, or, for a
bare inference model (the training callbacks'), a Detector preparing images as the dataset does.

A dataset ("generator") is duck-typed after keras-retinanet's Generator: ``size()``, ``num_classes()``,
``has_label(label)``, ``label_to_name(label)``, ``load_image(i)``, ``load_annotations(i)``, and either an
``input_transform`` (an InputTransform, as every Generator has) or ``preprocess_image(image)`` and
``resize_image(image)``. The model needs ``predict_on_batch(batch)`` returning at least
``[boxes (1, D, 4), scores (1, D), labels (1, D)]`` as an inference model does.
"""

import os
from typing import List, Optional, Tuple

import cv2
import keras
import numpy as np

from ..data.input_transform import InputTransform, as_input_transform
from ..inference.detector import Detector
from ..drawing import draw_annotations, draw_detections
from .average_precision import ranking_order


def input_transform_of(generator) -> InputTransform:
    """The InputTransform that prepares a dataset's images: its ``input_transform``, or one made of its
    ``preprocess_image`` and ``resize_image`` methods (duck-typed datasets without one)."""
    transform = getattr(generator, "input_transform", None)
    if isinstance(transform, InputTransform):
        return transform
    return as_input_transform(generator.preprocess_image, generator.resize_image)


def keep_confident(
    boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, score_threshold: float
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The detections scoring above ``score_threshold`` (padding rows never do): (K, 4), (K,), (K,)."""
    keep = scores > score_threshold
    return boxes[keep], scores[keep], labels[keep]


def as_detector(model, generator) -> Detector:
    """``model`` if it is a :class:`Detector`; else a Detector of the bare inference model (anything whose
    ``predict_on_batch`` answers ``[boxes, scores, labels]``) preparing images as the dataset does."""
    if isinstance(model, Detector):
        return model
    return Detector(model, spec=None, input_transform=input_transform_of(generator))


def predict_image(generator, model, index: int):
    """Detections of one dataset image, in the image's original pixels.

    Args:
        generator: the dataset.
        model: a :class:`keras_retinanet.inference.Detector` (it prepares the image with its own InputTransform,
            and slices it into tiles when it has ``tiles``, the path retinanet-predict takes), or a bare inference
            model, run on the image as the dataset prepares it (:func:`as_detector`).
        index: image index.

    Returns:
        (raw_image (H, W, 3) uint8, boxes (D, 4), scores (D,), labels (D,), network seconds): every detection the
        model gives (above its own filter's threshold), best first.
    """
    raw_image = generator.load_image(index)
    # A copy: raw_image is returned for drawing, whatever the preprocessing does to its input.
    result = as_detector(model, generator).predict(raw_image.copy())
    return raw_image, result.boxes, result.scores, result.labels, result.network_seconds


def _select_detections(boxes, scores, labels, score_threshold, max_detections):
    """Scores strictly above the threshold, the best ``max_detections`` of them, best first; equal scores keep
    the model's output order (a stable sort: which of them are kept and matched first does not depend on numpy).

    Returns:
        boxes (K, 4), scores (K,), labels (K,).
    """
    indices = np.where(scores > score_threshold)[0]
    order = ranking_order(scores[indices])[:max_detections]
    kept = indices[order]
    return boxes[kept], scores[kept], labels[kept]


def _progbar(target: int, verbose) -> Optional[keras.utils.Progbar]:
    return keras.utils.Progbar(target, verbose=1 if verbose else 0, unit_name="image") if target > 0 else None


def _get_detections(
    generator, model, score_threshold=0.05, max_detections=100, save_path=None, verbose=1
) -> Tuple[List[List[Optional[np.ndarray]]], List[float]]:
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
        [x1, y1, x2, y2, score] sorted by decreasing score (equal scores in the model's output order), None
        for labels the dataset does not have; all_inferences[image] is the seconds predict took.
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


def _get_annotations(generator, verbose=0) -> List[List[Optional[np.ndarray]]]:
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
