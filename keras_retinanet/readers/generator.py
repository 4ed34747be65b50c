"""keras-retinanet's ``Generator``: a dataset reader composed with augmentation, input preparation and targets.

A reader subclasses :class:`Generator` and implements what
:class:`keras_retinanet.readers.reader.Reader` asks (``size``, ``image_path``,
``load_annotations``, the class names, ...). A batch is then made in keras-retinanet
1.0.0's order of steps:

1. load the group's images and annotations (:class:`~keras_retinanet.readers.reader.Reader`),
   clipping boxes to their images; with ``tile_crop`` (tiled training), each image is cropped
   as soon as it is read (:class:`~keras_retinanet.data.cropping.TileCrop`), so that only one
   whole image is held at a time;
2. augment (``self.augmentation``, a :class:`~keras_retinanet.data.augmentation.Augmentation`
   or keras-retinanet's ``transform_generator`` / ``visual_effect_generator``), with
   an rng derived from the batch's place in the training stream;
3. resize and preprocess (``self.input_transform``, an
   :class:`~keras_retinanet.data.input_transform.InputTransform`);
4. pad into one batch and assign anchors (``self.anchor_targets``, an
   :class:`~keras_retinanet.data.batch_targets.AnchorTargets`).

As a ``keras.utils.PyDataset`` it can be given to ``model.fit``;
:func:`keras_retinanet.data.pipeline.make_dataset` turns it into a tf.data stream.
"""

import dataclasses
import itertools
import random

import keras
import numpy as np

from ..config.anchors_ini import anchor_config_from_parser
from ..config.defaults import IMAGE_MAX_SIDE, IMAGE_MIN_SIDE
from ..data.augmentation import IteratorAugmentation, TransformParameters, warp_annotations
from ..data.cropping import TileCrop
from ..data.input_transform import InputTransform, preprocess_image
from .reader import Reader
from ..data.seeding import fresh_seed, keyed_random_state
from ..data.batch_targets import AnchorTargets
from ..errors import DatasetError
from ..anchors import anchor_targets_bbox, guess_shapes

GROUP_METHODS = ("none", "random", "ratio")
# Keys the draws of batches asked for without a stream position apart from positioned ones.
_UNPOSITIONED_STREAM = 1
# Keys the crops of tiled training apart from the augmentation of the same batch: turning --tile on or off
# leaves the batch's flips and warps as they were.
_CROP_STREAM = 2


class Generator(Reader, keras.utils.PyDataset):
    """Batches of ``(inputs, (regression_targets, classification_targets))`` for training.

    Args:
        transform_generator: keras-retinanet's iterator of (3, 3) random transforms
            (``utils.transform.random_transform_generator``), or None.
        visual_effect_generator: keras-retinanet's iterator of ``VisualEffect``
            (``utils.image.random_visual_effect_generator``), or None.
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
        config: keras-retinanet's ``configparser`` object (``utils.config.read_config_file``) with anchor
            parameters and/or pyramid levels; or give ``anchor_params`` / ``pyramid_levels`` instead.
        skip_bad_images: when an image cannot be read, record it in ``bad_images`` and fill its place in the
            batch with the next readable image, instead of raising ``DatasetError``.
        random_state: the ``np.random.RandomState`` that ``transform_generator`` and ``visual_effect_generator``
            draw from. With it, each batch's draws are a function of the batch's rng (see :meth:`augmentation_rng`).
        seed: the seed of the batch order and augmentation of the training stream (default 0 for the stream;
            batches asked for without a position then draw from a fresh seed).
        augmentation: an :class:`~keras_retinanet.data.augmentation.Augmentation` (e.g.
            ``training_augmentation(random_transform)``), instead of the two generators.
        anchor_params: :class:`AnchorParameters` of the anchors (None: keras-retinanet's default).
        pyramid_levels: pyramid levels of the anchors (None: P3-P7).
        tile_crop: a :class:`~keras_retinanet.data.cropping.TileCrop`: train on a random crop of each image, drawn
            from :meth:`crop_rng`, before augmentation and resizing (None: whole images).
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size`` of ``keras.utils.PyDataset``.
    """

    def __init__(
        self,
        transform_generator=None,
        visual_effect_generator=None,
        batch_size=1,
        group_method="ratio",
        shuffle_groups=True,
        image_min_side=IMAGE_MIN_SIDE,
        image_max_side=IMAGE_MAX_SIDE,
        no_resize=False,
        transform_parameters=None,
        compute_anchor_targets=anchor_targets_bbox,
        compute_shapes=guess_shapes,
        preprocess_image=preprocess_image,
        config=None,
        skip_bad_images=False,
        random_state=None,
        seed=None,
        augmentation=None,
        anchor_params=None,
        pyramid_levels=None,
        tile_crop=None,
        **kwargs,
    ):
        keras.utils.PyDataset.__init__(self, **kwargs)
        Reader.__init__(self, skip_bad_images=skip_bad_images)
        if group_method not in GROUP_METHODS:
            raise ValueError(f"group_method must be one of {GROUP_METHODS}, got {group_method!r}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.group_method = group_method
        self.shuffle_groups = shuffle_groups
        self.image_min_side = image_min_side
        self.image_max_side = image_max_side
        self.no_resize = no_resize
        self.preprocess_image = preprocess_image
        # The one owner of resize + preprocess (resize first) for this generator's images.
        self.input_transform = InputTransform(
            preprocess_image, image_min_side=image_min_side, image_max_side=image_max_side, resize=not no_resize
        )

        self.transform_generator = transform_generator
        self.visual_effect_generator = visual_effect_generator
        self.random_state = random_state
        self.augmentation = _make_augmentation(
            augmentation, transform_generator, visual_effect_generator, transform_parameters, random_state
        )
        self.transform_parameters = (
            transform_parameters or getattr(self.augmentation, "transform_parameters", None) or TransformParameters()
        )
        self.seed = 0 if seed is None else int(seed)
        self._unpositioned_seed = fresh_seed() if seed is None else int(seed)
        self._unpositioned_draws = itertools.count()  # next() of a count is atomic under the GIL

        self.config = config
        if config is not None:
            if anchor_params is not None or pyramid_levels is not None:
                raise ValueError("give the anchors either as config= or as anchor_params=/pyramid_levels=, not both")
            anchor_config = anchor_config_from_parser(config)
            anchor_params, pyramid_levels = anchor_config.parameters, anchor_config.pyramid_levels
        self.anchor_targets = AnchorTargets(anchor_params, pyramid_levels, compute_shapes, compute_anchor_targets)
        if tile_crop is not None and not isinstance(tile_crop, TileCrop):
            raise TypeError(f"tile_crop must be a TileCrop (data.cropping.TileCrop.of(640)), got {type(tile_crop).__name__}")
        self.tile_crop = tile_crop

        self.group_images()
        if self.shuffle_groups:
            self.on_epoch_end()

    # The anchor settings live in ``anchor_targets``; these are keras-retinanet's attribute names for them.
    @property
    def anchor_params(self):
        return self.anchor_targets.anchor_params

    @property
    def pyramid_levels(self):
        return self.anchor_targets.pyramid_levels

    @property
    def compute_shapes(self):
        return self.anchor_targets.compute_shapes

    @property
    def compute_anchor_targets(self):
        return self.anchor_targets.compute_anchor_targets

    # ----------------------------------------------------------------------------------
    # Augmentation
    # ----------------------------------------------------------------------------------

    def augmentation_rng(self, position=None) -> np.random.RandomState:
        """The random state a batch's augmentation draws from.

        Args:
            position: the batch's place in the training stream: the state is a function of
                ``(seed, position)`` alone, so the batch is the same with parallel workers
                and after resuming. None (``generator[i]``, keras' PyDataset): a state of
                its own for each call.
        """
        if position is not None:
            return keyed_random_state(self.seed, position)
        return keyed_random_state(self._unpositioned_seed, next(self._unpositioned_draws), _UNPOSITIONED_STREAM)

    def crop_rng(self, position=None) -> np.random.RandomState:
        """The random state a batch's crops draw from (tiled training): as :meth:`augmentation_rng`, keyed apart."""
        if position is not None:
            return keyed_random_state(self.seed, position, _CROP_STREAM)
        draw = next(self._unpositioned_draws)
        return keyed_random_state(self._unpositioned_seed, draw, _UNPOSITIONED_STREAM, _CROP_STREAM)

    def load_cropped_group(self, group, position=None):
        """Images and annotations of a group, each image cropped by ``tile_crop`` as soon as it is read.

        One whole image is held at a time, however large the images and the batch. The crops are drawn in the
        group's order from :meth:`crop_rng` (``position``), each from its image's boxes after clipping them to it.

        Returns:
            (group, image_group, annotations_group): the image indices used (see :meth:`load_readable_group`),
            the crops and their annotations.
        """
        rng = self.crop_rng(position)
        used, images, annotations_group = [], [], []
        for image_index in group:
            (index,), (image,) = self.load_readable_group([image_index])
            annotations = self.load_annotations_group([index])
            (image,), (annotations,) = self.filter_annotations([image], annotations, [index])
            image, annotations = self.tile_crop(image, annotations, rng)
            used.append(index)
            images.append(image)
            annotations_group.append(annotations)
        return used, images, annotations_group

    def augment_group(self, image_group, annotations_group, position=None):
        """Augment a group with the draws of :meth:`augmentation_rng` (nothing without augmentation)."""
        if self.augmentation is None:
            return image_group, annotations_group
        return self.augmentation.augment_group(image_group, annotations_group, self.augmentation_rng(position))

    def random_visual_effect_group(self, image_group, annotations_group, effects=None):
        """Apply random visual effects to every image of a group (keras-retinanet's step).

        Args:
            effects: one effect per image, or None to draw them now.
        """
        if effects is None and self.augmentation is not None:
            effects = self.augmentation.draw_effects(self.augmentation_rng(), len(image_group))
        for index, effect in enumerate(effects or ()):
            image_group[index] = effect(image_group[index])
        return image_group, annotations_group

    def random_transform_group_entry(self, image, annotations, transform=None):
        """Warp one image and its boxes (clipped to the image; boxes pushed out are dropped).

        Args:
            image: (H, W, 3) image.
            annotations: dict with ``bboxes`` (K, 4).
            transform: (3, 3) matrix in pixels about the image centre, or None to draw one.
        """
        if transform is not None:
            return warp_annotations(transform, image, annotations, self.transform_parameters)
        drawn = None if self.augmentation is None else self.augmentation.draw_transforms(self.augmentation_rng(), 1)
        if drawn is None:
            return image, annotations
        return self.augmentation.apply(image, annotations, transform=drawn[0])

    def random_transform_group(self, image_group, annotations_group, transforms=None):
        """Randomly warp every image of a group with its boxes.

        Args:
            transforms: one (3, 3) transform about the origin per image, or None to draw them now.
        """
        if transforms is None and self.augmentation is not None:
            transforms = self.augmentation.draw_transforms(self.augmentation_rng(), len(image_group))
        for index, transform in enumerate(transforms or ()):
            image_group[index], annotations_group[index] = self.augmentation.apply(
                image_group[index], annotations_group[index], transform=transform
            )
        return image_group, annotations_group

    # ----------------------------------------------------------------------------------
    # Resizing, preprocessing, batching
    # ----------------------------------------------------------------------------------

    def resize_image(self, image):
        """Resize as configured; returns (image, scale)."""
        return self.input_transform.resize(image)

    def preprocess_group_entry(self, image, annotations):
        """Resize one image, scale its boxes and apply the backbone's preprocessing."""
        image, image_scale = self.input_transform(image)
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
        """(N, 4) anchors of an input of this shape (cached per shape)."""
        return self.anchor_targets.anchors(image_shape)

    def compute_targets(self, image_group, annotations_group):
        """Regression and classification targets of a group (for the padded batch shape).

        Returns:
            (regression (B, N, 5), labels (B, N, num_classes + 1)), float32.
        """
        return self.anchor_targets(image_group, annotations_group, self.num_classes())

    def compute_input_output(self, group, position=None):
        """Load, check, (crop,) augment and preprocess a group; compute its inputs and targets.

        Args:
            group: image indices.
            position: the batch's place in the training stream; its crops and augmentation are then
                drawn from ``(seed, position)`` alone (see :meth:`augmentation_rng`, :meth:`crop_rng`).
        """
        if self.tile_crop is not None:
            group, image_group, annotations_group = self.load_cropped_group(group, position)
        else:
            group, image_group = self.load_readable_group(group)
            annotations_group = self.load_annotations_group(group)
            image_group, annotations_group = self.filter_annotations(image_group, annotations_group, group)
        image_group, annotations_group = self.augment_group(image_group, annotations_group, position)
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
        """Batch ``index``: (inputs, (regression_targets, classification_targets))."""
        if index < 0 or index >= len(self.groups):
            raise IndexError(f"batch index {index} out of range for {len(self.groups)} batches")
        return self.compute_input_output(self.groups[index])

    def on_epoch_end(self):
        """Shuffle the order of the batches (their content stays grouped)."""
        if self.shuffle_groups:
            random.shuffle(self.groups)


def _make_augmentation(augmentation, transform_generator, visual_effect_generator, transform_parameters, random_state):
    """The generator's one augmentation: the given ``Augmentation``, or keras-retinanet's generators behind its interface."""
    if augmentation is not None:
        if transform_generator is not None or visual_effect_generator is not None:
            raise ValueError("give either augmentation= or transform_generator=/visual_effect_generator=, not both")
        if transform_parameters is not None:
            if not dataclasses.is_dataclass(augmentation):
                raise ValueError("transform_parameters= applies to an Augmentation; set them on your augmentation instead")
            augmentation = dataclasses.replace(augmentation, transform_parameters=transform_parameters)
        return augmentation
    if transform_generator is None and visual_effect_generator is None:
        return None
    return IteratorAugmentation(transform_generator, visual_effect_generator, transform_parameters, random_state)

