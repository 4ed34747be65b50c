"""Sliced inference: a large image cut into overlapping tiles, each detected at the model's own scale, and the tiles'
detections merged back into one set in the image's pixels.

    detector.predict(image, tile=640)                 # 640 px tiles, the overlap and merging the model suits
    detector.predict(image, tile="auto")              # the tile the model was trained on (or its image side)
    TileOptions.of(640, overlap=0.25, merge="nms")    # the same settings as one object, checked once

:class:`TileOptions` holds every setting of sliced inference and checks it once, with the same limits and messages
for Python, the commands (``--tile``, ``--tile-overlap``, ``--tile-merge``, ``--whole-image``) and the server.
:func:`predict_sliced` runs the tiles through a detector in batches (only one batch of crops exists at a time, so
memory does not grow with the image) and merges them with a rule of :mod:`.merging`'s registry.

Caps: each tile keeps what the model's own filter keeps (its ``max_detections``, 300 unless converted otherwise);
the merged image keeps everything that survives merging unless the caller gives ``max_detections``. Whenever a cap
binds, on a tile or on the image, the result's ``capped`` says so.
"""

import dataclasses
import math
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..config.tile_settings import AUTO, TileError, check_overlap, parse_tile_text, tile_shape
from .detections import Detections
from .merging import (  # noqa: F401 - the merging rules' names, where they were before they had a module
    BORDER_MARGIN,
    SAME_OBJECT_IOU,
    MERGE_RULES,
    class_nms,
    cut_by_inner_edges,
    merge_tiles,
)

# The names of the tile settings' error before it had one home; the same class.
TilingError = TileError

DEFAULT_MERGE = "merge"
DEFAULT_OVERLAP = 0.2
# tile_overlap='auto' shares at least the 95th percentile of the training objects' sizes, within these bounds.
AUTO_OVERLAP_RANGE = (0.05, 0.5)


@dataclasses.dataclass(frozen=True)
class TileOptions:
    """How to slice images; checked when made.

    Attributes:
        height, width: a tile's size in the input image's pixels (images smaller than a tile are one tile of their
            own size in that direction); None for 'auto' (see :meth:`resolved`).
        overlap: the fraction of a tile that neighbouring tiles share, 0 to 0.9; None for 'auto'.
        merge: a rule of :data:`MERGE_RULES`.
        whole_image: also detect on the whole image (resized as without tiles), for objects larger than a tile.
        nms_threshold: IoU above which two boxes of one class from different tiles are one object.
        batch_size: tiles run through the network together.
    """

    height: Optional[int]
    width: Optional[int]
    overlap: Optional[float] = DEFAULT_OVERLAP
    merge: str = DEFAULT_MERGE
    whole_image: bool = False
    nms_threshold: float = 0.5
    batch_size: int = 4

    def __post_init__(self):
        if (self.height is None) != (self.width is None):
            raise TileError("tile must be 'auto' or a height and a width")
        if self.height is not None:
            height, width = tile_shape((self.height, self.width))
            object.__setattr__(self, "height", height)
            object.__setattr__(self, "width", width)
        if self.overlap is not None:
            object.__setattr__(self, "overlap", check_overlap(self.overlap))
        if self.merge not in MERGE_RULES:
            raise TileError(f"tile_merge must be one of {', '.join(MERGE_RULES)}, got {self.merge!r}")
        if not isinstance(self.whole_image, (bool, np.bool_)):
            raise TileError(f"whole_image must be true or false, got {self.whole_image!r}")
        if not 0.0 < float(self.nms_threshold) <= 1.0:
            raise TileError(f"tile nms_threshold must lie in (0, 1], got {self.nms_threshold}")
        if isinstance(self.batch_size, bool) or int(self.batch_size) < 1:
            raise TileError(f"tile batch size must be at least 1, got {self.batch_size}")
        object.__setattr__(self, "whole_image", bool(self.whole_image))
        object.__setattr__(self, "batch_size", int(self.batch_size))

    @classmethod
    def of(cls, tile: Union[int, Sequence[int], str, "TileOptions"], overlap: Union[float, str, None] = DEFAULT_OVERLAP,
           **options) -> "TileOptions":  # fmt: skip
        """TileOptions from ``tile``: an int (square), (height, width), ``'auto'``, or TileOptions (returned as they
        are); ``overlap`` a fraction or ``'auto'``; the other settings as keywords.

        Raises:
            TileError: anything else, naming the setting.
        """
        if isinstance(tile, TileOptions):
            return tile
        if isinstance(tile, str) and tile.strip().lower() == AUTO:
            height = width = None
        elif isinstance(tile, str):
            raise TileError(f"tile must be an int or (height, width) in pixels, or 'auto', got {tile!r}")
        else:
            height, width = tile_shape(tile)
        return cls(height, width, overlap=_overlap_value(overlap), **options)

    @classmethod
    def from_text(cls, tile: str, overlap: Union[str, float, None] = None, **options) -> "TileOptions":
        """TileOptions from a command's or a request's text: tile ``'N'``, ``'HxW'`` or ``'auto'``; overlap a number
        or ``'auto'`` (None: auto)."""
        sides = parse_tile_text(tile)
        return cls.of(sides, overlap=AUTO if overlap is None else overlap, **options)

    @property
    def size(self) -> Union[str, Tuple[int, int]]:
        """(height, width), or 'auto'."""
        return AUTO if self.height is None else (self.height, self.width)

    def resolved(self, spec=None) -> "TileOptions":
        """The options with 'auto' settled from a model's spec.

        - tile 'auto': the tile the model was trained on (``retinanet-train --tile``), else its image side
          (``image_min_side``, a square tile that the model sees at its own scale);
        - overlap 'auto': the 95th percentile of the training objects' longer sides (``spec.object_sizes``), in the
          image's pixels, as a share of the tile, rounded up to 5% and kept within 5%-50%; 0.2 for a model that
          recorded no sizes.

        Raises:
            TileError: 'auto' without a spec to settle it.
        """
        options = self
        if options.height is None:
            if spec is None:
                raise TileError("tile 'auto' needs the model's spec (the tile or image side it was trained on)")
            height, width = spec.tile if spec.tile is not None else (spec.image_min_side, spec.image_min_side)
            options = dataclasses.replace(options, height=height, width=width)
        if options.overlap is None:
            options = dataclasses.replace(options, overlap=auto_overlap(spec, (options.height, options.width)))
        return options

    def describe(self) -> str:
        height, width = self.size if self.height is not None else ("auto", "auto")
        overlap = "auto" if self.overlap is None else f"{self.overlap:g}"
        return (f"tiles {height}x{width}, overlap {overlap}, merge {self.merge}"
                + (", and the whole image" if self.whole_image else ""))  # fmt: skip


# The name of the tile settings before they held 'auto'; the same class.
Tiling = TileOptions


def _overlap_value(overlap: Union[float, str, None]) -> Optional[float]:
    if overlap is None or (isinstance(overlap, str) and overlap.strip().lower() == AUTO):
        return None
    return check_overlap(overlap)


def auto_overlap(spec, tile: Tuple[int, int]) -> float:
    """The overlap 'auto' gives: see :meth:`TileOptions.resolved`."""
    sizes = getattr(spec, "object_sizes", None) if spec is not None else None
    if not sizes or sizes.get("p95") is None:
        return DEFAULT_OVERLAP
    # The spec's sizes are in the pixels the network saw; a tile is resized by the model's spec like an image.
    scale = 1.0
    if spec.resize and spec.tile is None:
        from ..data.input_transform import compute_resize_scale

        scale = compute_resize_scale(tile, spec.image_min_side, spec.image_max_side)
    share = float(sizes["p95"]) / scale / min(tile)
    low, high = AUTO_OVERLAP_RANGE
    return float(min(max(math.ceil(share * 20 - 1e-9) / 20, low), high))


def tile_starts(length: int, tile: int, overlap: float) -> List[int]:
    """Where the tiles along one side start: every ``tile * (1 - overlap)`` pixels, the last one flush with the
    far edge (so every tile lies inside the image and is full-size); one tile at 0 when the side is shorter."""
    if length <= tile:
        return [0]
    stride = max(1, int(round(tile * (1.0 - overlap))))
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def tile_windows(height: int, width: int, options: TileOptions) -> np.ndarray:
    """The tiles of an image: (T, 4) int64 windows x1, y1, x2, y2 (x2, y2 exclusive), row by row."""
    if options.height is None or options.overlap is None:
        raise TileError("tile and tile_overlap 'auto' must be resolved with the model's spec first")
    tile_height, tile_width = min(options.height, height), min(options.width, width)
    windows = [
        (x, y, x + tile_width, y + tile_height)
        for y in tile_starts(height, options.height, options.overlap)
        for x in tile_starts(width, options.width, options.overlap)
    ]
    return np.asarray(windows, dtype=np.int64).reshape(-1, 4)


def batches(windows: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """The windows in groups of ``batch_size``: only one group's crops are in memory at a time."""
    for start in range(0, len(windows), batch_size):
        yield windows[start : start + batch_size]


def predict_sliced(detector, image: np.ndarray, options: TileOptions, score_threshold: Optional[float]) -> Detections:
    """One image's detections through tiles: every tile detected, the detections merged, best first.

    Args:
        detector: anything with a :class:`~keras_retinanet.inference.Detector`'s ``prepare(image, window)``,
            ``run_batch(prepared, score_threshold)`` and ``name_of(label)``.
        image: (H, W, 3) uint8 BGR.
        options: resolved TileOptions (no 'auto').
        score_threshold: only detections above it are merged (None: all the model gives).

    Returns:
        Detections of the whole image, everything that survives merging (``capped`` if any tile's cap bound).
    """
    height, width = image.shape[:2]
    windows = tile_windows(height, width, options)
    parts: List[Tuple[Detections, np.ndarray, int]] = []  # (a tile's detections, its window, its number)
    for first, group in zip(range(0, len(windows), options.batch_size), batches(windows, options.batch_size)):
        found = detector.run_batch([detector.prepare(image, window) for window in group], score_threshold)
        parts += zip(found, group, range(first, first + len(group)))
    if options.whole_image:  # resized as without tiles: a batch of its own
        (found,) = detector.run_batch([detector.prepare(image)], score_threshold)
        parts.append((found, np.array([0, 0, width, height]), -1))
    boxes = np.concatenate([found.boxes for found, _, _ in parts]) if parts else np.zeros((0, 4))
    scores = np.concatenate([found.scores for found, _, _ in parts]) if parts else np.zeros(0)
    labels = np.concatenate([found.labels for found, _, _ in parts]) if parts else np.zeros(0, np.int32)
    part_windows = np.concatenate([np.tile(window, (len(found), 1)) for found, window, _ in parts]) if parts else \
        np.zeros((0, 4))  # fmt: skip
    numbers = np.concatenate([np.full(len(found), number) for found, _, number in parts]) if parts else np.zeros(0)
    boxes, scores, labels = merge_tiles(boxes, scores, labels, part_windows, numbers, (height, width), options.merge,
                                        options.nms_threshold)  # fmt: skip
    names = [detector.name_of(int(label)) for label in labels]
    return Detections(boxes, scores, labels, names, (height, width), capped=any(found.capped for found, _, _ in parts),
                      network_seconds=sum(found.network_seconds for found, _, _ in parts))  # fmt: skip
