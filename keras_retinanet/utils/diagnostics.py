"""Checks on a dataset that explain a detector that cannot learn."""

import numpy as np

from .anchors import unmatched_annotations


def image_anchor_coverage(generator, image_index):
    """Anchors and annotations of one image as the network sees it (after resizing).

    Returns:
        image: the resized image (H, W, 3).
        boxes: (K, 4) annotations scaled to the resized image.
        labels: (K,) their labels.
        anchors: (N, 4) anchors of the resized image.
        unmatched: (K,) bool, annotations with no anchor of IoU >= 0.5.
    """
    image = generator.load_image(image_index)
    annotations = generator.load_annotations(image_index)
    image, scale = generator.resize_image(image)
    boxes = np.asarray(annotations["bboxes"], dtype=np.float64).reshape((-1, 4)) * scale
    anchors = generator.generate_anchors(image.shape)
    return image, boxes, np.asarray(annotations["labels"]), anchors, unmatched_annotations(anchors, boxes)


def count_unmatched_annotations(generator, max_images=None):
    """How many annotations no anchor overlaps with IoU >= 0.5.

    Args:
        generator: a dataset reader.
        max_images: look at the first this many images only (None: all).

    Returns:
        (unmatched, total) annotation counts.
    """
    count = generator.size() if max_images is None else min(generator.size(), max_images)
    unmatched = total = 0
    for index in range(count):
        _, boxes, _, _, missing = image_anchor_coverage(generator, index)
        unmatched += int(missing.sum())
        total += len(boxes)
    return unmatched, total
