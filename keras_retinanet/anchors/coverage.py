"""How well a set of anchors covers annotations: per box, then summarised by class and by object size.

A box is *covered* when training gives it at least one positive anchor (IoU >= the positive
threshold, config.defaults.POSITIVE_OVERLAP, and the anchor's best box is this one); an uncovered
box is never learned. The *best IoU* of a box is its largest IoU with any anchor of its image,
whoever else the anchor matches. Pure numpy; :mod:`keras_retinanet.data.diagnostics` walks a dataset
with it and formats the table.
"""

import dataclasses
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from .matching import POSITIVE_OVERLAP, unmatched_annotations
from .overlap import compute_overlap

# Edges of the object-size buckets, in sqrt(area) pixels after resizing: <16, 16-32, ..., >=256.
SIZE_BUCKET_EDGES = (16, 32, 64, 128, 256)


def box_coverage(anchors: np.ndarray, boxes: np.ndarray, positive_overlap: float = POSITIVE_OVERLAP) -> Tuple[np.ndarray, np.ndarray]:
    """Best IoU and coverage of the boxes of one image.

    Args:
        anchors: (N, 4) anchors of the image (x1, y1, x2, y2).
        boxes: (K, 4) annotations in the same pixels.
        positive_overlap: IoU at or above which an anchor is a positive.

    Returns:
        best_iou: (K,) float64, the largest IoU of each box with any anchor (0 without anchors).
        covered: (K,) bool, the box has a positive anchor in training's assignment.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape((-1, 4))
    if boxes.shape[0] == 0:
        return np.zeros((0,), dtype=np.float64), np.zeros((0,), dtype=bool)
    if len(anchors) == 0:
        return np.zeros((boxes.shape[0],), dtype=np.float64), np.zeros((boxes.shape[0],), dtype=bool)
    best_iou = compute_overlap(boxes, anchors).max(axis=1)
    covered = ~unmatched_annotations(anchors, boxes, positive_overlap=positive_overlap)
    return best_iou, covered


def box_sizes(boxes: np.ndarray) -> np.ndarray:
    """(K, 4) boxes -> (K,) sqrt(area) in pixels (0 for empty boxes)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape((-1, 4))
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    return np.sqrt(area)


def size_bucket_names(edges: Sequence[float] = SIZE_BUCKET_EDGES) -> Tuple[str, ...]:
    """Names of the buckets the edges make, e.g. ('<16', '16-32', ..., '>=256')."""
    edges = [int(edge) if float(edge).is_integer() else edge for edge in edges]
    names = [f"<{edges[0]}"]
    names += [f"{low}-{high}" for low, high in zip(edges[:-1], edges[1:])]
    return tuple(names + [f">={edges[-1]}"])


@dataclasses.dataclass(frozen=True)
class CoverageGroup:
    """Coverage of a group of boxes (all, one class, one size bucket).

    Attributes:
        name: the group, e.g. 'all', a class name or '16-32'.
        total: boxes in the group.
        covered: boxes with a positive anchor.
        mean_best_iou: mean of their best IoU (0 for an empty group).
    """

    name: str
    total: int
    covered: int
    mean_best_iou: float

    @property
    def share(self) -> float:
        """Covered / total (1.0 for an empty group: nothing is missed)."""
        return self.covered / self.total if self.total else 1.0


@dataclasses.dataclass(frozen=True)
class CoverageSummary:
    """Coverage of a dataset's annotations: overall, per class and per size bucket.

    Attributes:
        overall: every box.
        by_class: one group per label present, in label order.
        by_size: one group per size bucket (empty ones included), smallest first.
        images: images looked at.
    """

    overall: CoverageGroup
    by_class: Tuple[CoverageGroup, ...]
    by_size: Tuple[CoverageGroup, ...]
    images: int = 0

    @property
    def share(self) -> float:
        return self.overall.share


def _group(name: str, best_iou: np.ndarray, covered: np.ndarray) -> CoverageGroup:
    total = int(best_iou.shape[0])
    mean = float(best_iou.mean()) if total else 0.0
    return CoverageGroup(name=name, total=total, covered=int(covered.sum()), mean_best_iou=mean)


def summarise_coverage(
    best_iou: np.ndarray,
    covered: np.ndarray,
    labels: np.ndarray,
    sizes: np.ndarray,
    label_to_name: Optional[Callable[[int], str]] = None,
    images: int = 0,
    edges: Sequence[float] = SIZE_BUCKET_EDGES,
) -> CoverageSummary:
    """Group per-box results into a :class:`CoverageSummary`.

    Args:
        best_iou: (K,) best IoU of each box.
        covered: (K,) bool, box has a positive anchor.
        labels: (K,) int labels.
        sizes: (K,) sqrt(area) of each box in resized pixels.
        label_to_name: label -> class name for the groups (default: the label as text).
        images: images the boxes come from, for the report.
        edges: size bucket edges.
    """
    best_iou = np.asarray(best_iou, dtype=np.float64).reshape(-1)
    covered = np.asarray(covered, dtype=bool).reshape(-1)
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1)
    name_of = label_to_name or str
    by_class = tuple(
        _group(name_of(int(label)), best_iou[labels == label], covered[labels == label]) for label in np.unique(labels)
    )
    # np.digitize with right=False puts a box of exactly 16 px into '16-32', as the names say.
    buckets = np.digitize(sizes, np.asarray(edges, dtype=np.float64))
    by_size = tuple(
        _group(name, best_iou[buckets == index], covered[buckets == index])
        for index, name in enumerate(size_bucket_names(edges))
    )
    return CoverageSummary(overall=_group("all", best_iou, covered), by_class=by_class, by_size=by_size, images=images)


def concatenate_results(results: Sequence[Tuple[np.ndarray, ...]]) -> Dict[str, np.ndarray]:
    """Per-image (best_iou, covered, labels, sizes) tuples -> one array of each over all images."""
    keys = ("best_iou", "covered", "labels", "sizes")
    empty = {"best_iou": np.float64, "covered": bool, "labels": np.int64, "sizes": np.float64}
    if not results:
        return {key: np.zeros((0,), dtype=empty[key]) for key in keys}
    return {key: np.concatenate([np.asarray(result[i]).reshape(-1) for result in results]) for i, key in enumerate(keys)}
