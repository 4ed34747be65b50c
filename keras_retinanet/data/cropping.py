"""Tiled training: random crops of a fixed size taken from large images at their native resolution, with their boxes.

A crop is a window ``(x1, y1, x2, y2)`` of whole pixels of the image (x2 and y2 exclusive), as sliced inference's
tiles are (:mod:`keras_retinanet.inference.slicing`). Everything here is pure numpy and draws only from the random
state it is given, so the training stream's crops are a function of the run's seed and the batch's place
(``Generator.crop_rng``), the same after a resume and with any number of input workers.

The rules:

- A side of the image no longer than the tile is taken whole: a crop is ``min(tile, side)`` along each axis, and
  images are never padded to the tile.
- With probability ``object_chance`` (when the image has boxes) the crop is placed around one of its boxes, drawn
  uniformly: the crop contains the whole box where a window of the tile's size on the pixel grid can, else the
  box's centre. Otherwise it is drawn uniformly from every position. A large image with a few small objects would
  otherwise give mostly empty crops; the uniform draws keep background and objects at any place in the crop.
- Boxes are moved into the crop and clipped to it. A box keeping less than ``min_visibility`` of its area is
  dropped. Dropped, not ignored: the anchor targets (keras-retinanet's ``anchor_targets_bbox``) have no ignore
  regions, and a box cut to a sliver is what the border rule of sliced inference also discards in favour of the
  tile that sees the object whole. The default of one half keeps every kept box's aspect ratio within a factor
  two of the object's (a cut along one side at most halves it), so the anchors and ``--auto-anchors`` are not
  pulled towards slivers no whole object has.
"""

import dataclasses
import math
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np

from ..config.defaults import DEFAULTS
from ..config.tile_settings import check_share, tile_shape

Annotations = Dict[str, np.ndarray]

# Defaults of retinanet-train --tile-min-visibility and --tile-object-chance (see the module docstring).
MIN_VISIBILITY = DEFAULTS["data"]["tile_min_visibility"]
OBJECT_CHANCE = DEFAULTS["data"]["tile_object_chance"]


def start_range(length: int, tile: int, around: Optional[Tuple[float, float]] = None) -> Tuple[int, int]:
    """The first and last start, along one axis, of a crop of ``min(tile, length)`` pixels.

    Args:
        length: the image's side.
        tile: the tile's side.
        around: (low, high) of a box along this axis that the crop must contain, or None for any start.

    Returns:
        (first, last), both inclusive. Around a box: the starts whose crop holds the whole box; where none does
        (the box is longer than the crop, or does not fit it on the pixel grid), those whose crop holds its centre.
    """
    size = min(tile, length)
    if around is None:
        return 0, length - size
    low, high = around
    first, last = max(0, math.ceil(high - size)), min(length - size, math.floor(low))
    if first <= last:
        return first, last
    centre = (low + high) / 2.0
    first, last = max(0, math.ceil(centre) - size), min(length - size, math.floor(centre))
    # A box outside the image (not clipped by the caller) has no such start: any start then.
    return (first, last) if first <= last else (0, length - size)


def crop_window(
    image_shape: Sequence[int],
    tile: Tuple[int, int],
    boxes: np.ndarray,
    rng: np.random.RandomState,
    object_chance: float = OBJECT_CHANCE,
) -> np.ndarray:
    """Draw a crop of an image: (4,) int64 ``x1, y1, x2, y2`` in its pixels (x2, y2 exclusive).

    Draws, in this order: one uniform number (below ``object_chance`` with boxes: crop around a box), the box's
    index when around a box, then the start along x and along y, each uniform over :func:`start_range`.

    Args:
        image_shape: (height, width, ...) of the image.
        tile: (height, width) of the tile.
        boxes: (K, 4) boxes x1, y1, x2, y2 in the image's pixels (K may be 0).
        rng: the random state to draw from.
        object_chance: the probability of a crop around a box.
    """
    height, width = int(image_shape[0]), int(image_shape[1])
    boxes = np.asarray(boxes, dtype=np.float64).reshape((-1, 4))
    around_box = rng.uniform() < object_chance and len(boxes) > 0
    x_around = y_around = None
    if around_box:
        x1, y1, x2, y2 = boxes[rng.randint(len(boxes))]
        x_around, y_around = (x1, x2), (y1, y2)
    x_first, x_last = start_range(width, tile[1], x_around)
    y_first, y_last = start_range(height, tile[0], y_around)
    x = rng.randint(x_first, x_last + 1)
    y = rng.randint(y_first, y_last + 1)
    return np.array([x, y, x + min(tile[1], width), y + min(tile[0], height)], dtype=np.int64)


def visible_fraction(boxes: np.ndarray, clipped: np.ndarray) -> np.ndarray:
    """(K,) share of each box's area that its clipped box keeps (0 for a box without area)."""
    area = np.maximum(boxes[:, 2] - boxes[:, 0], 0.0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0.0)
    kept = np.maximum(clipped[:, 2] - clipped[:, 0], 0.0) * np.maximum(clipped[:, 3] - clipped[:, 1], 0.0)
    return np.divide(kept, area, out=np.zeros_like(area), where=area > 0)


def crop_annotations(
    annotations: Annotations, window: Sequence[int], min_visibility: float = MIN_VISIBILITY
) -> Annotations:
    """An image's annotations as a crop sees them.

    Boxes are moved to the crop's pixels and clipped to it; a box keeping less than ``min_visibility`` of its area,
    or none of it, is dropped with the matching entries of every other per-box array (``labels``, ...).

    Args:
        annotations: ``bboxes`` (K, 4) in the image's pixels and other per-box arrays; not modified.
        window: the crop's x1, y1, x2, y2 (x2, y2 exclusive).
        min_visibility: the least share of its area a kept box keeps.

    Returns:
        a new dict, ``bboxes`` (K', 4) float64 in the crop's pixels.
    """
    x1, y1, x2, y2 = (int(value) for value in window)
    boxes = np.asarray(annotations["bboxes"], dtype=np.float64).reshape((-1, 4))
    moved = boxes - np.array([x1, y1, x1, y1], dtype=np.float64)
    clipped = np.stack(
        [
            np.clip(moved[:, 0], 0, x2 - x1),
            np.clip(moved[:, 1], 0, y2 - y1),
            np.clip(moved[:, 2], 0, x2 - x1),
            np.clip(moved[:, 3], 0, y2 - y1),
        ],
        axis=1,
    )
    fraction = visible_fraction(moved, clipped)
    keep = (fraction > 0) & (fraction >= min_visibility)
    result = {key: np.asarray(value)[keep] for key, value in annotations.items() if key != "bboxes"}
    result["bboxes"] = clipped[keep]
    return result


def crop_image(image: np.ndarray, window: Sequence[int]) -> np.ndarray:
    """The crop's pixels as an array of their own, so that the whole image they came from can be freed."""
    x1, y1, x2, y2 = (int(value) for value in window)
    return image[y1:y2, x1:x2].copy()


def crops_per_image(image_shape: Sequence[int], tile: Tuple[int, int]) -> int:
    """How many tiles it takes to cover an image: the crops the anchor check looks at, so that it sees about as many
    boxes as the image holds."""
    return math.ceil(int(image_shape[0]) / tile[0]) * math.ceil(int(image_shape[1]) / tile[1])


@dataclasses.dataclass(frozen=True)
class TileCrop:
    """Random crops of ``height`` x ``width`` pixels with their boxes (see the module docstring).

    Attributes:
        height, width: the tile, in the image's pixels.
        min_visibility: a box keeping less than this share of its area in the crop is dropped.
        object_chance: the probability of a crop placed around one of the image's boxes.
    """

    height: int
    width: int
    min_visibility: float = MIN_VISIBILITY
    object_chance: float = OBJECT_CHANCE

    def __post_init__(self):
        height, width = tile_shape((self.height, self.width))
        object.__setattr__(self, "height", height)
        object.__setattr__(self, "width", width)
        object.__setattr__(self, "min_visibility", check_share(self.min_visibility, "tile_min_visibility"))
        object.__setattr__(self, "object_chance", check_share(self.object_chance, "tile_object_chance"))

    @classmethod
    def of(cls, tile: Union[int, Sequence[int]], **options) -> "TileCrop":
        """A TileCrop from an int (square) or (height, width), with the other settings as keywords."""
        height, width = tile_shape(tile)
        return cls(height, width, **options)

    @property
    def tile(self) -> Tuple[int, int]:
        return self.height, self.width

    def describe(self) -> str:
        return f"{self.height}x{self.width}"

    def window(self, image_shape: Sequence[int], boxes: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
        """Draw one crop of an image with these boxes (:func:`crop_window`)."""
        return crop_window(image_shape, self.tile, boxes, rng, self.object_chance)

    def apply(
        self, image: np.ndarray, annotations: Annotations, window: Sequence[int]
    ) -> Tuple[np.ndarray, Annotations]:
        """The crop ``window`` of an image and its annotations: (image (h, w, C) of its own, new annotations)."""
        return crop_image(image, window), crop_annotations(annotations, window, self.min_visibility)

    def __call__(self, image: np.ndarray, annotations: Annotations, rng: np.random.RandomState):
        """Draw a crop and apply it: ``(image, annotations, rng) -> (cropped image, cropped annotations)``."""
        return self.apply(image, annotations, self.window(image.shape, annotations["bboxes"], rng))


def tile_crop_of(data) -> Optional[TileCrop]:
    """The :class:`TileCrop` a :class:`~keras_retinanet.config.DataConfig` asks for, or None without a tile."""
    if data.tile is None:
        return None
    return TileCrop.of(tuple(data.tile), min_visibility=data.tile_min_visibility, object_chance=data.tile_object_chance)


def describe_sizing(data) -> str:
    """How a :class:`~keras_retinanet.config.DataConfig` makes training images into network inputs, in words, e.g.
    'resized to min side 800, max side 1333' or '640x640 crops at their own scale'."""
    sizing = (
        "at their own scale"
        if data.no_resize
        else (f"resized to min side {data.image_min_side}, max side {data.image_max_side}")
    )
    if data.tile is None:
        return sizing
    return f"random {data.tile[0]}x{data.tile[1]} crops {sizing}"


# Settings that size the network's inputs: giving any of them keeps the usual resize for tiled training too.
SIZING_SETTINGS = ("data.image_min_side", "data.image_max_side", "data.no_resize")


def with_native_scale(config):
    """A :class:`~keras_retinanet.config.RetinaNetConfig` with tiled training's sizing default: with a tile and none
    of :data:`SIZING_SETTINGS` given, crops keep their own scale (resizing off).

    Tiles exist to show objects at their own size. The whole-image sides (800/1333, a preset's) would scale a full
    640 crop by 1.25 and the crop of an image smaller than the tile by another factor each; and the model's spec would
    then tell prediction to shrink a large whole image to those sides. Off, the spec says so, and a whole image
    predicted without tiles is seen at the scale training saw. Given sides apply to each crop as to an image.
    """
    if config.data.tile is None or any(config.given(key) for key in SIZING_SETTINGS):
        return config
    return config.replace(data={"no_resize": True})
