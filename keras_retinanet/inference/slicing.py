"""Sliced inference: a large image cut into overlapping tiles, each detected at the model's own scale, and the
tiles' detections merged back into one set in the image's pixels.

Pure numpy: the windows of an image, and the merging of detections from overlapping windows. The detector
(:class:`keras_retinanet.inference.Detector`) runs the tiles through its model in batches.

Merging rules (``merge``), measured by ``benchmarks/bench_dense.py`` (see README, "Dense scenes"):

- ``'border'`` (default): a box that touches an inner edge of its tile (an edge that is not the image's) is cut
  there; it is dropped when a box of the same class from another tile covers most of it (the object seen whole
  by a neighbour), then class-wise NMS removes the objects seen whole by two tiles. An object cut by a border is
  reported once, with the whole box of the tile that saw it whole.
- ``'nms'``: class-wise NMS over every tile's boxes. A cut object's part overlaps its whole box by less than the
  IoU threshold when the cut is large, so it can be reported twice.
- ``'merge'``: 'border', and then the parts of an object that no tile saw whole (an object larger than the overlap,
  cut in every tile) are joined: cut boxes of one class from different tiles whose intersection covers most of the
  smaller become their union, with the best score (SAHI's box merging, restricted to boxes cut by tile edges, since
  merging every box joins neighbouring objects in crowded scenes).
"""

import dataclasses
from typing import Iterator, List, Sequence, Tuple, Union

import numpy as np

MERGE_RULES = ("border", "nms", "merge")
# Pixels within which a box edge counts as lying on a tile's inner edge.
BORDER_MARGIN = 2.0
# A cut box is another tile's object when a box of its class from another tile covers this much of it.
COVERED_FRACTION = 0.6


class TilingError(ValueError):
    """Bad tile arguments: names the argument and what is allowed."""


@dataclasses.dataclass(frozen=True)
class Tiling:
    """How to slice images.

    Attributes:
        height, width: a tile's size in the input image's pixels (images smaller than a tile are one tile of
            their own size in that direction).
        overlap: the fraction of a tile that neighbouring tiles share, in [0, 1).
        merge: one of :data:`MERGE_RULES`.
        whole_image: also detect on the whole image (resized as without tiles), for objects larger than a tile.
        nms_threshold: IoU above which two boxes of one class from different tiles are one object.
        batch_size: tiles run through the network together.
    """

    height: int
    width: int
    overlap: float = 0.2
    merge: str = "border"
    whole_image: bool = False
    nms_threshold: float = 0.5
    batch_size: int = 4

    def __post_init__(self):
        if int(self.height) < 1 or int(self.width) < 1:
            raise TilingError(f"tile must be a positive size in pixels, got {self.height}x{self.width}")
        if not 0.0 <= float(self.overlap) < 1.0:
            raise TilingError(f"tile_overlap must be a fraction of the tile in [0, 1), got {self.overlap}")
        if self.merge not in MERGE_RULES:
            raise TilingError(f"tile_merge must be one of {', '.join(MERGE_RULES)}, got {self.merge!r}")
        if int(self.batch_size) < 1:
            raise TilingError(f"tile batch size must be at least 1, got {self.batch_size}")

    @classmethod
    def of(cls, tile: Union[int, Sequence[int], "Tiling"], **options) -> "Tiling":
        """A Tiling from ``tile``: an int (square), (height, width), or a Tiling (returned as it is)."""
        if isinstance(tile, Tiling):
            return tile
        if isinstance(tile, (int, np.integer)) and not isinstance(tile, bool):
            return cls(int(tile), int(tile), **options)
        if isinstance(tile, (tuple, list)) and len(tile) == 2 and all(isinstance(v, (int, np.integer)) for v in tile):
            return cls(int(tile[0]), int(tile[1]), **options)
        raise TilingError(f"tile must be an int or (height, width) in pixels, got {tile!r}")


def tile_starts(length: int, tile: int, overlap: float) -> List[int]:
    """Where the tiles along one side start: every ``tile * (1 - overlap)`` pixels, the last one flush with the
    far edge (so every tile lies inside the image and is full-size); one tile at 0 when the side is shorter."""
    if length <= tile:
        return [0]
    stride = max(1, int(round(tile * (1.0 - overlap))))
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def tile_windows(height: int, width: int, tiling: Tiling) -> np.ndarray:
    """The tiles of an image: (T, 4) int64 windows x1, y1, x2, y2 (x2, y2 exclusive), row by row."""
    tile_height, tile_width = min(tiling.height, height), min(tiling.width, width)
    windows = [
        (x, y, x + tile_width, y + tile_height)
        for y in tile_starts(height, tiling.height, tiling.overlap)
        for x in tile_starts(width, tiling.width, tiling.overlap)
    ]
    return np.asarray(windows, dtype=np.int64).reshape(-1, 4)


def batches(windows: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """The windows in groups of ``batch_size``: only one group's crops are in memory at a time."""
    for start in range(0, len(windows), batch_size):
        yield windows[start : start + batch_size]


def _areas(boxes: np.ndarray) -> np.ndarray:
    return np.maximum(boxes[:, 2] - boxes[:, 0], 0.0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0.0)


def _intersections(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    width = np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0])
    height = np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1])
    return np.maximum(width, 0.0) * np.maximum(height, 0.0)


def _ranked(scores: np.ndarray) -> np.ndarray:
    """Best first; equal scores in their given order."""
    return np.argsort(-scores, kind="stable")


class BoxGrid:
    """Which boxes may overlap which, by a grid over the image: two boxes that share no cell cannot intersect.

    The cell is about twice the size of most boxes, so a box lies in a few cells and a query looks at its
    neighbours only: merging tens of thousands of detections (a 10,000 px image in hundreds of tiles) costs about
    one small step per box instead of one pass over all boxes per box.
    """

    def __init__(self, boxes: np.ndarray):
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        extent = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        self.cell = max(2.0 * float(np.percentile(extent, 95)) if len(boxes) else 1.0, 1.0)
        self.first, self.last = self._cells(boxes)
        spans = (self.last - self.first + 1).prod(axis=1)
        owners = np.repeat(np.arange(len(boxes)), spans)
        keys = [self._keys(low, high) for low, high in zip(self.first, self.last)]
        keys = np.concatenate(keys) if keys else []
        keys = np.asarray(keys, dtype=np.int64)
        order = np.argsort(keys, kind="stable")
        self.keys, self.owners = keys[order], owners[order]

    def _cells(self, boxes):
        first = np.floor(boxes[:, :2] / self.cell).astype(np.int64)
        last = np.floor(boxes[:, 2:] / self.cell).astype(np.int64)
        return first, np.maximum(last, first)

    @staticmethod
    def _keys(first, last):
        xs, ys = np.arange(first[0], last[0] + 1), np.arange(first[1], last[1] + 1)
        return (ys[:, None] * _GRID_STRIDE + xs[None, :]).reshape(-1)

    def near(self, box: np.ndarray) -> np.ndarray:
        """The indices of the boxes sharing a cell with ``box`` (x1, y1, x2, y2), ascending."""
        first, last = self._cells(np.asarray(box, np.float64).reshape(1, 4))
        keys = self._keys(first[0], last[0])
        starts = np.searchsorted(self.keys, keys, side="left")
        ends = np.searchsorted(self.keys, keys, side="right")
        if len(keys) == 1:
            return self.owners[starts[0] : ends[0]]
        return np.unique(np.concatenate([self.owners[a:b] for a, b in zip(starts, ends)]))


# Cell keys are row * _GRID_STRIDE + column: columns of images up to this many cells wide stay distinct.
_GRID_STRIDE = 1 << 31


def class_nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS per class (IoU above the threshold suppresses): the kept indices, best first."""
    order = _ranked(scores)
    boxes, labels = boxes[order], labels[order]
    areas = _areas(boxes)
    grid = BoxGrid(boxes)
    suppressed = np.zeros(len(order), dtype=bool)
    kept = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        kept.append(i)
        rest = grid.near(boxes[i])
        rest = rest[(rest > i) & ~suppressed[rest] & (labels[rest] == labels[i])]
        if len(rest):
            intersection = _intersections(boxes[i], boxes[rest])
            iou = intersection / np.maximum(areas[i] + areas[rest] - intersection, 1e-9)
            suppressed[rest[iou > iou_threshold]] = True
    return order[np.asarray(kept, dtype=np.int64)]


def cut_by_inner_edges(boxes: np.ndarray, windows: np.ndarray, image_size: Tuple[int, int]) -> np.ndarray:
    """Whether each box touches an edge of its tile that is not an edge of the image.

    Args:
        boxes: (K, 4) in image pixels; windows: (K, 4) the window of each box's tile.
        image_size: (height, width).
    """
    height, width = image_size
    margin = BORDER_MARGIN
    left = (windows[:, 0] > 0) & (boxes[:, 0] <= windows[:, 0] + margin)
    top = (windows[:, 1] > 0) & (boxes[:, 1] <= windows[:, 1] + margin)
    right = (windows[:, 2] < width) & (boxes[:, 2] >= windows[:, 2] - 1 - margin)
    bottom = (windows[:, 3] < height) & (boxes[:, 3] >= windows[:, 3] - 1 - margin)
    return left | top | right | bottom


def _covered_elsewhere(boxes, labels, tiles, cut) -> np.ndarray:
    """Whether each cut box is mostly inside a box of its class from another tile that is not cut itself."""
    covered = np.zeros(len(boxes), dtype=bool)
    whole = np.flatnonzero(~cut)
    grid = BoxGrid(boxes[whole])
    areas = _areas(boxes)
    for i in np.flatnonzero(cut):
        others = whole[grid.near(boxes[i])]
        others = others[(labels[others] == labels[i]) & (tiles[others] != tiles[i])]
        if len(others):
            fraction = _intersections(boxes[i], boxes[others]) / max(areas[i], 1e-9)
            covered[i] = bool(np.any(fraction >= COVERED_FRACTION))
    return covered


def merge_boxes(boxes, scores, labels, tiles=None, fraction=0.5) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy merging: best first, each box absorbs the later boxes of its class (from other tiles, given
    ``tiles``) whose intersection with it covers at least ``fraction`` of the smaller of the two; it becomes their
    union and keeps its own (best) score."""
    order = _ranked(scores)
    boxes, scores, labels = boxes[order].copy(), scores[order], labels[order]
    tiles = np.arange(len(order)) if tiles is None else np.asarray(tiles)[order]
    grid = BoxGrid(boxes)
    absorbed = np.zeros(len(order), dtype=bool)
    kept = []
    for i in range(len(order)):
        if absorbed[i]:
            continue
        kept.append(i)
        rest = grid.near(boxes[i])  # the grid of the boxes as they came: a union grows, its parts were near it
        rest = rest[(rest > i) & ~absorbed[rest] & (labels[rest] == labels[i]) & (tiles[rest] != tiles[i])]
        if len(rest):
            smaller = np.minimum(_areas(boxes[i : i + 1]), _areas(boxes[rest]))
            joined = rest[_intersections(boxes[i], boxes[rest]) >= fraction * np.maximum(smaller, 1e-9)]
            if len(joined):
                group = np.concatenate([boxes[i : i + 1], boxes[joined]])
                boxes[i] = [group[:, 0].min(), group[:, 1].min(), group[:, 2].max(), group[:, 3].max()]
                absorbed[joined] = True
    kept = np.asarray(kept, dtype=np.int64)
    return boxes[kept], scores[kept], labels[kept]


def merge_tiles(
    boxes: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    windows: np.ndarray,
    tiles: np.ndarray,
    image_size: Tuple[int, int],
    rule: str = "border",
    nms_threshold: float = 0.5,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One set of detections from the detections of overlapping tiles.

    Args:
        boxes: (K, 4) in image pixels; scores (K,); labels (K,).
        windows: (K, 4) the window of each detection's tile; tiles: (K,) the tile's number (a whole-image pass
            has the window of the whole image, and so no inner edges).
        image_size: (height, width).
        rule: one of :data:`MERGE_RULES` (see the module's docstring).

    Returns:
        boxes (M, 4), scores (M,), labels (M,), best first.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores, labels, tiles = np.asarray(scores, np.float64), np.asarray(labels, np.int64), np.asarray(tiles)
    if rule not in MERGE_RULES:
        raise TilingError(f"tile_merge must be one of {', '.join(MERGE_RULES)}, got {rule!r}")
    if rule in ("border", "merge"):
        cut = cut_by_inner_edges(boxes, np.asarray(windows).reshape(-1, 4), image_size)
        keep = ~_covered_elsewhere(boxes, labels, tiles, cut)
        boxes, scores, labels, tiles, cut = boxes[keep], scores[keep], labels[keep], tiles[keep], cut[keep]
        if rule == "merge" and cut.any():
            joined = merge_boxes(boxes[cut], scores[cut], labels[cut], tiles[cut])
            boxes, scores, labels = (np.concatenate([whole[~cut], part]) for whole, part in
                                     zip((boxes, scores, labels), joined))  # fmt: skip
    kept = class_nms(boxes, scores, labels, nms_threshold)
    return boxes[kept], scores[kept], labels[kept]
