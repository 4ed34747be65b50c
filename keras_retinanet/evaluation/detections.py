"""Running an inference model over images and datasets, with boxes back in each image's own pixels.

Images become network input through :class:`keras_retinanet.data.input_transform.InputTransform` only, in
keras-retinanet's evaluation order (preprocess, then resize the float image: ``preprocess_first=True``), so
that the same model gives the same detections, and APs, as keras-retinanet.

A dataset ("generator") is duck-typed after keras-retinanet's Generator: ``size()``, ``num_classes()``,
``has_label(label)``, ``label_to_name(label)``, ``load_image(i)``, ``load_annotations(i)``, and either an
``input_transform`` (an InputTransform, as every Generator has) or ``preprocess_image(image)`` and
``resize_image(image)``. The model needs ``predict_on_batch(batch)`` returning at least
``[boxes (1, D, 4), scores (1, D), labels (1, D)]`` as an inference model does.
"""

import os
import time
from typing import Callable, List, Optional, Tuple, Union

import cv2
import keras
import numpy as np

from ..data.input_transform import InputTransform
from ..utils.visualization import draw_annotations, draw_detections
from .average_precision import ranking_order


class _StepsTransform(InputTransform):
    """An :class:`InputTransform` whose two steps are given functions.

    For datasets and callers that hold a ``preprocess_image`` and a ``resize_image`` of their own instead of an
    InputTransform; the order of the steps still comes from :meth:`InputTransform.__call__`.

    Args:
        preprocess: image -> float network values.
        resize: image -> (resized image, scale), or None to keep the size (scale 1).
    """

    def __init__(self, preprocess: Callable, resize: Optional[Callable] = None):
        super().__init__(preprocess, resize=resize is not None)
        self._resize_step = resize

    def resize(self, image: np.ndarray) -> Tuple[np.ndarray, float]:
        if self._resize_step is None:
            return image, 1.0
        return self._resize_step(image)


def as_input_transform(
    preprocess: Union[InputTransform, Callable], resize: Optional[Callable] = None
) -> InputTransform:
    """An InputTransform as given, or one made of a preprocess and an optional resize function.

    Args:
        preprocess: an InputTransform, or a function image -> float network values.
        resize: with a function ``preprocess``: image -> (resized image, scale), or None to keep the size.
    """
    if isinstance(preprocess, InputTransform):
        if resize is not None:
            raise TypeError("an InputTransform resizes by itself; pass no separate resize function with it")
        return preprocess
    return _StepsTransform(preprocess, resize)


def input_transform_of(generator) -> InputTransform:
    """The InputTransform that prepares a dataset's images: its ``input_transform``, or one made of its
    ``preprocess_image`` and ``resize_image`` methods (duck-typed datasets without one)."""
    transform = getattr(generator, "input_transform", None)
    if isinstance(transform, InputTransform):
        return transform
    return as_input_transform(generator.preprocess_image, generator.resize_image)


def _model_outputs(model, batch: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def _run_model(model, transform: InputTransform, image: np.ndarray):
    """Prepare one image, predict, and time the prediction.

    Returns:
        (boxes (1, D, 4), scores (1, D), labels (1, D), scale, seconds); boxes in network-input pixels.
    """
    network_input, scale = transform(image, preprocess_first=True)
    if keras.backend.image_data_format() == "channels_first":
        network_input = network_input.transpose((2, 0, 1))
    start = time.perf_counter()
    boxes, scores, labels = _model_outputs(model, np.expand_dims(network_input, axis=0))
    return boxes, scores, labels, scale, time.perf_counter() - start


def detect_image(
    model, image: np.ndarray, preprocess_image: Union[InputTransform, Callable], resize_image: Optional[Callable] = None
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Detections of an inference model on one BGR image.

    Args:
        model: inference model (outputs boxes, scores, labels).
        image: (H, W, 3) uint8 BGR image.
        preprocess_image: an InputTransform, or a function mapping the image to the network's input values.
        resize_image: with a function ``preprocess_image``: image -> (resized image, scale), or None to keep
            the size.

    Returns:
        boxes: (D, 4) float32 boxes in the coordinates of ``image``.
        scores: (D,) float32 scores, best first; padded rows have score -1.
        labels: (D,) int32 labels.
        seconds: time taken by the model.
    """
    transform = as_input_transform(preprocess_image, resize_image)
    boxes, scores, labels, scale, seconds = _run_model(model, transform, image)
    boxes = np.asarray(boxes[0], dtype=np.float32) / scale
    return boxes, np.asarray(scores[0], dtype=np.float32), np.asarray(labels[0], dtype=np.int32), seconds


def keep_confident(
    boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, score_threshold: float
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The detections scoring above ``score_threshold`` (padding rows never do): (K, 4), (K,), (K,)."""
    keep = scores > score_threshold
    return boxes[keep], scores[keep], labels[keep]


def _transform_for(generator, model) -> InputTransform:
    """How to prepare a dataset's images for a model: the model's own InputTransform when it brings one
    (a :class:`keras_retinanet.inference.Detector`, so that evaluation runs the detector's inference path),
    else the dataset's."""
    transform = getattr(model, "input_transform", None)
    return transform if isinstance(transform, InputTransform) else input_transform_of(generator)


def predict_image(generator, model, index: int):
    """Detections of one dataset image, in the image's original pixels.

    Args:
        generator: the dataset.
        model: an inference model, or a Detector (which prepares the images with its own InputTransform).
        index: image index.

    Returns:
        (raw_image (H, W, 3) uint8, boxes (D, 4), scores (D,), labels (D,), inference_seconds). D is the
        model's number of outputs, padding (score -1) included; arrays keep the model's dtypes.
    """
    raw_image = generator.load_image(index)
    if getattr(model, "tiling", None) is not None:
        # A Detector slicing images into tiles (retinanet-evaluate --tile): its boxes are in the image's pixels.
        boxes, scores, labels, seconds = model.detect_array(raw_image.copy())
        return raw_image, boxes, scores, labels, seconds
    # A copy: raw_image is returned for drawing, whatever the preprocessing does to its input.
    boxes, scores, labels, scale, seconds = _run_model(model, _transform_for(generator, model), raw_image.copy())
    # Back to the original image's pixels (not in place: the model may hand out its own buffers).
    return raw_image, boxes[0] / scale, scores[0], labels[0], seconds


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
