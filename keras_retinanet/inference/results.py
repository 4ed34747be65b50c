"""A detector's results in the forms the ecosystem uses: COCO's results list and supervision's ``Detections``.

A result is the dict :meth:`keras_retinanet.inference.Detector.predict` returns for one image: ``boxes`` (N, 4)
x1, y1, x2, y2 in the image's pixels, ``scores`` (N,), ``labels`` (N,), ``names`` (N,) and ``counts``.
"""

from typing import Any, Dict, List, Mapping, Optional

import numpy as np


def to_coco_results(
    result: Mapping[str, Any], image_id: int, category_ids: Optional[Mapping[int, int]] = None
) -> List[Dict[str, Any]]:
    """The detections as COCO's results format (what ``COCO.loadRes`` and COCO evaluation servers take).

    Args:
        result: one image's result.
        image_id: the image's id in the COCO annotations.
        category_ids: {label: COCO category id} (e.g. 0 -> 1 for 'person'); None: the label itself.

    Returns:
        [{'image_id', 'category_id', 'bbox': [x, y, width, height], 'score'}], best first.
    """
    entries = []
    for box, score, label in zip(np.asarray(result["boxes"]), result["scores"], result["labels"]):
        x1, y1, x2, y2 = (float(v) for v in box)
        label = int(label)
        entries.append({
            "image_id": int(image_id),
            "category_id": int(category_ids[label]) if category_ids is not None else label,
            "bbox": [x1, y1, x2 - x1, y2 - y1],
            "score": float(score),
        })  # fmt: skip
    return entries


def to_supervision(result: Mapping[str, Any]):
    """The detections as a ``supervision.Detections`` (xyxy, confidence, class_id, and the class names as
    ``data['class_name']``), for supervision's annotators, trackers, zones and counters.

    Raises:
        ImportError: supervision is not installed (one line saying how to install it).
    """
    try:
        import supervision
    except ImportError:
        raise ImportError("to_supervision needs the supervision package: pip install supervision") from None
    return supervision.Detections(
        xyxy=np.asarray(result["boxes"], dtype=np.float32).reshape(-1, 4),
        confidence=np.asarray(result["scores"], dtype=np.float32),
        class_id=np.asarray(result["labels"], dtype=int),
        data={"class_name": np.asarray(result["names"], dtype=str)},
    )
