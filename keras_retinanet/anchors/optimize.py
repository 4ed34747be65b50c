"""Anchor ratios, scales and sizes fitted to a dataset's boxes (scipy's differential evolution).

The search keeps keras-retinanet's anchor semantics (:func:`~keras_retinanet.anchors.anchors_for_shape`):
per level ``l`` the reference anchors ``generate_anchors(sizes[l], ratios, scales)`` are placed at
``((j + 0.5) * stride, (i + 0.5) * stride)`` over the level's feature map. What it changes:

* ``ratios`` (R of them, h / w) and ``scales`` (S of them), so the number of anchors per position,
  and with it the heads, stays the same;
* ``sizes``, as one base size doubling with the strides (``sizes[l] = base * strides[l] / strides[0]``,
  keras-retinanet's 32 64 128 256 512 is base 32). The base never goes below the lowest level's stride
  (8 px for P3) and the scales never below 1: an anchor smaller than the distance between anchor
  centres misses a box of its own size centred between two of them (IoU 0.14 at half a stride off
  on both axes), so smaller anchors do not cover small objects better. Smaller objects need a finer
  level: list P2 (stride 4) in the .ini's ``[pyramid_levels]``.

The objective is cheap and exact. For one anchor shape, the IoU with a box only falls as the anchor
centre moves away from the box centre along either axis, so a box's best IoU with the anchors of a
level is its IoU with the anchors at the nearest centre of that level's grid (clipped to the feature
map). Each box is placed once (:func:`place_boxes`); a candidate then costs one (M, L, A) array of
IoUs, computed with the operations of :mod:`.overlap`, so its coverage is the one the real anchors
give (a test checks it against ``anchors_for_shape``). Boxes are looked at alone here, so the
coverage is that of IoU >= 0.5 (an anchor two crowded boxes both want goes to one of them in training).

The search looks at every box, up to :data:`MAX_BOXES` (a random sample of that many above it, which the
result says). The anchors returned are the best, on every box, of the search's result, the candidate of the
search that covered the most boxes, the starting anchors and any others given: never fewer boxes covered than
any of them, and among equals the higher mean best IoU (the start when nothing beats it).
"""

import dataclasses
from typing import Optional, Sequence, Tuple

import numpy as np

from .matching import POSITIVE_OVERLAP
from .generation import AnchorParameters, generate_anchors

# The objective: coverage (share of boxes with best IoU >= 0.5) plus this much of the mean best IoU,
# which ranks candidates of equal coverage and guides the search where coverage is flat.
MEAN_IOU_WEIGHT = 0.5
# Boxes the search looks at: all of them up to this many, else a random sample this large (said in the result).
# A search evaluates some 1,700 candidates, each in time linear in the boxes: 20,000 boxes took 91 s on a busy
# 2-core CPU (load 9), 1,000 boxes 3 s.
MAX_BOXES = 20_000
DECIMALS = 3  # ratios and scales are rounded to this many decimals, as the .ini holds them
MAX_BASE_FACTOR = 8.0  # the base size goes up to this many times the lowest stride
MAX_SCALE = 2.0 ** 1.5  # scales between 1 and this (an octave and a half: levels overlap)
RATIO_LIMITS = (1.0 / 8.0, 8.0)
_BLOCK = 512  # boxes per block of best_ious: larger (M, L, A) temporaries leave the cache and cost 2-3 times more a box


@dataclasses.dataclass(frozen=True)
class PlacedBoxes:
    """Boxes and, per pyramid level, the anchor centre nearest to each.

    Attributes:
        boxes: (M, 4) float64 boxes (x1, y1, x2, y2) in network input pixels.
        centre_x: (M, L) float64 x of the nearest anchor column centre on each level.
        centre_y: (M, L) float64 y of the nearest anchor row centre on each level.
    """

    boxes: np.ndarray
    centre_x: np.ndarray
    centre_y: np.ndarray

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def subset(self, indices) -> "PlacedBoxes":
        return PlacedBoxes(self.boxes[indices], self.centre_x[indices], self.centre_y[indices])


def place_boxes(boxes: np.ndarray, feature_shapes: np.ndarray, strides: Sequence[int]) -> PlacedBoxes:
    """Find, per level, the anchor grid centre nearest to each box centre.

    Args:
        boxes: (M, 4) boxes in network input pixels.
        feature_shapes: (M, L, 2) (rows, columns) of each box's image on each level, as the
            backbone's ``feature_shapes`` gives them (``guess_shapes`` for ResNet).
        strides: (L,) strides of the levels.

    Returns:
        :class:`PlacedBoxes`.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape((-1, 4))
    shapes = np.asarray(feature_shapes, dtype=np.int64).reshape((boxes.shape[0], len(strides), 2))
    strides = np.asarray(strides, dtype=np.float64)
    centres = []
    for low, high, axis in ((0, 2, 0), (1, 3, 1)):  # x uses the columns (shape[..., 1]), y the rows
        centre = (boxes[:, low] + boxes[:, high]) / 2
        # Anchor centres are (j + 0.5) * stride: the nearest is j = floor(centre / stride), within the map.
        index = np.floor(centre[:, None] / strides[None, :])
        index = np.clip(index, 0, np.maximum(shapes[:, :, 1 - axis] - 1, 0))
        # The same operations as generation.shift: (j + 0.5) * stride in float64.
        centres.append((index + 0.5) * strides[None, :])
    return PlacedBoxes(boxes=boxes, centre_x=centres[0], centre_y=centres[1])


def best_ious(placed: PlacedBoxes, parameters: AnchorParameters) -> np.ndarray:
    """Best IoU of each placed box with the anchors of ``parameters`` on every level.

    Args:
        placed: boxes from :func:`place_boxes` for the same levels and strides.
        parameters: the anchors (their ``sizes`` one per level of ``placed``).

    Returns:
        (M,) float64 best IoU, as ``compute_overlap(boxes, anchors_for_shape(...)).max(1)`` gives it.
    """
    reference = np.stack(
        [generate_anchors(size, parameters.ratios, parameters.scales) for size in parameters.sizes]
    )  # (L, A, 4), centred on the origin
    if reference.shape[0] != placed.centre_x.shape[1]:
        raise ValueError(f"{reference.shape[0]} levels of anchors for boxes placed on {placed.centre_x.shape[1]} levels")
    # In blocks: (M, L, A) temporaries of a few thousand boxes leave the cache and cost 2-3 times more per box.
    return np.concatenate(
        [_best_ious_block(placed.subset(slice(start, start + _BLOCK)), reference) for start in range(0, len(placed), _BLOCK)]
        or [np.zeros((0,), dtype=np.float64)]
    )


def _best_ious_block(placed: PlacedBoxes, reference: np.ndarray) -> np.ndarray:
    """:func:`best_ious` of a few boxes; ``reference`` (L, A, 4) are the levels' anchors at the origin."""
    cx, cy = placed.centre_x[:, :, None], placed.centre_y[:, :, None]
    # anchor + shift, in generation.shift's order; (M, L, A) each; then overlap.py's operations, in place.
    # The values are the full computation's, but for the last bit where a box centre lies halfway between
    # two anchor centres (both are nearest, and their coordinates round differently).
    ax1, ay1 = reference[None, :, :, 0] + cx, reference[None, :, :, 1] + cy
    ax2, ay2 = reference[None, :, :, 2] + cx, reference[None, :, :, 3] + cy
    bx1, by1, bx2, by2 = (placed.boxes[:, column, None, None] for column in range(4))
    iw = np.minimum(ax2, bx2)
    iw -= np.maximum(ax1, bx1)
    ih = np.minimum(ay2, by2)
    ih -= np.maximum(ay1, by1)
    intersection = np.clip(iw, 0, None, out=iw)
    intersection *= np.clip(ih, 0, None, out=ih)
    union = np.subtract(ax2, ax1, out=ax2)
    union *= np.subtract(ay2, ay1, out=ay2)  # the anchors' areas
    union += (bx2 - bx1) * (by2 - by1)
    union -= intersection
    valid = intersection > 0
    valid &= union > 0
    overlaps = np.zeros(intersection.shape, dtype=np.float64)
    np.divide(intersection, union, out=overlaps, where=valid)
    return overlaps.reshape((overlaps.shape[0], -1)).max(axis=1, initial=0.0)


def coverage_score(ious: np.ndarray, positive_overlap: float = POSITIVE_OVERLAP) -> Tuple[float, float]:
    """(share of boxes with best IoU >= positive_overlap, mean best IoU); (1, 1) for no boxes."""
    if ious.shape[0] == 0:
        return 1.0, 1.0
    return float(np.mean(ious >= positive_overlap)), float(np.mean(ious))


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """The parameter vector of the search and its bounds.

    The vector is ``[log2 base, log ratio_1..R, log2 scale_1..S]``; :meth:`decode` turns one into
    the :class:`AnchorParameters` the .ini will hold (integer sizes, rounded ratios and scales).
    """

    strides: Tuple[int, ...]
    num_ratios: int
    num_scales: int
    ratio_bounds: Tuple[float, float]

    def bounds(self) -> list:
        base = (np.log2(self.strides[0]), np.log2(self.strides[0] * MAX_BASE_FACTOR))
        ratio = (float(np.log(self.ratio_bounds[0])), float(np.log(self.ratio_bounds[1])))
        return [base] + [ratio] * self.num_ratios + [(0.0, float(np.log2(MAX_SCALE)))] * self.num_scales

    def decode(self, vector: np.ndarray) -> AnchorParameters:
        base = 2.0 ** float(vector[0])
        sizes = [max(1, int(round(base * stride / self.strides[0]))) for stride in self.strides]
        ratios = np.round(np.sort(np.exp(vector[1 : 1 + self.num_ratios])), DECIMALS)
        scales = np.round(np.sort(2.0 ** vector[1 + self.num_ratios :]), DECIMALS)
        return AnchorParameters(sizes, list(self.strides), ratios, scales)

    def encode(self, parameters: AnchorParameters) -> np.ndarray:
        """The vector of ``parameters`` (their base taken from the first size), clipped into the bounds."""
        vector = np.concatenate(
            [[np.log2(parameters.sizes[0])], np.log(np.asarray(parameters.ratios, np.float64)),
             np.log2(np.asarray(parameters.scales, np.float64))]
        )  # fmt: skip
        low, high = np.array(self.bounds()).T
        # Just inside: differential_evolution scales x0 to [0, 1] and refuses one a bound rounds to -1e-16.
        margin = 1e-9 * (high - low)
        return np.clip(vector, low + margin, high - margin)


def start_parameters(levels: Sequence[int], parameters: Optional[AnchorParameters] = None) -> AnchorParameters:
    """The anchors a search starts from.

    Args:
        levels: the pyramid levels, e.g. [2, 3, 4, 5, 6, 7].
        parameters: the current anchors, used when they give one size per level.

    Returns:
        ``parameters``, or keras-retinanet's rule for the levels: stride 2^l, size 4 * stride (32 at P3)
        and the default ratios and scales.
    """
    if parameters is not None and len(parameters.sizes) == len(levels):
        return parameters
    default = AnchorParameters.default
    return AnchorParameters([4 * 2**level for level in levels], [2**level for level in levels], default.ratios, default.scales)


def ratio_bounds(boxes: np.ndarray) -> Tuple[float, float]:
    """Range the ratios (h / w) are searched in: the boxes' 1st to 99th percentile, at least 0.8-1.25 wide."""
    boxes = np.asarray(boxes, dtype=np.float64)
    widths, heights = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    valid = (widths > 0) & (heights > 0)
    if not valid.any():
        return 0.5, 2.0
    low, high = np.percentile(heights[valid] / widths[valid], [1, 99])
    low, high = min(low, 0.8 * np.sqrt(low * high)), max(high, 1.25 * np.sqrt(low * high))
    return float(np.clip(low, *RATIO_LIMITS)), float(np.clip(high, *RATIO_LIMITS))


# AnchorFit.chosen: which candidate the anchors returned are.
SEARCH_RESULT = "search"
MOST_COVERED = "search, most boxes covered"
START = "start"


@dataclasses.dataclass(frozen=True)
class AnchorFit:
    """Result of :func:`fit_anchors`.

    Attributes:
        parameters: the anchors returned: the best candidate on every box (the start's when nothing beats them).
        before, after: (coverage, mean best IoU) of the start and of ``parameters``, on every box.
        boxes: boxes the search looked at (``total`` unless it sampled).
        improved: whether ``parameters`` are not the start's (they cover more boxes, or as many with a higher
            mean best IoU).
        total: every box.
        chosen: which candidate ``parameters`` are: :data:`SEARCH_RESULT`, :data:`MOST_COVERED` (a candidate
            the search passed by that covers more boxes than its result), :data:`START`, or the name of one given.
        search: (coverage, mean best IoU) of the search's own result on every box (``before`` without a search).
    """

    parameters: AnchorParameters
    before: Tuple[float, float]
    after: Tuple[float, float]
    boxes: int
    improved: bool
    total: int = 0
    chosen: str = START
    search: Optional[Tuple[float, float]] = None

    @property
    def sampled(self) -> bool:
        """Whether the search looked at a sample of the boxes (more than ``max_boxes``)."""
        return self.boxes < self.total


def _score(ious: np.ndarray) -> float:
    coverage, mean_iou = coverage_score(ious)
    return coverage + MEAN_IOU_WEIGHT * mean_iou


def _rank(ious: np.ndarray, positive_overlap: float = POSITIVE_OVERLAP) -> Tuple[int, float]:
    """(boxes covered, mean best IoU): anchors with a higher rank are better, coverage first."""
    if ious.shape[0] == 0:
        return 0, 1.0
    return int(np.count_nonzero(ious >= positive_overlap)), float(np.mean(ious))


class _MostCovered:
    """The candidate vector of the search that covered the most boxes (ties: the higher mean best IoU)."""

    def __init__(self):
        self.rank: Optional[Tuple[int, float]] = None
        self.vector: Optional[np.ndarray] = None

    def offer(self, vector: np.ndarray, ious: np.ndarray) -> None:
        rank = _rank(ious)
        if self.rank is None or rank > self.rank:
            self.rank, self.vector = rank, np.array(vector, copy=True)


def fit_anchors(
    placed: PlacedBoxes,
    start: AnchorParameters,
    seed: int = 0,
    max_boxes: int = MAX_BOXES,
    maxiter: int = 30,
    popsize: int = 8,
    num_ratios: Optional[int] = None,
    num_scales: Optional[int] = None,
    others: Sequence[Tuple[str, AnchorParameters]] = (),
) -> AnchorFit:
    """Search ratios, scales and the base size that maximise coverage and mean best IoU.

    Args:
        placed: the dataset's boxes from :func:`place_boxes` (levels and strides of ``start``).
        start: the current anchors; their strides are kept and they seed the search.
        seed: seed of the box sample and of the search: the same inputs give the same anchors.
        max_boxes: the search looks at every box up to this many, else at a random sample this large.
        maxiter, popsize: differential evolution's generations and population (per parameter).
        num_ratios, num_scales: how many of each (default: as many as ``start``, so the heads keep their size).
        others: (name, anchors) also in the running, e.g. keras-retinanet's default when ``start`` is a
            --config file's (with ``start``'s strides).

    Returns:
        :class:`AnchorFit`: the best, on every box, of the search's result, the search's candidate that
        covered the most boxes, ``start`` and ``others``.
    """
    from scipy.optimize import differential_evolution  # only the optimiser needs scipy

    rng = np.random.default_rng(seed)
    total = len(placed)
    searched = placed
    if total > max_boxes:
        searched = placed.subset(np.sort(rng.choice(total, size=max_boxes, replace=False)))
    space = SearchSpace(
        strides=tuple(start.strides),
        num_ratios=num_ratios or len(start.ratios),
        num_scales=num_scales or len(start.scales),
        ratio_bounds=ratio_bounds(searched.boxes),
    )
    before_ious = best_ious(placed, start)
    before = coverage_score(before_ious)
    if total == 0:
        return AnchorFit(start, before, before, 0, False, total=0, chosen=START, search=before)

    most_covered = _MostCovered()

    def objective(population: np.ndarray) -> np.ndarray:
        # vectorized=True: (D, P) candidates in, (P,) values out, minimised.
        values = []
        for vector in population.T:
            ious = best_ious(searched, space.decode(vector))
            most_covered.offer(vector, ious)
            values.append(-_score(ious))
        return np.array(values)

    x0 = space.encode(start) if (space.num_ratios, space.num_scales) == (len(start.ratios), len(start.scales)) else None
    result = differential_evolution(
        objective,
        space.bounds(),
        maxiter=maxiter,
        popsize=popsize,
        tol=1e-6,
        rng=rng,
        polish=False,  # the objective is a step function: gradient polishing cannot help
        init="latinhypercube",
        x0=x0,
        updating="deferred",
        vectorized=True,
    )
    # Every candidate on every box; the start first, so that it stays unless another ranks strictly higher.
    search_result = space.decode(result.x)
    candidates = [(START, start), (SEARCH_RESULT, search_result)]
    if most_covered.vector is not None:
        candidates.append((MOST_COVERED, space.decode(most_covered.vector)))
    candidates += [(name, parameters) for name, parameters in others if tuple(parameters.strides) == tuple(start.strides)]
    chosen, parameters, chosen_ious, chosen_rank, search = None, None, None, None, None
    for name, candidate in candidates:
        ious = before_ious if candidate is start else best_ious(placed, candidate)
        if name == SEARCH_RESULT:
            search = coverage_score(ious)
        rank = _rank(ious)
        if chosen_rank is None or rank > chosen_rank:
            chosen, parameters, chosen_ious, chosen_rank = name, candidate, ious, rank
    return AnchorFit(
        parameters, before, coverage_score(chosen_ious), len(searched), chosen != START, total=total, chosen=chosen,
        search=search,
    )  # fmt: skip
