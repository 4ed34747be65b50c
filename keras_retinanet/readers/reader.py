"""What a dataset reader implements, and the loading every reader shares.

A reader maps image indices to images and annotations. Subclasses implement
``size``, ``image_path``, ``load_annotations`` and fill ``classes`` / ``labels``
(or override ``num_classes``, ``has_label``, ``has_name``, ``name_to_label``,
``label_to_name``); ``load_image`` and ``image_aspect_ratio`` work from
``image_path`` unless overridden. :class:`keras_retinanet.readers.generator.Generator`
adds batching, augmentation and targets on top.
"""

import threading
import warnings
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ..errors import DatasetError
from ..data.boxes import clip_annotations_to_image
from ..data.image_io import image_size, read_image_bgr


class Reader:
    """Images and annotations of a dataset, by index.

    Args:
        skip_bad_images: when an image cannot be read, record it in ``bad_images`` and use
            the next readable image in its place (:meth:`load_readable_group`), instead of
            raising ``DatasetError``.
    """

    # Readers fill ``self.classes`` (class name -> label) and ``self.labels`` (label -> name).
    classes = None
    labels = None

    def __init__(self, skip_bad_images: bool = False):
        self.skip_bad_images = skip_bad_images
        # image path -> why it could not be read (filled when skip_bad_images is on).
        self.bad_images: Dict[str, str] = {}
        self._bad_indices = set()
        self._bad_lock = threading.Lock()
        # Images whose out-of-image boxes were already reported: one warning per image, not per epoch.
        self._warned_images = set()

    # ----------------------------------------------------------------------------------
    # What a reader implements
    # ----------------------------------------------------------------------------------

    def size(self) -> int:
        """Number of images in the dataset."""
        raise NotImplementedError("size method not implemented")

    def num_classes(self) -> int:
        """Number of classes (the width of the classification output): the largest label + 1."""
        return max(self.labels) + 1 if self.labels else 0

    def has_label(self, label: int) -> bool:
        """Whether the dataset has this label."""
        return label in self.labels

    def has_name(self, name: str) -> bool:
        """Whether the dataset has this class name."""
        return name in self.classes

    def name_to_label(self, name: str) -> int:
        """Class name to label."""
        return self.classes[name]

    def label_to_name(self, label: int) -> str:
        """Label to class name."""
        return self.labels[label]

    def image_size(self, image_index: int) -> Tuple[int, int]:
        """(width, height) of an image, read from its file header once and remembered."""
        # Created on first use: readers may ask for sizes before Reader.__init__ runs.
        sizes = self.__dict__.setdefault("_image_sizes", {})
        if image_index not in sizes:
            sizes[image_index] = image_size(self.image_path(image_index))
        return sizes[image_index]

    def image_aspect_ratio(self, image_index: int) -> float:
        """Width / height of an image, without decoding it if possible."""
        width, height = self.image_size(image_index)
        return float(width) / float(height)

    def image_path(self, image_index: int) -> str:
        """Path of an image file."""
        raise NotImplementedError("image_path method not implemented")

    def load_image(self, image_index: int) -> np.ndarray:
        """(H, W, 3) uint8 BGR image."""
        return read_image_bgr(self.image_path(image_index))

    def load_annotations(self, image_index: int) -> Dict[str, np.ndarray]:
        """``{'labels': (K,) int, 'bboxes': (K, 4) float (x1, y1, x2, y2)}`` in image pixels."""
        raise NotImplementedError("load_annotations method not implemented")

    # ----------------------------------------------------------------------------------
    # Loading groups
    # ----------------------------------------------------------------------------------

    def load_annotations_group(self, group: Sequence[int]) -> List[Dict[str, np.ndarray]]:
        """Annotations of every image of a group (fresh arrays, safe to modify; ``bboxes`` (K, 4) float64)."""
        annotations_group = []
        for image_index in group:
            annotations = self.load_annotations(image_index)
            if not isinstance(annotations, dict) or "labels" not in annotations or "bboxes" not in annotations:
                raise TypeError(
                    f"{type(self).__name__}.load_annotations must return a dict with 'labels' and 'bboxes', "
                    f"got {type(annotations).__name__}"
                )
            annotations = {key: np.array(value, copy=True) for key, value in annotations.items()}
            annotations["bboxes"] = annotations["bboxes"].astype(np.float64).reshape((-1, 4))
            annotations_group.append(annotations)
        return annotations_group

    def load_image_group(self, group: Sequence[int]) -> List[np.ndarray]:
        """Images of a group, each (H, W, 3) uint8 BGR."""
        return [self.load_image(image_index) for image_index in group]

    def record_bad_image(self, image_index: int, error: Exception) -> None:
        """Remember an unreadable image (thread-safe); see ``bad_images``."""
        with self._bad_lock:
            self._bad_indices.add(image_index)
            self.bad_images.setdefault(str(self.image_path(image_index)), getattr(error, "reason", str(error)))

    def load_readable_group(self, group: Sequence[int]) -> Tuple[List[int], List[np.ndarray]]:
        """Images of a group, unreadable ones replaced by the next readable image (``skip_bad_images``).

        The batch keeps its size: an image that fails to load is recorded in
        ``bad_images`` and its place taken by the next image in dataset order that
        loads, with that image's annotations.

        Returns:
            (group, image_group): the image indices actually used, and their images.

        Raises:
            DatasetError: an image cannot be read and skipping is off, or no image of
                the dataset can be read.
        """
        if not self.skip_bad_images:
            return list(group), self.load_image_group(group)
        used, images = [], []
        for image_index in group:
            candidate = image_index
            for _ in range(self.size()):
                if candidate not in self._bad_indices:
                    try:
                        images.append(self.load_image(candidate))
                        used.append(candidate)
                        break
                    except DatasetError as error:
                        self.record_bad_image(candidate, error)
                candidate = (candidate + 1) % self.size()
            else:
                raise DatasetError(
                    self.image_path(image_index), f"no image of the dataset can be read ({len(self.bad_images)} tried)"
                )
        return used, images

    def filter_annotations(self, image_group, annotations_group, group):
        """Clip boxes that stick out of their image and drop boxes with nothing left inside.

        Readers reject malformed boxes; what reaches this point is only out of the image,
        which happens with real annotation tools. One warning per group counts the boxes
        (and each image is reported only once per reader, not every epoch).

        Args:
            image_group: the group's images, (H, W, 3) each.
            annotations_group: their annotations (changed in place).
            group: their image indices, to name them in the warning.

        Returns:
            (image_group, annotations_group).
        """
        clipped = dropped = 0
        images = []
        for index, (image, annotations) in enumerate(zip(image_group, annotations_group)):
            annotations, clipped_here, dropped_here = clip_annotations_to_image(annotations, image.shape)
            annotations_group[index] = annotations
            if (clipped_here or dropped_here) and group[index] not in self._warned_images:
                self._warned_images.add(group[index])
                clipped += clipped_here
                dropped += dropped_here
                images.append(str(self.image_path(group[index])))
        if images:
            warnings.warn(
                f"{clipped + dropped} annotation(s) outside their image: {clipped} clipped to the image, "
                f"{dropped} dropped (nothing left inside); image(s): {', '.join(images)}",
                stacklevel=2,
            )
        return image_group, annotations_group
