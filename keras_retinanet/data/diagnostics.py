"""Checks on a dataset that explain a detector that cannot learn: objects no anchor matches.

:func:`anchor_coverage` gives everything ``retinanet-debug`` draws for one image;
:func:`count_unmatched_annotations` is the warning ``retinanet-train`` prints.
"""

import dataclasses
from typing import Optional, Tuple

import numpy as np

from ..errors import DatasetError
from ..anchors import compute_gt_annotations, unmatched_annotations


@dataclasses.dataclass(frozen=True)
class AnchorCoverage:
    """One image as the network sees it, with its anchors and which of them match.

    Attributes:
        image: (H, W, 3) uint8 BGR image, augmented (if asked) and resized, not preprocessed.
        boxes: (K, 4) float64 annotations in the pixels of ``image``.
        labels: (K,) their labels.
        anchors: (N, 4) anchors of ``image``'s shape.
        unmatched: (K,) bool, annotations that no anchor matches with IoU >= 0.5 (never learned).
        positive_anchors: (N,) bool, anchors that training assigns to an annotation (IoU >= 0.5),
            or None when not asked for.
    """

    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    anchors: np.ndarray
    unmatched: np.ndarray
    positive_anchors: Optional[np.ndarray] = None


def anchor_coverage(generator, image_index: int, augmentation=None, rng=None, positive_anchors: bool = True) -> AnchorCoverage:
    """Anchors and annotations of one image after the steps of training that move boxes.

    Args:
        generator: a :class:`keras_retinanet.preprocessing.generator.Generator` (its reader,
            ``input_transform`` and ``generate_anchors`` are used).
        image_index: the image.
        augmentation: an :class:`~keras_retinanet.data.augmentation.Augmentation` applied before
            resizing (e.g. to look at ``--random-transform``), or None.
        rng: the random state the augmentation draws from (default: ``generator.augmentation_rng()``).
        positive_anchors: also find the anchors assigned to an annotation (a second matching pass).
    """
    image = generator.load_image(image_index)
    annotations = generator.load_annotations(image_index)
    if augmentation is not None:
        rng = generator.augmentation_rng() if rng is None else rng
        image, annotations = augmentation(image, annotations, rng)
    image, scale = generator.input_transform.resize(image)
    boxes = np.asarray(annotations["bboxes"], dtype=np.float64).reshape((-1, 4)) * scale
    anchors = generator.generate_anchors(image.shape)
    positive = None
    if positive_anchors:
        positive = compute_gt_annotations(anchors, boxes)[0] if len(boxes) else np.zeros((len(anchors),), dtype=bool)
    return AnchorCoverage(
        image=np.ascontiguousarray(image, dtype=np.uint8),
        boxes=boxes,
        labels=np.asarray(annotations["labels"]),
        anchors=anchors,
        unmatched=unmatched_annotations(anchors, boxes),
        positive_anchors=positive,
    )


def image_anchor_coverage(generator, image_index: int):
    """:func:`anchor_coverage` as a tuple: (image, boxes (K, 4), labels (K,), anchors (N, 4), unmatched (K,) bool)."""
    coverage = anchor_coverage(generator, image_index, positive_anchors=False)
    return coverage.image, coverage.boxes, coverage.labels, coverage.anchors, coverage.unmatched


def count_unmatched_annotations(generator, max_images: Optional[int] = None, skip_bad_images: Optional[bool] = None) -> Tuple[int, int]:
    """How many annotations no anchor overlaps with IoU >= 0.5.

    Args:
        generator: a dataset reader with anchors (a Generator).
        max_images: look at the first this many images only (None: all).
        skip_bad_images: leave out images that cannot be read, recording them with
            ``generator.record_bad_image`` (None: the generator's own ``skip_bad_images``).

    Returns:
        (unmatched, total) annotation counts.
    """
    if skip_bad_images is None:
        skip_bad_images = getattr(generator, "skip_bad_images", False)
    count = generator.size() if max_images is None else min(generator.size(), max_images)
    unmatched = total = 0
    for index in range(count):
        try:
            coverage = anchor_coverage(generator, index, positive_anchors=False)
        except DatasetError as error:
            if not skip_bad_images:
                raise
            generator.record_bad_image(index, error)
            continue
        unmatched += int(coverage.unmatched.sum())
        total += len(coverage.boxes)
    return unmatched, total
