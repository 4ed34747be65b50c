"""Training targets of a batch: the anchors of its padded input shape, matched to its boxes."""

import threading
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from ..anchors import AnchorParameters, anchor_targets_bbox, anchors_for_shape, guess_shapes

# Distinct padded batch shapes are few (grouping by aspect ratio), but unbounded input sizes must not grow memory.
ANCHOR_CACHE_SIZE = 64


class AnchorTargets:
    """Assigns anchors to boxes: ``targets(image_group, annotations_group, num_classes) -> (regression, labels)``.

    Anchors depend only on the input's height and width, so they are computed once per
    shape and shared by the threads that build batches.

    Args:
        anchor_params: sizes, strides, ratios and scales (None: keras-retinanet's default).
        pyramid_levels: pyramid levels (None: P3-P7).
        compute_shapes: ``(image_shape, pyramid_levels) -> feature map shapes`` (the backbone's).
        compute_anchor_targets: ``(anchors, image_group, annotations_group, num_classes) -> (regression, labels)``.
    """

    def __init__(
        self,
        anchor_params: Optional[AnchorParameters] = None,
        pyramid_levels: Optional[Sequence[int]] = None,
        compute_shapes: Callable = guess_shapes,
        compute_anchor_targets: Callable = anchor_targets_bbox,
    ):
        self.anchor_params = anchor_params
        self.pyramid_levels = pyramid_levels
        self.compute_shapes = compute_shapes
        self.compute_anchor_targets = compute_anchor_targets
        self._cache: Dict[Tuple[int, int], np.ndarray] = {}
        self._cache_lock = threading.Lock()

    def anchors(self, image_shape) -> np.ndarray:
        """(N, 4) anchors of an input of shape (H, W, ...), from the cache when that shape was seen."""
        key = tuple(int(side) for side in image_shape[:2])
        with self._cache_lock:
            anchors = self._cache.get(key)
        if anchors is None:
            anchors = anchors_for_shape(
                image_shape,
                anchor_params=self.anchor_params,
                pyramid_levels=self.pyramid_levels,
                shapes_callback=self.compute_shapes,
            )
            with self._cache_lock:
                if len(self._cache) > ANCHOR_CACHE_SIZE:
                    self._cache.clear()
                self._cache[key] = anchors
        return anchors

    def __call__(self, image_group, annotations_group, num_classes: int) -> Tuple[np.ndarray, np.ndarray]:
        """Targets of a group, for the shape of its zero-padded batch.

        Args:
            image_group: B images (H_i, W_i, C); the batch is padded to the largest of each side.
            annotations_group: B dicts with ``bboxes`` (K_i, 4) and ``labels`` (K_i,), in input pixels.
            num_classes: C.

        Returns:
            (regression (B, N, 5), labels (B, N, C + 1)) float32; a tuple, since Keras 3
            cannot build a tf.data signature from a list nested in a batch.
        """
        max_shape = tuple(max(image.shape[axis] for image in image_group) for axis in range(3))
        anchors = self.anchors(max_shape)
        return tuple(self.compute_anchor_targets(anchors, image_group, annotations_group, num_classes))
