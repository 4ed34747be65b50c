"""Merging the detections of overlapping tiles into one set: the rules, in a registry, in numpy.

Every rule sees only detections above the caller's score threshold (the threshold comes first, so that a box below
it never takes the place of a confident one). Where two tiles see one object, the test is geometric: the tiles see
the same pixels where they overlap, so the same object's boxes agree there.

- ``'merge'`` (default): 'border', then the parts of an object that no tile saw whole (an object larger than the
  overlap, cut in every tile) are joined, best first: cut boxes of one class from two tiles that agree within the
  tiles' shared window (IoU at least ``SAME_OBJECT_IOU`` once both are clipped to it) are one object, reported as
  their union with the best score. A part scoring under ``JOIN_SCORE_RATIO`` of the best is absorbed without
  growing the box, so a weak detection never reshapes a confident one.
- ``'border'``: a box touching an inner edge of its tile (an edge that is not the image's) is cut there. A cut box
  that agrees with an uncut box of its class from another tile (IoU at least ``SAME_OBJECT_IOU`` once the uncut box
  is clipped to the cut box's tile) is that object seen whole, and gives way to it; then class-wise NMS removes
  objects seen whole by two tiles.
- ``'nms'``: class-wise NMS over every tile's boxes. A cut object's part overlaps its whole box by less than the
  IoU threshold when the cut is large, so it can be reported twice.

``benchmarks/bench_slicing_peers.py`` measures every rule against SAHI's postprocess types on the same model and
tile windows, at two overlaps and two thresholds; the constants below were chosen on its first images and checked on
held-out ones (docs/prediction.md). Handing a cut box's score to the whole box that replaces it, or keeping a
confident cut box against a weaker whole one, each measured lower there.

Which boxes may touch is found with a grid over the image (two boxes that share no cell cannot intersect) and all
pairs are measured at once, so merging costs a few array operations per image plus one short loop over the boxes
that do overlap, not a pass over all boxes per box.
"""

import dataclasses
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from ..config.tile_settings import TileError

# Pixels within which a box edge counts as lying on a tile's inner edge.
BORDER_MARGIN = 2.0
# Two boxes of one class from two tiles are one object when, clipped to the window both tiles see, their IoU is at
# least this.
SAME_OBJECT_IOU = 0.6
# A part joins a better part's box ('merge') only when it scores at least this share of it; a weaker one is absorbed.
JOIN_SCORE_RATIO = 0.3

Boxes = Tuple[np.ndarray, np.ndarray, np.ndarray]  # boxes (M, 4), scores (M,), labels (M,)


@dataclasses.dataclass(frozen=True)
class Pairs:
    """The pairs of boxes of one class that intersect: first[p] < second[p] index the boxes; intersection[p] is
    their intersection's area."""

    first: np.ndarray
    second: np.ndarray
    intersection: np.ndarray

    def subset(self, keep: np.ndarray) -> "Pairs":
        """The pairs among the boxes ``keep`` (a (K,) mask) keeps, indexed as the kept boxes are."""
        both = keep[self.first] & keep[self.second]
        new_index = np.cumsum(keep) - 1
        return Pairs(new_index[self.first[both]], new_index[self.second[both]], self.intersection[both])


@dataclasses.dataclass(frozen=True)
class TileDetections:
    """The detections of every tile of one image, in the image's pixels.

    Attributes:
        boxes: (K, 4) float64 x1, y1, x2, y2.
        scores: (K,) float64; labels: (K,) int64.
        windows: (K, 4) the window x1, y1, x2, y2 (exclusive) of each detection's tile; a whole-image pass has the
            window of the whole image, and so no inner edges.
        tiles: (K,) the number of each detection's tile (-1 for a whole-image pass).
        image_size: (height, width).
        pairs: the :class:`Pairs` of these boxes once found (:func:`with_pairs`), kept through ``subset``.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    windows: np.ndarray
    tiles: np.ndarray
    image_size: Tuple[int, int]
    pairs: Optional[Pairs] = None

    @classmethod
    def of(cls, boxes, scores, labels, windows, tiles, image_size) -> "TileDetections":
        return cls(
            np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(scores, np.float64).reshape(-1),
            np.asarray(labels, np.int64).reshape(-1), np.asarray(windows, np.float64).reshape(-1, 4),
            np.asarray(tiles, np.int64).reshape(-1), (int(image_size[0]), int(image_size[1])),
        )  # fmt: skip

    def subset(self, keep: np.ndarray) -> "TileDetections":
        """The detections ``keep`` (a (K,) mask) keeps, their pairs too."""
        pairs = self.pairs.subset(keep) if self.pairs is not None else None
        return dataclasses.replace(self, boxes=self.boxes[keep], scores=self.scores[keep], labels=self.labels[keep],
                                   windows=self.windows[keep], tiles=self.tiles[keep], pairs=pairs)  # fmt: skip


MergeRule = Callable[[TileDetections, float], Boxes]
MERGE_RULES: Dict[str, MergeRule] = {}


def merge_rule(name: str) -> Callable[[MergeRule], MergeRule]:
    """Register a merging rule under ``name``: ``rule(detections, nms_threshold) -> (boxes, scores, labels)``."""

    def register(rule: MergeRule) -> MergeRule:
        MERGE_RULES[name] = rule
        return rule

    return register


def areas(boxes: np.ndarray) -> np.ndarray:
    """(K,) areas of (K, 4) boxes; 0 for empty ones."""
    return np.maximum(boxes[:, 2] - boxes[:, 0], 0.0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0.0)


def pair_intersections(boxes: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """(P,) intersection areas of the box pairs (first[p], second[p])."""
    a, b = boxes[first], boxes[second]
    width = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    height = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    return np.maximum(width, 0.0) * np.maximum(height, 0.0)


def clipped(boxes: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """(K, 4) boxes cut to their (K, 4) windows (empty where they do not meet)."""
    return np.concatenate([np.maximum(boxes[:, :2], windows[:, :2]), np.minimum(boxes[:, 2:], windows[:, 2:])], axis=1)


def ious(first_boxes: np.ndarray, second_boxes: np.ndarray) -> np.ndarray:
    """(P,) IoU of each row of two (P, 4) arrays of boxes."""
    width = np.minimum(first_boxes[:, 2], second_boxes[:, 2]) - np.maximum(first_boxes[:, 0], second_boxes[:, 0])
    height = np.minimum(first_boxes[:, 3], second_boxes[:, 3]) - np.maximum(first_boxes[:, 1], second_boxes[:, 1])
    intersection = np.maximum(width, 0.0) * np.maximum(height, 0.0)
    return intersection / np.maximum(areas(first_boxes) + areas(second_boxes) - intersection, 1e-9)


def ranks(scores: np.ndarray) -> np.ndarray:
    """(K,) each box's place when ranked best first; equal scores in their given order."""
    order = np.argsort(-scores, kind="stable")
    place = np.empty(len(scores), dtype=np.int64)
    place[order] = np.arange(len(scores))
    return place


def touching_pairs(boxes: np.ndarray, groups: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Every pair of boxes of one group (a class) that intersect: (first (P,), second (P,)), first < second (see
    :func:`touching`)."""
    pairs = touching(boxes, groups)
    return pairs.first, pairs.second


@dataclasses.dataclass(frozen=True)
class _Grid:
    """Every box's cells on a grid of cells the size of the median box: one entry per (box, cell), sorted by
    (group, cell) key. A box lies in one or a few cells."""

    key: np.ndarray
    owner: np.ndarray
    cell_x: np.ndarray
    cell_y: np.ndarray
    first_x: np.ndarray
    first_y: np.ndarray

    @classmethod
    def of(cls, boxes: np.ndarray, groups: np.ndarray) -> "_Grid":
        count = len(boxes)
        extent = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        rank = min(count - 1, int(0.5 * count))
        cell = max(float(np.partition(extent, rank)[rank]), 1.0)
        first_x, first_y = np.floor(boxes[:, 0] / cell).astype(np.int64), np.floor(boxes[:, 1] / cell).astype(np.int64)
        spans_x = np.maximum(np.floor(boxes[:, 2] / cell).astype(np.int64) - first_x, 0) + 1
        spans_y = np.maximum(np.floor(boxes[:, 3] / cell).astype(np.int64) - first_y, 0) + 1
        first_x, first_y = first_x - first_x.min(), first_y - first_y.min()
        cells_of = spans_x * spans_y
        owner = np.repeat(np.arange(count), cells_of)
        local = np.arange(len(owner)) - np.repeat(np.cumsum(cells_of) - cells_of, cells_of)
        cell_x = first_x[owner] + local % spans_x[owner]
        cell_y = first_y[owner] + local // spans_x[owner]
        groups = np.asarray(groups, np.int64)
        group = groups - groups.min()
        key = (group[owner] * (cell_y.max() + 1) + cell_y) * (cell_x.max() + 1) + cell_x
        order = np.argsort(key, kind="stable")
        return cls(key[order], owner[order], cell_x[order], cell_y[order], first_x, first_y)

    def pairs(self, boxes: np.ndarray, entry: np.ndarray, partner: np.ndarray) -> Pairs:
        """The pairs of the entries ``entry[p]`` and ``partner[p]`` (of one cell) that intersect, each kept in the
        first cell the two boxes share (the larger of their first columns and rows) only."""
        first, second = self.owner[entry], self.owner[partner]
        shared_first = (self.cell_x[entry] == np.maximum(self.first_x[first], self.first_x[second])) & (
            self.cell_y[entry] == np.maximum(self.first_y[first], self.first_y[second]))  # fmt: skip
        first, second = first[shared_first], second[shared_first]
        low, high = np.minimum(first, second), np.maximum(first, second)
        intersection = pair_intersections(boxes, low, high)
        meet = intersection > 0
        return Pairs(low[meet], high[meet], intersection[meet])


def _ranges(starts: np.ndarray, ends: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(which range, each position) of every position in the ranges [starts[i], ends[i])."""
    lengths = np.maximum(ends - starts, 0)
    which = np.repeat(np.arange(len(starts)), lengths)
    return which, np.repeat(starts, lengths) + np.arange(len(which)) - np.repeat(np.cumsum(lengths) - lengths, lengths)


def touching(boxes: np.ndarray, groups: np.ndarray) -> Pairs:
    """Every pair of boxes of one group (a class) that intersect, with their intersections.

    Pairs are formed within each (group, cell) of a :class:`_Grid` only: in a crowded image this is a few array
    passes over the boxes instead of one pass per box.
    """
    if len(boxes) < 2:
        return Pairs(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    grid = _Grid.of(boxes, groups)
    # Each entry pairs with the entries after it in its run of equal keys.
    run_ends = np.append(np.flatnonzero(np.diff(grid.key)) + 1, len(grid.key))
    run_lengths = np.diff(np.concatenate([[0], run_ends]))
    entry, partner = _ranges(np.arange(len(grid.key)) + 1, np.repeat(run_ends, run_lengths))
    return grid.pairs(boxes, entry, partner)


def touching_some(boxes: np.ndarray, groups: np.ndarray, rows: np.ndarray) -> Pairs:
    """The pairs of :func:`touching` that hold at least one of the boxes ``rows``: each row's entries look up the
    entries of their cells, so the cost follows the rows, not all the boxes."""
    if len(boxes) < 2 or not len(rows):
        return Pairs(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    grid = _Grid.of(boxes, groups)
    involved = np.zeros(len(boxes), dtype=bool)
    involved[rows] = True
    mine = np.flatnonzero(involved[grid.owner])
    starts = np.searchsorted(grid.key, grid.key[mine], side="left")
    ends = np.searchsorted(grid.key, grid.key[mine], side="right")
    which, partner = _ranges(starts, ends)
    entry = mine[which]
    # Not a box with itself, and a pair of two rows once (from its first entry).
    other = (grid.owner[partner] != grid.owner[entry]) & ~(involved[grid.owner[partner]] & (partner < entry))
    return grid.pairs(boxes, entry[other], partner[other])


def with_pairs(detections: TileDetections) -> TileDetections:
    """The detections with their :class:`Pairs` found (once: rules pass them on through ``subset``)."""
    if detections.pairs is not None:
        return detections
    return dataclasses.replace(detections, pairs=touching(detections.boxes, detections.labels))


def suppress_in_rank_order(place: np.ndarray, stronger: np.ndarray, weaker: np.ndarray) -> np.ndarray:
    """Greedy suppression: going best first, a box not suppressed itself suppresses its weaker partners.

    Args:
        place: (K,) rank of each box (:func:`ranks`).
        stronger, weaker: (E,) pairs where ``stronger`` would suppress ``weaker`` (place[stronger] < place[weaker]).

    Returns:
        (K,) bool, whether each box is suppressed.
    """
    suppressed = np.zeros(len(place), dtype=bool)
    if not len(stronger):
        return suppressed
    order = np.argsort(place[stronger], kind="stable")
    stronger, weaker = stronger[order], weaker[order]
    starts = np.flatnonzero(np.r_[True, stronger[1:] != stronger[:-1]])
    ends = np.r_[starts[1:], len(stronger)]
    # Only boxes that overlap another are visited, in rank order: each one's fate is settled when it is reached.
    for box, start, end in zip(stronger[starts].tolist(), starts.tolist(), ends.tolist()):
        if not suppressed[box]:
            suppressed[weaker[start:end]] = True
    return suppressed


def class_nms(
    boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou_threshold: float, pairs: Optional[Pairs] = None
) -> np.ndarray:
    """Greedy NMS per class (IoU above the threshold suppresses): the kept indices, best first.

    ``pairs``: the boxes' :class:`Pairs` when already found.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64)
    pairs = touching(boxes, np.asarray(labels)) if pairs is None else pairs
    first, second, intersection = pairs.first, pairs.second, pairs.intersection
    box_areas = areas(boxes)
    iou = intersection / np.maximum(box_areas[first] + box_areas[second] - intersection, 1e-9)
    first, second = first[iou > iou_threshold], second[iou > iou_threshold]
    place = ranks(scores)
    first_stronger = place[first] < place[second]
    stronger = np.where(first_stronger, first, second)
    weaker = np.where(first_stronger, second, first)
    suppressed = suppress_in_rank_order(place, stronger, weaker)
    kept = np.flatnonzero(~suppressed)
    return kept[np.argsort(place[kept], kind="stable")]


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


def first_per_group(groups: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """The indices of the first row of each group once rows are sorted by group, then by ``keys`` (most significant
    first, ascending)."""
    order = np.lexsort(tuple(reversed(keys)) + (groups,))
    groups = groups[order]
    return order[np.r_[True, groups[1:] != groups[:-1]]] if len(order) else order


def seen_whole_elsewhere(detections: TileDetections, cut: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """For each cut box, the uncut box of its class from another tile that is the same object seen whole.

    Returns:
        (cut boxes that have one (C,), the whole box of each (C,)): of several, the one agreeing best, then the
        best scoring.
    """
    pairs = with_pairs(detections).pairs
    part = np.concatenate([pairs.first, pairs.second])
    whole = np.concatenate([pairs.second, pairs.first])
    eligible = cut[part] & ~cut[whole] & (detections.tiles[part] != detections.tiles[whole])
    part, whole = part[eligible], whole[eligible]
    agreement = ious(detections.boxes[part], clipped(detections.boxes[whole], detections.windows[part]))
    same = agreement >= SAME_OBJECT_IOU
    part, whole, agreement = part[same], whole[same], agreement[same]
    best = first_per_group(part, -agreement, -detections.scores[whole])
    return part[best], whole[best]


def _border_pass(detections: TileDetections) -> Tuple[TileDetections, np.ndarray]:
    """The detections without the cut boxes a neighbour saw whole; and which of the remaining boxes are cut."""
    detections = with_pairs(detections)
    cut = cut_by_inner_edges(detections.boxes, detections.windows, detections.image_size)
    parts, _ = seen_whole_elsewhere(detections, cut)
    keep = np.ones(len(cut), dtype=bool)
    keep[parts] = False
    return detections.subset(keep), cut[keep]


def _nms_result(detections: TileDetections, nms_threshold: float) -> Boxes:
    kept = class_nms(detections.boxes, detections.scores, detections.labels, nms_threshold, detections.pairs)
    return detections.boxes[kept], detections.scores[kept], detections.labels[kept]


def join_parts(detections: TileDetections) -> Tuple[np.ndarray, np.ndarray]:
    """Greedy joining, best first: each box absorbs the weaker boxes of its class from other tiles that agree with it
    within the two tiles' shared window; it becomes their union (with the parts scoring at least
    ``JOIN_SCORE_RATIO`` of it) and keeps its own, best, score.

    Returns:
        (absorbed (K,) bool, the boxes (K, 4) with each owner grown into its union).
    """
    detections = with_pairs(detections)
    boxes, windows, scores = detections.boxes, detections.windows, detections.scores
    first, second = detections.pairs.first, detections.pairs.second
    other_tile = detections.tiles[first] != detections.tiles[second]
    first, second = first[other_tile], second[other_tile]
    shared = clipped(windows[first], windows[second])
    same = ious(clipped(boxes[first], shared), clipped(boxes[second], shared)) >= SAME_OBJECT_IOU
    first, second = first[same], second[same]
    place = ranks(scores)
    first_stronger = place[first] < place[second]
    stronger = np.where(first_stronger, first, second)
    weaker = np.where(first_stronger, second, first)
    absorbed = suppress_in_rank_order(place, stronger, weaker)
    # Each absorbed box belongs to the best box that absorbed it and was not absorbed itself.
    live = ~absorbed[stronger] & absorbed[weaker]
    stronger, weaker = stronger[live], weaker[live]
    owner_of = first_per_group(weaker, place[stronger])
    owner, member = stronger[owner_of], weaker[owner_of]
    grows = scores[member] >= JOIN_SCORE_RATIO * scores[owner]
    owner, member = owner[grows], member[grows]
    union = boxes.copy()
    np.minimum.at(union[:, 0], owner, boxes[member, 0])
    np.minimum.at(union[:, 1], owner, boxes[member, 1])
    np.maximum.at(union[:, 2], owner, boxes[member, 2])
    np.maximum.at(union[:, 3], owner, boxes[member, 3])
    return absorbed, union


def with_grown_boxes(detections: TileDetections, grew: np.ndarray) -> TileDetections:
    """Detections some of whose boxes grew (``grew``, (K,) bool) since their pairs were found, with their pairs: the
    others' as they were, and the grown boxes' (the joined objects) found anew."""
    pairs = detections.pairs
    unchanged = ~(grew[pairs.first] | grew[pairs.second])
    grown = touching_some(detections.boxes, detections.labels, np.flatnonzero(grew))
    return dataclasses.replace(detections, pairs=Pairs(
        *(np.concatenate([getattr(pairs, name)[unchanged], getattr(grown, name)]) for name in
          ("first", "second", "intersection"))))  # fmt: skip


@merge_rule("merge")
def merge_by_joining(detections: TileDetections, nms_threshold: float = 0.5) -> Boxes:
    remaining, cut = _border_pass(detections)
    if cut.any():
        parts = np.flatnonzero(cut)
        absorbed, union = join_parts(remaining.subset(cut))
        boxes = remaining.boxes.copy()
        boxes[parts] = union
        grew = np.zeros(len(cut), dtype=bool)
        grew[parts] = np.any(union != remaining.boxes[parts], axis=1)
        keep = np.ones(len(cut), dtype=bool)
        keep[parts[absorbed]] = False
        remaining = with_grown_boxes(dataclasses.replace(remaining, boxes=boxes).subset(keep), grew[keep])
    return _nms_result(remaining, nms_threshold)


@merge_rule("border")
def merge_by_border(detections: TileDetections, nms_threshold: float = 0.5) -> Boxes:
    remaining, _ = _border_pass(detections)
    return _nms_result(remaining, nms_threshold)


@merge_rule("nms")
def merge_by_nms(detections: TileDetections, nms_threshold: float = 0.5) -> Boxes:
    return _nms_result(detections, nms_threshold)


def merge_tiles(
    boxes: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    windows: np.ndarray,
    tiles: np.ndarray,
    image_size: Tuple[int, int],
    rule: str = "merge",
    nms_threshold: float = 0.5,
) -> Boxes:
    """One set of detections from the detections of overlapping tiles.

    Args:
        boxes: (K, 4) in image pixels; scores (K,); labels (K,); only those above the caller's score threshold.
        windows: (K, 4) the window of each detection's tile; tiles: (K,) the tile's number (a whole-image pass
            has the window of the whole image, and so no inner edges).
        image_size: (height, width).
        rule: a name in :data:`MERGE_RULES` (see the module's docstring), default 'merge'.

    Returns:
        boxes (M, 4), scores (M,), labels (M,), best first.

    Raises:
        TileError: an unknown rule.
    """
    if rule not in MERGE_RULES:
        raise TileError(f"tile_merge must be one of {', '.join(MERGE_RULES)}, got {rule!r}")
    return MERGE_RULES[rule](TileDetections.of(boxes, scores, labels, windows, tiles, image_size), nms_threshold)

