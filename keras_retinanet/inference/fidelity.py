"""Whether a faster numeric path keeps a model's detections: the bar of issue 18, measured.

A 16-bit (or int8, or exported) detector *keeps* the float32 detections when, over a set of images,

* at least :data:`MIN_FOUND` (80%) of the float32 detector's top :data:`TOP_K` (100) detections per image are
  found again: a detection of the candidate with the same label and IoU >= :data:`MIN_IOU` (0.9), each
  candidate detection used once, best float32 detections matched first; and
* with a dataset, its mAP is within :data:`MAX_MAP_DIFFERENCE` (0.01) of the float32 mAP.

Pure numpy: the detectors are anything with ``predict(image, score_threshold=...)`` returning a dict of
``boxes`` (N, 4), ``scores`` (N,) and ``labels`` (N,) best first, as :class:`~.detector.Detector` does.
"""

import dataclasses
from typing import Any, Dict, Iterable, Optional, Tuple

import numpy as np

from ..anchors.overlap import compute_overlap

TOP_K = 100
MIN_IOU = 0.9
MIN_FOUND = 0.8
MAX_MAP_DIFFERENCE = 0.01
# Scores the comparison reads: low enough that the float32 top 100 are usually full on a real image.
COMPARISON_SCORE_THRESHOLD = 0.05


@dataclasses.dataclass(frozen=True)
class Fidelity:
    """How many of the reference's top detections a candidate found again, and the mAPs if measured.

    Attributes:
        found: reference detections found again (summed over the images).
        total: reference detections compared (at most TOP_K per image).
        reference_map, candidate_map: the mAPs on a dataset, or None.
    """

    found: int
    total: int
    reference_map: Optional[float] = None
    candidate_map: Optional[float] = None

    @property
    def found_fraction(self) -> float:
        """found / total; 1 when there was nothing to find."""
        return self.found / self.total if self.total else 1.0

    @property
    def map_difference(self) -> Optional[float]:
        """|candidate mAP - reference mAP|, or None without a dataset."""
        if self.reference_map is None or self.candidate_map is None:
            return None
        return abs(self.candidate_map - self.reference_map)

    @property
    def kept(self) -> bool:
        """Whether the candidate meets the bar (the mAP part only when measured)."""
        difference = self.map_difference
        return self.found_fraction >= MIN_FOUND and (difference is None or difference <= MAX_MAP_DIFFERENCE)

    def describe(self) -> str:
        """One line: '97/100 (97.0%) of the float32 top-100 found again, mAP 0.9012 vs 0.9020'."""
        text = f"{self.found}/{self.total} ({self.found_fraction:.1%}) of the float32 top-{TOP_K} found again"
        if self.map_difference is not None:
            text += f", mAP {self.candidate_map:.4f} vs {self.reference_map:.4f}"
        return text


def found_again(
    reference: Dict[str, Any], candidate: Dict[str, Any], top_k: int = TOP_K, min_iou: float = MIN_IOU
) -> Tuple[int, int]:
    """How many of the reference's best ``top_k`` detections of one image the candidate has too.

    Args:
        reference, candidate: dicts with ``boxes`` (N, 4) x1, y1, x2, y2, ``scores`` (N,), ``labels`` (N,);
            padding rows (label < 0) are ignored.
        top_k: how many of the reference's best detections are looked for.
        min_iou: a candidate detection matches at IoU >= this, with the same label.

    Returns:
        (found, looked for).
    """

    def valid(detections):
        labels = np.asarray(detections["labels"]).reshape(-1)
        keep = labels >= 0
        scores = np.asarray(detections["scores"], dtype=np.float64).reshape(-1)[keep]
        order = np.argsort(-scores, kind="stable")
        boxes = np.asarray(detections["boxes"], dtype=np.float64).reshape(-1, 4)[keep][order]
        return boxes, labels[keep][order]

    reference_boxes, reference_labels = valid(reference)
    reference_boxes, reference_labels = reference_boxes[:top_k], reference_labels[:top_k]
    candidate_boxes, candidate_labels = valid(candidate)
    if len(reference_boxes) == 0 or len(candidate_boxes) == 0:
        return 0, len(reference_boxes)
    overlaps = compute_overlap(reference_boxes, candidate_boxes)
    # Identical boxes overlap fully even without area (clipped to an image edge), where IoU leaves them at 0.
    identical = (reference_boxes[:, None, :] == candidate_boxes[None, :, :]).all(axis=-1)
    overlaps[identical] = 1.0
    overlaps[reference_labels[:, None] != candidate_labels[None, :]] = 0.0
    used = np.zeros(len(candidate_boxes), dtype=bool)
    found = 0
    for row in overlaps:  # best reference detection first: it picks its best unused match
        row = np.where(used, 0.0, row)
        best = int(np.argmax(row))
        if row[best] >= min_iou:
            used[best] = True
            found += 1
    return found, len(reference_boxes)


def compare_detectors(
    reference, candidate, images: Iterable, score_threshold: float = COMPARISON_SCORE_THRESHOLD,
    top_k: int = TOP_K, min_iou: float = MIN_IOU,
) -> Fidelity:  # fmt: skip
    """:func:`found_again` summed over ``images`` (paths or BGR arrays), both detectors at ``score_threshold``."""
    found = total = 0
    for image in images:
        expected = reference.predict(image, score_threshold=score_threshold)
        actual = candidate.predict(image, score_threshold=score_threshold)
        image_found, image_total = found_again(expected, actual, top_k=top_k, min_iou=min_iou)
        found += image_found
        total += image_total
    return Fidelity(found, total)


def with_maps(fidelity: Fidelity, reference_map: float, candidate_map: float) -> Fidelity:
    """``fidelity`` with the two detectors' mAPs on a dataset."""
    return dataclasses.replace(fidelity, reference_map=float(reference_map), candidate_map=float(candidate_map))
