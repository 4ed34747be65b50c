"""The shared base of every dataset reader: grouping, augmentation, resizing, batching and targets.

A reader subclasses :class:`Generator` and implements ``size``, ``num_classes``,
``has_label``, ``has_name``, ``name_to_label``, ``label_to_name``,
``image_aspect_ratio``, ``image_path``, ``load_image`` and ``load_annotations``.
Everything else (the order of the steps, the shapes of the batches, the targets)
follows keras-retinanet 1.0.0's ``preprocessing/generator.py``.
"""

import random
import threading
import warnings

import keras
import numpy as np

from ..errors import DatasetError
from ..utils.anchors import anchor_targets_bbox, anchors_for_shape, guess_shapes
from ..utils.config import parse_anchor_parameters, parse_pyramid_levels
from ..utils.image import (
    TransformParameters,
    adjust_transform_for_image,
    apply_transform,
    image_size,
    preprocess_image,
    read_image_bgr,
    resize_image,
)
from ..utils.transform import transform_aabb

GROUP_METHODS = ("none", "random", "ratio")


def empty_annotations():
    """Annotations of an image without objects: ``labels`` (0,) int64, ``bboxes`` (0, 4) float64."""
    return {"labels": np.zeros((0,), dtype=np.int64), "bboxes": np.zeros((0, 4), dtype=np.float64)}


class Generator(keras.utils.PyDataset):
    """Batches of ``(inputs, [regression_targets, classification_targets])`` for training.

    Args:
        transform_generator: iterator of (3, 3) random transforms (``utils.transform.random_transform_generator``), or None.
        visual_effect_generator: iterator of ``VisualEffect`` (``utils.image.random_visual_effect_generator``), or None.
        batch_size: images per batch.
        group_method: 'none' (dataset order), 'random' or 'ratio' (images of similar aspect ratio batched together,
            which wastes less padding).
        shuffle_groups: shuffle the order of the batches at the start and after every epoch.
        image_min_side: resize so the smaller side is this long ...
        image_max_side: ... unless the larger side would pass this.
        no_resize: keep the images at their size.
        transform_parameters: ``TransformParameters`` used to warp the images.
        compute_anchor_targets: ``(anchors, image_group, annotations_group, num_classes) -> (regression, labels)``.
        compute_shapes: ``(image_shape, pyramid_levels) -> feature map shapes``, for the anchors.
        preprocess_image: ``(uint8 BGR image) -> float image`` (the backbone's preprocessing).
        config: ``configparser`` object from ``utils.config.read_config_file`` with anchor parameters and/or pyramid levels.
        skip_bad_images: when an image cannot be read, record it in ``bad_images`` and fill its place in the
            batch with the next readable image, instead of raising ``DatasetError``.
        random_state: the ``np.random.RandomState`` that ``transform_generator`` and ``visual_effect_generator``
            draw from. With it, ``compute_input_output(group, position)`` reseeds it from ``(seed, position)``
            before drawing a batch's augmentation, so the batch at a place in the training stream is the same
            whatever ran before it: with parallel workers, and after resuming a run.
        seed: the seed combined with the position (default 0).
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size`` of ``keras.utils.PyDataset``.
    """

    def __init__(
        self,
        transform_generator=None,
        visual_effect_generator=None,
        batch_size=1,
        group_method="ratio",
        shuffle_groups=True,
        image_min_side=800,
        image_max_side=1333,
        no_resize=False,
        transform_parameters=None,
        compute_anchor_targets=anchor_targets_bbox,
        compute_shapes=guess_shapes,
        preprocess_image=preprocess_image,
        config=None,
        skip_bad_images=False,
        random_state=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if group_method not in GROUP_METHODS:
            raise ValueError(f"group_method must be one of {GROUP_METHODS}, got {group_method!r}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.transform_generator = transform_generator
        self.visual_effect_generator = visual_effect_generator
        self.batch_size = int(batch_size)
        self.group_method = group_method
        self.shuffle_groups = shuffle_groups
        self.image_min_side = image_min_side
        self.image_max_side = image_max_side
        self.no_resize = no_resize
        self.transform_parameters = transform_parameters or TransformParameters()
        self.compute_anchor_targets = compute_anchor_targets
        self.compute_shapes = compute_shapes
        self.preprocess_image = preprocess_image
        self.config = config
        self.skip_bad_images = skip_bad_images
        self.random_state = random_state
        self.seed = 0 if seed is None else int(seed)
        # image path -> why it could not be read (filled when skip_bad_images is on).
        self.bad_images = {}
        self._bad_indices = set()
        self._bad_lock = threading.Lock()

        # Python generators cannot be advanced by two threads at once (PyDataset workers, tf.data).
        self._random_lock = threading.Lock()
        self._anchor_cache = {}
        self._anchor_cache_lock = threading.Lock()
        self._warned_images = set()

        self.anchor_params = None
        self.pyramid_levels = None
        if config is not None and "anchor_parameters" in config:
            self.anchor_params = parse_anchor_parameters(config)
        if config is not None and "pyramid_levels" in config:
            self.pyramid_levels = parse_pyramid_levels(config)

        self.group_images()
        if self.shuffle_groups:
            self.on_epoch_end()

    # ----------------------------------------------------------------------------------
    # What a reader implements
    # ----------------------------------------------------------------------------------

    def size(self):
        """Number of images in the dataset."""
        raise NotImplementedError("size method not implemented")

    # Readers fill ``self.classes`` (class name -> label) and ``self.labels`` (label -> name).
    classes = None
    labels = None

    def num_classes(self):
        """Number of classes (the width of the classification output): the largest label + 1."""
        return max(self.labels) + 1 if self.labels else 0

    def has_label(self, label):
        """Whether the dataset has this label (an int)."""
        return label in self.labels

    def has_name(self, name):
        """Whether the dataset has this class name."""
        return name in self.classes

    def name_to_label(self, name):
        """Class name to label."""
        return self.classes[name]

    def label_to_name(self, label):
        """Label to class name."""
        return self.labels[label]

    def image_size(self, image_index):
        """(width, height) of an image, read from its file header once and remembered."""
        sizes = self.__dict__.setdefault("_image_sizes", {})
        if image_index not in sizes:
            sizes[image_index] = image_size(self.image_path(image_index))
        return sizes[image_index]

    def image_aspect_ratio(self, image_index):
        """Width / height of an image, without decoding it if possible."""
        width, height = self.image_size(image_index)
        return float(width) / float(height)

    def image_path(self, image_index):
        """Path of an image file."""
        raise NotImplementedError("image_path method not implemented")

    def load_image(self, image_index):
        """(H, W, 3) uint8 BGR image."""
        return read_image_bgr(self.image_path(image_index))

    def load_annotations(self, image_index):
        """``{'labels': (K,) int, 'bboxes': (K, 4) float (x1, y1, x2, y2)}`` in image pixels."""
        raise NotImplementedError("load_annotations method not implemented")

    # ----------------------------------------------------------------------------------
    # Loading
    # ----------------------------------------------------------------------------------

    def load_annotations_group(self, group):
        """Annotations of every image of a group (fresh arrays, safe to modify)."""
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

    def load_image_group(self, group):
        """Images of a group, each (H, W, 3) uint8 BGR."""
        return [self.load_image(image_index) for image_index in group]

    def record_bad_image(self, image_index, error):
        """Remember an unreadable image (thread-safe); see ``bad_images``."""
        with self._bad_lock:
            self._bad_indices.add(image_index)
            self.bad_images.setdefault(str(self.image_path(image_index)), getattr(error, "reason", str(error)))

    def load_readable_group(self, group):
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
        (and each image is reported only once per generator, not every epoch).

        Returns:
            (image_group, annotations_group), the annotations changed in place.
        """
        clipped = dropped = 0
        images = []
        for index, (image, annotations) in enumerate(zip(image_group, annotations_group)):
            boxes = annotations["bboxes"]
            if boxes.shape[0] == 0:
                continue
            height, width = image.shape[:2]
            inside = np.stack([
                np.clip(boxes[:, 0], 0, width),
                np.clip(boxes[:, 1], 0, height),
                np.clip(boxes[:, 2], 0, width),
                np.clip(boxes[:, 3], 0, height),
            ], axis=1)
            changed = np.any(inside != boxes, axis=1)
            empty = (inside[:, 2] <= inside[:, 0]) | (inside[:, 3] <= inside[:, 1])
            if not np.any(changed | empty):
                continue
            clipped_here = int(np.sum(changed & ~empty))
            dropped_here = int(np.sum(empty))
            annotations["bboxes"] = inside
            for key in list(annotations.keys()):
                annotations[key] = np.delete(annotations[key], np.where(empty)[0], axis=0)
            if group[index] not in self._warned_images:
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

    # ----------------------------------------------------------------------------------
    # Augmentation
    # ----------------------------------------------------------------------------------

    def _next_visual_effect(self):
        with self._random_lock:
            return next(self.visual_effect_generator)

    def _next_transform(self):
        with self._random_lock:
            return next(self.transform_generator)

    def random_visual_effect_group_entry(self, image, annotations):
        """Apply the next random visual effect to one image."""
        return self._next_visual_effect()(image), annotations

    def random_visual_effect_group(self, image_group, annotations_group, effects=None):
        """Apply random visual effects to every image of a group (if a generator is set).

        Args:
            effects: one drawn effect per image (see :meth:`draw_augmentation`), or None to draw now.
        """
        if self.visual_effect_generator is None:
            return image_group, annotations_group
        for index in range(len(image_group)):
            if effects is not None:
                image_group[index] = effects[index](image_group[index])
                continue
            image_group[index], annotations_group[index] = self.random_visual_effect_group_entry(
                image_group[index], annotations_group[index]
            )
        return image_group, annotations_group

    def draw_augmentation(self, group_size, position):
        """The random visual effects and transforms of the batch at ``position`` of the training stream.

        ``random_state`` is reseeded from ``(seed, position)`` and the draws are made in
        the order the sequential path makes them (every effect, then every transform),
        under the lock, so that parallel batches cannot interleave their draws.

        Returns:
            (effects, transforms): lists of ``group_size`` items, or None where that
            augmentation is off.
        """
        words = np.random.SeedSequence([self.seed & 0xFFFFFFFF, int(position)]).generate_state(4)
        with self._random_lock:
            self.random_state.seed(words)
            effects = transforms = None
            if self.visual_effect_generator is not None:
                effects = [next(self.visual_effect_generator) for _ in range(group_size)]
            if self.transform_generator is not None:
                transforms = [next(self.transform_generator) for _ in range(group_size)]
        return effects, transforms

    def random_transform_group_entry(self, image, annotations, transform=None):
        """Warp one image and its boxes with ``transform`` or the next random transform.

        Boxes become the axis-aligned box around their transformed corners, clipped to
        the image; boxes pushed entirely out of the image are dropped.

        Args:
            image: (H, W, 3) image.
            annotations: dict with ``bboxes`` (K, 4).
            transform: (3, 3) matrix in pixels about the origin, or None to draw one.
        """
        if transform is None and self.transform_generator is None:
            return image, annotations
        if transform is None:
            transform = adjust_transform_for_image(
                self._next_transform(), image, self.transform_parameters.relative_translation
            )
        image = apply_transform(transform, image, self.transform_parameters)

        boxes = np.array(annotations["bboxes"], dtype=np.float64).reshape((-1, 4))
        for index in range(boxes.shape[0]):
            boxes[index, :] = transform_aabb(transform, boxes[index, :])
        height, width = image.shape[:2]
        boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, width)
        boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, height)
        annotations["bboxes"] = boxes
        outside = np.where((boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1]))[0]
        if outside.size:
            for key in list(annotations.keys()):
                annotations[key] = np.delete(annotations[key], outside, axis=0)
        return image, annotations

    def random_transform_group(self, image_group, annotations_group, transforms=None):
        """Randomly transform every image of a group with its boxes.

        Args:
            transforms: one drawn (3, 3) transform per image (see :meth:`draw_augmentation`), or None to draw now.
        """
        for index in range(len(image_group)):
            transform = None
            if transforms is not None:
                transform = adjust_transform_for_image(
                    transforms[index], image_group[index], self.transform_parameters.relative_translation
                )
            image_group[index], annotations_group[index] = self.random_transform_group_entry(
                image_group[index], annotations_group[index], transform=transform
            )
        return image_group, annotations_group

    # ----------------------------------------------------------------------------------
    # Resizing, preprocessing, batching
    # ----------------------------------------------------------------------------------

    def resize_image(self, image):
        """Resize as configured; returns (image, scale)."""
        if self.no_resize:
            return image, 1
        return resize_image(image, min_side=self.image_min_side, max_side=self.image_max_side)

    def preprocess_group_entry(self, image, annotations):
        """Resize one image, scale its boxes and apply the backbone's preprocessing."""
        image, image_scale = self.resize_image(image)
        image = self.preprocess_image(image)
        annotations["bboxes"] = annotations["bboxes"] * image_scale
        return np.asarray(image, dtype=keras.backend.floatx()), annotations

    def preprocess_group(self, image_group, annotations_group):
        """Resize and preprocess every image of a group."""
        for index in range(len(image_group)):
            image_group[index], annotations_group[index] = self.preprocess_group_entry(
                image_group[index], annotations_group[index]
            )
        return image_group, annotations_group

    def group_images(self):
        """Split the image indices into ``self.groups`` of ``batch_size``.

        The last group is completed with images from the start, so every batch is full.
        """
        order = list(range(self.size()))
        if self.group_method == "random":
            random.shuffle(order)
        elif self.group_method == "ratio":
            order.sort(key=self._sort_ratio)
        if not order:
            self.groups = []
            return
        self.groups = [
            [order[x % len(order)] for x in range(i, i + self.batch_size)] for i in range(0, len(order), self.batch_size)
        ]

    def _sort_ratio(self, image_index):
        """Aspect ratio for grouping; 1 for an unreadable image when skipping them."""
        if not self.skip_bad_images:
            return self.image_aspect_ratio(image_index)
        try:
            return self.image_aspect_ratio(image_index)
        except DatasetError as error:
            self.record_bad_image(image_index, error)
            return 1.0

    def compute_inputs(self, image_group):
        """Stack a group into one zero-padded batch.

        Returns:
            (B, H_max, W_max, 3) float array, each image in the top-left corner.
        """
        max_shape = tuple(max(image.shape[axis] for image in image_group) for axis in range(3))
        image_batch = np.zeros((len(image_group),) + max_shape, dtype=keras.backend.floatx())
        for index, image in enumerate(image_group):
            image_batch[index, : image.shape[0], : image.shape[1], : image.shape[2]] = image
        return image_batch

    def generate_anchors(self, image_shape):
        """Anchors of an input of this shape, with the config's parameters (cached per shape).

        Returns:
            (N, 4) float32 anchors.
        """
        key = tuple(int(side) for side in image_shape[:2])
        with self._anchor_cache_lock:
            anchors = self._anchor_cache.get(key)
        if anchors is None:
            anchors = anchors_for_shape(
                image_shape,
                anchor_params=self.anchor_params,
                pyramid_levels=self.pyramid_levels,
                shapes_callback=self.compute_shapes,
            )
            with self._anchor_cache_lock:
                if len(self._anchor_cache) > 64:
                    self._anchor_cache.clear()
                self._anchor_cache[key] = anchors
        return anchors

    def compute_targets(self, image_group, annotations_group):
        """Regression and classification targets of a group (for the padded batch shape).

        Returns:
            [regression (B, N, 5), labels (B, N, num_classes + 1)], float32.
        """
        max_shape = tuple(max(image.shape[axis] for image in image_group) for axis in range(3))
        anchors = self.generate_anchors(max_shape)
        batches = self.compute_anchor_targets(anchors, image_group, annotations_group, self.num_classes())
        # A tuple, not a list: Keras 3 cannot build a tf.data signature from a list nested in the batch.
        return tuple(batches)

    def compute_input_output(self, group, position=None):
        """Load, check, augment and preprocess a group; compute its inputs and targets.

        Args:
            group: image indices.
            position: the batch's place in the training stream; with ``random_state``
                set, its augmentation is drawn from ``(seed, position)`` alone.
        """
        group, image_group = self.load_readable_group(group)
        annotations_group = self.load_annotations_group(group)
        image_group, annotations_group = self.filter_annotations(image_group, annotations_group, group)
        effects = transforms = None
        if position is not None and self.random_state is not None:
            effects, transforms = self.draw_augmentation(len(group), position)
        image_group, annotations_group = self.random_visual_effect_group(image_group, annotations_group, effects)
        image_group, annotations_group = self.random_transform_group(image_group, annotations_group, transforms)
        image_group, annotations_group = self.preprocess_group(image_group, annotations_group)
        inputs = self.compute_inputs(image_group)
        targets = self.compute_targets(image_group, annotations_group)
        return inputs, targets

    # ----------------------------------------------------------------------------------
    # keras.utils.PyDataset
    # ----------------------------------------------------------------------------------

    def __len__(self):
        """Number of batches per epoch."""
        return len(self.groups)

    def __getitem__(self, index):
        """Batch ``index``: (inputs, [regression_targets, classification_targets])."""
        if index < 0 or index >= len(self.groups):
            raise IndexError(f"batch index {index} out of range for {len(self.groups)} batches")
        return self.compute_input_output(self.groups[index])

    def on_epoch_end(self):
        """Shuffle the order of the batches (their content stays grouped)."""
        if self.shuffle_groups:
            random.shuffle(self.groups)
