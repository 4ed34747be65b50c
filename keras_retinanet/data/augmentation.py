"""Augmentation of images with their boxes: affine warps and colour changes (keras-retinanet's), scale jitter and
the flips and quarter turns of top-down imagery.

:class:`Augmentation` is the pure augmentation step of the input pipeline: frozen
settings, and ``augmentation(image, annotations, rng) -> (image, annotations)`` draws
everything from the ``rng`` it is given, so a batch's augmentation is a function of
the seed its caller derives (the training stream seeds it from ``(seed, position)``).
:class:`IteratorAugmentation` puts keras-retinanet's ``transform_generator`` /
``visual_effect_generator`` arguments behind the same interface.

Images are uint8 BGR arrays of shape (H, W, 3) throughout.
"""

import dataclasses
import threading
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .affine import change_transform_origin, random_transform, scaling, transform_aabb, translation
from .boxes import clip_annotations_to_image
from .visual_effects import VisualEffect, VisualEffectRanges

Annotations = Dict[str, np.ndarray]

# --------------------------------------------------------------------------------------
# Geometric augmentation
# --------------------------------------------------------------------------------------

_BORDER_MODES = {
    "constant": cv2.BORDER_CONSTANT,
    "nearest": cv2.BORDER_REPLICATE,
    "reflect": cv2.BORDER_REFLECT_101,
    "wrap": cv2.BORDER_WRAP,
}

_INTERPOLATIONS = {
    "nearest": cv2.INTER_NEAREST,
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
    "lanczos4": cv2.INTER_LANCZOS4,
}


class TransformParameters:
    """How ``apply_transform`` fills and samples the transformed image.

    Args:
        fill_mode: pixels outside the source: 'constant' (``cval``), 'nearest' (edge
            replicated), 'reflect' or 'wrap'.
        interpolation: 'nearest', 'linear', 'cubic', 'area' or 'lanczos4'.
        cval: fill value for ``fill_mode='constant'``.
        relative_translation: the translation of a random transform is a fraction of the
            image size (True) or in pixels (False).
    """

    def __init__(self, fill_mode="nearest", interpolation="linear", cval=0, relative_translation=True):
        if fill_mode not in _BORDER_MODES:
            raise ValueError(f"fill_mode must be one of {sorted(_BORDER_MODES)}, got {fill_mode!r}")
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {sorted(_INTERPOLATIONS)}, got {interpolation!r}")
        self.fill_mode = fill_mode
        self.interpolation = interpolation
        self.cval = cval
        self.relative_translation = relative_translation

    def cvBorderMode(self):  # noqa: N802 (keras-retinanet's name)
        return _BORDER_MODES[self.fill_mode]

    def cvInterpolation(self):  # noqa: N802 (keras-retinanet's name)
        return _INTERPOLATIONS[self.interpolation]


def adjust_transform_for_image(transform, image, relative_translation):
    """Make a transform act about the image centre, in pixels.

    Args:
        transform: (3, 3) matrix about the origin (e.g. from ``random_transform_generator``).
        image: (H, W, C) image it will be applied to.
        relative_translation: the matrix's translation is a fraction of the image size.

    Returns:
        (3, 3) matrix for ``apply_transform`` and ``transform_aabb``.
    """
    height, width = image.shape[:2]
    result = np.array(transform, dtype=np.float64)
    if relative_translation:
        result[0:2, 2] *= [width, height]
    return change_transform_origin(result, (0.5 * width, 0.5 * height))


def apply_transform(matrix, image, params):
    """Warp an image with an affine matrix, keeping its size.

    Args:
        matrix: (3, 3) affine matrix mapping source to destination pixels.
        image: (H, W, C) image.
        params: :class:`TransformParameters`.

    Boxes use continuous coordinates (pixel ``i`` covers ``[i, i + 1)``) while OpenCV places
    pixel ``i`` at coordinate ``i``; the matrix is conjugated by a half-pixel shift so that a
    box transformed with ``transform_aabb`` stays exactly on the warped pixels (a horizontal
    flip of a W-wide image maps pixel ``i`` to ``W - 1 - i``, not ``W - i``).

    Returns:
        (H, W, C) transformed image.
    """
    half_pixel = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
    pixel_matrix = np.linalg.inv(half_pixel) @ np.asarray(matrix, dtype=np.float64) @ half_pixel
    return cv2.warpAffine(
        image,
        pixel_matrix[:2, :],
        dsize=(image.shape[1], image.shape[0]),
        flags=params.cvInterpolation(),
        borderMode=params.cvBorderMode(),
        # A bare number would fill only the first channel.
        borderValue=(params.cval,) * 4,
    )


def warp_annotations(matrix, image: np.ndarray, annotations: Annotations, params: TransformParameters):
    """Warp an image and its boxes with one affine matrix.

    Boxes become the axis-aligned box around their transformed corners, clipped to
    the image; boxes pushed entirely out of the image are dropped with their labels.

    Args:
        matrix: (3, 3) matrix in pixels, already about the image centre (:func:`adjust_transform_for_image`).
        image: (H, W, C) image.
        annotations: ``bboxes`` (K, 4) and other per-box arrays; not modified.
        params: :class:`TransformParameters` for the image warp.

    Returns:
        (image (H, W, C), annotations): a new dict, K' <= K boxes.
    """
    image = apply_transform(matrix, image, params)
    boxes = np.array(annotations["bboxes"], dtype=np.float64).reshape((-1, 4))
    for index in range(boxes.shape[0]):
        boxes[index, :] = transform_aabb(matrix, boxes[index, :])
    annotations = dict(annotations, bboxes=boxes)
    annotations, _, _ = clip_annotations_to_image(annotations, image.shape)
    return image, annotations


@dataclasses.dataclass(frozen=True)
class TransformRanges:
    """The ranges of keras-retinanet's random affine transform (see :func:`data.affine.random_transform`).

    Translations are fractions of the image size when ``TransformParameters.relative_translation``
    is on (keras-retinanet's default); angles are in radians.
    """

    min_rotation: float = 0
    max_rotation: float = 0
    min_translation: Tuple[float, float] = (0, 0)
    max_translation: Tuple[float, float] = (0, 0)
    min_shear: float = 0
    max_shear: float = 0
    min_scaling: Tuple[float, float] = (1, 1)
    max_scaling: Tuple[float, float] = (1, 1)
    flip_x_chance: float = 0
    flip_y_chance: float = 0

    def draw(self, rng) -> np.ndarray:
        """One (3, 3) transform about the origin; every range is drawn, even an empty one, as keras-retinanet did."""
        return random_transform(**{field.name: getattr(self, field.name) for field in dataclasses.fields(self)}, prng=rng)


@dataclasses.dataclass(frozen=True)
class AugmentationDraws:
    """What was drawn for a group of images: one effect, one transform and one (vertical flip, quarter turns) per
    image, or None where off."""

    effects: Optional[List[VisualEffect]]
    transforms: Optional[List[np.ndarray]]
    turns: Optional[List[Tuple[bool, int]]] = None


def scale_jitter_matrix(scale_range: Tuple[float, float], rng) -> np.ndarray:
    """A random resize by s in ``scale_range``, cropped or padded back to the image's size at a random place.

    As a (3, 3) transform about the image centre with the translation in fractions of the image size (as
    keras-retinanet's transforms): ``translation(t) @ scaling(s)``, each t drawn in ``[-|1 - s| / 2, |1 - s| / 2]``
    so that the crop stays inside the resized image (s > 1) or the resized image inside the canvas (s < 1).
    """
    factor = rng.uniform(scale_range[0], scale_range[1])
    reach = abs(1.0 - factor) / 2
    offset = rng.uniform(-reach, reach, size=2)
    return translation(offset) @ scaling((factor, factor))


def turn_boxes(boxes: np.ndarray, image_shape, flip: bool, quarter_turns: int) -> np.ndarray:
    """Boxes of an image flipped upside down (if ``flip``) and then turned by ``quarter_turns`` x 90 degrees
    counter-clockwise, as :func:`turn_image` turns the image (exact: no interpolation).

    Args:
        boxes: (K, 4) float boxes (x1, y1, x2, y2) in continuous pixel coordinates.
        image_shape: (H, W, ...) of the image before.

    Returns:
        (K, 4) boxes in the turned image.
    """
    height, width = image_shape[:2]
    x1, y1, x2, y2 = (np.asarray(boxes, dtype=np.float64)[:, column] for column in range(4))
    if flip:
        y1, y2 = height - y2, height - y1
    for _ in range(quarter_turns % 4):  # np.rot90: (x, y) -> (y, W - x), and the image becomes W x H
        x1, y1, x2, y2 = y1, width - x2, y2, width - x1
        height, width = width, height
    return np.stack([x1, y1, x2, y2], axis=1)


def turn_image(image: np.ndarray, flip: bool, quarter_turns: int) -> np.ndarray:
    """An image flipped upside down (if ``flip``), then turned by ``quarter_turns`` x 90 degrees counter-clockwise."""
    if flip:
        image = image[::-1]
    return np.ascontiguousarray(np.rot90(image, k=quarter_turns % 4))


class _DrawsAndApplies:
    """Applying drawn augmentation; subclasses say how effects and transforms are drawn."""

    transform_parameters: TransformParameters

    def draw_effects(self, rng, count: int) -> Optional[List[VisualEffect]]:
        raise NotImplementedError

    def draw_transforms(self, rng, count: int) -> Optional[List[np.ndarray]]:
        raise NotImplementedError

    def draw_turns(self, rng, count: int) -> Optional[List[Tuple[bool, int]]]:
        """(vertical flip, quarter turns) of each image, or None for none."""
        return None

    def draw(self, rng, count: int) -> AugmentationDraws:
        """The augmentation of ``count`` images: every effect first, then every transform (keras-retinanet's order),
        then the turns of top-down imagery."""
        effects, transforms = self.draw_effects(rng, count), self.draw_transforms(rng, count)
        return AugmentationDraws(effects, transforms, self.draw_turns(rng, count))

    def apply(self, image: np.ndarray, annotations: Annotations, effect=None, transform=None, turn=None):
        """Colour change, then warp about the image centre, then (vertical flip, quarter turns); returns (image, new
        annotations dict)."""
        if effect is not None:
            image = effect(image)
        if transform is not None:
            matrix = adjust_transform_for_image(transform, image, self.transform_parameters.relative_translation)
            image, annotations = warp_annotations(matrix, image, annotations, self.transform_parameters)
        if turn is not None and (turn[0] or turn[1] % 4):
            boxes = np.asarray(annotations["bboxes"], dtype=np.float64).reshape((-1, 4))
            annotations = dict(annotations, bboxes=turn_boxes(boxes, image.shape, *turn))
            image = turn_image(image, *turn)
        return image, annotations

    def augment_group(self, image_group: Sequence[np.ndarray], annotations_group: Sequence[Annotations], rng):
        """Augment a batch with one draw from ``rng``; returns (images, annotations), new lists."""
        draws = self.draw(rng, len(image_group))
        images, annotations = [], []
        for index, (image, boxes) in enumerate(zip(image_group, annotations_group)):
            effect = draws.effects[index] if draws.effects is not None else None
            transform = draws.transforms[index] if draws.transforms is not None else None
            turn = draws.turns[index] if draws.turns is not None else None
            image, boxes = self.apply(image, boxes, effect, transform, turn)
            images.append(image)
            annotations.append(boxes)
        return images, annotations

    def __call__(self, image: np.ndarray, annotations: Union[Annotations, np.ndarray], rng):
        """Augment one image: ``(image (H, W, 3), annotations or (K, 4) boxes, rng) -> (image, same kind)``.

        Pass a dict to keep labels (and any per-box array) aligned with the boxes that
        survive; a bare (K, 4) array comes back as the (K', 4) boxes that stay in the image.
        """
        bare = not isinstance(annotations, dict)
        if bare:
            annotations = {"bboxes": np.asarray(annotations, dtype=np.float64).reshape((-1, 4))}
        (image,), (annotations,) = self.augment_group([image], [annotations], rng)
        return (image, annotations["bboxes"]) if bare else (image, annotations)


@dataclasses.dataclass(frozen=True)
class Augmentation(_DrawsAndApplies):
    """Random augmentation with fixed settings; every random number comes from the ``rng`` passed in.

    Attributes:
        transform: ranges of the random affine transform, or None for no warp.
        visual_effect: ranges of the random colour change, or None for none.
        transform_parameters: how warped images are filled and sampled.
        scale_jitter: (smallest, largest) factor of a random resize, cropped or padded back to the image's size, in
            the same warp as ``transform`` (:func:`scale_jitter_matrix`; translations relative, as by default); None:
            none.
        top_down: after the warp, flip each image upside down half the time and turn it by 0, 90, 180 or 270 degrees
            (one each), exactly (:func:`turn_image`); a quarter turn makes an H x W image W x H.
    """

    transform: Optional[TransformRanges] = None
    visual_effect: Optional[VisualEffectRanges] = None
    transform_parameters: TransformParameters = dataclasses.field(default_factory=TransformParameters)
    scale_jitter: Optional[Tuple[float, float]] = None
    top_down: bool = False

    def draw_effects(self, rng, count: int) -> Optional[List[VisualEffect]]:
        if self.visual_effect is None:
            return None
        return [self.visual_effect.draw(rng) for _ in range(count)]

    def draw_transforms(self, rng, count: int) -> Optional[List[np.ndarray]]:
        if self.transform is None and self.scale_jitter is None:
            return None
        transforms = []
        for _ in range(count):
            matrix = self.transform.draw(rng) if self.transform is not None else np.eye(3)
            if self.scale_jitter is not None:
                matrix = scale_jitter_matrix(self.scale_jitter, rng) @ matrix
            transforms.append(matrix)
        return transforms

    def draw_turns(self, rng, count: int) -> Optional[List[Tuple[bool, int]]]:
        if not self.top_down:
            return None
        return [(bool(rng.uniform(0, 1) < 0.5), int(rng.uniform(0, 4)) % 4) for _ in range(count)]


class IteratorAugmentation(_DrawsAndApplies):
    """keras-retinanet's ``transform_generator`` / ``visual_effect_generator`` as an augmentation.

    Draws are ``next()`` of the given iterators. Those draw from a random state of their
    own, so to make a draw a function of the ``rng`` passed in, give that state as
    ``random_state``: it is set to ``rng``'s state before each draw.

    Args:
        transform_generator: iterator of (3, 3) transforms about the origin, or None.
        visual_effect_generator: iterator of :class:`VisualEffect`, or None.
        transform_parameters: how warped images are filled and sampled.
        random_state: the ``np.random.RandomState`` both iterators draw from, or None.
    """

    def __init__(self, transform_generator=None, visual_effect_generator=None, transform_parameters=None, random_state=None):
        self.transform_generator = transform_generator
        self.visual_effect_generator = visual_effect_generator
        self.transform_parameters = transform_parameters or TransformParameters()
        self.random_state = random_state
        # Python generators cannot be advanced by two threads at once (tf.data and PyDataset workers),
        # and a reseed must not interleave with another batch's draws.
        self._lock = threading.Lock()

    def _reseed(self, rng) -> None:
        if self.random_state is None or rng is None:
            return
        if isinstance(rng, np.random.RandomState):
            self.random_state.set_state(rng.get_state())
        else:
            self.random_state.seed(rng.integers(0, 2**32, size=4, dtype=np.uint64).astype(np.uint32))

    def _next(self, iterator, count):
        return None if iterator is None else [next(iterator) for _ in range(count)]

    def draw_effects(self, rng, count: int) -> Optional[List[VisualEffect]]:
        with self._lock:
            self._reseed(rng)
            return self._next(self.visual_effect_generator, count)

    def draw_transforms(self, rng, count: int) -> Optional[List[np.ndarray]]:
        with self._lock:
            self._reseed(rng)
            return self._next(self.transform_generator, count)

    def draw(self, rng, count: int) -> AugmentationDraws:
        with self._lock:
            self._reseed(rng)
            return AugmentationDraws(self._next(self.visual_effect_generator, count), self._next(self.transform_generator, count))


# keras-retinanet's --random-transform: small rotations, translations, shears and scalings, flips both ways,
# and small colour changes.
RANDOM_TRANSFORM_RANGES = TransformRanges(
    min_rotation=-0.1,
    max_rotation=0.1,
    min_translation=(-0.1, -0.1),
    max_translation=(0.1, 0.1),
    min_shear=-0.1,
    max_shear=0.1,
    min_scaling=(0.9, 0.9),
    max_scaling=(1.1, 1.1),
    flip_x_chance=0.5,
    flip_y_chance=0.5,
)
RANDOM_VISUAL_EFFECT_RANGES = VisualEffectRanges(
    contrast_range=(0.9, 1.1), brightness_range=(-0.1, 0.1), hue_range=(-0.05, 0.05), saturation_range=(0.95, 1.05)
)
# Without --random-transform keras-retinanet's training still flipped images horizontally half the time.
HORIZONTAL_FLIP_RANGES = TransformRanges(flip_x_chance=0.5)


def random_transform_augmentation() -> Augmentation:
    """keras-retinanet's ``--random-transform`` augmentation (warps and colour changes)."""
    return Augmentation(transform=RANDOM_TRANSFORM_RANGES, visual_effect=RANDOM_VISUAL_EFFECT_RANGES)


def training_augmentation(
    random_transform: bool, top_down: bool = False, scale_jitter: Optional[Tuple[float, float]] = None
) -> Augmentation:
    """The training augmentation of ``retinanet-train``: the ``--random-transform`` set, else horizontal flips only;
    with ``top_down`` vertical flips and quarter turns too, with ``scale_jitter`` a random resize, cropped or padded
    (the padding black: edge pixels smeared over a quarter of the image would be a texture the data never has)."""
    augmentation = random_transform_augmentation() if random_transform else Augmentation(transform=HORIZONTAL_FLIP_RANGES)
    if not top_down and scale_jitter is None:
        return augmentation  # keras-retinanet's, draw for draw
    parameters = augmentation.transform_parameters
    if scale_jitter is not None:
        parameters = TransformParameters(fill_mode="constant", interpolation=parameters.interpolation, cval=0,
                                         relative_translation=parameters.relative_translation)  # fmt: skip
    return dataclasses.replace(augmentation, transform_parameters=parameters, top_down=top_down,
                               scale_jitter=tuple(scale_jitter) if scale_jitter is not None else None)  # fmt: skip
