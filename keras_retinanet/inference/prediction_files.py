"""The files a prediction run leaves: every detection (detections.json, detections.csv) and the objects counted per
class in each image or frame (counts.csv, counts.json). Each file is written whole or not at all.
"""

import json
import os
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from .detections import RECORD_FIELDS, csv_text

DETECTION_FIELDS = list(RECORD_FIELDS)
COUNT_FIELDS = ["source", "frame", "class_name", "count"]

Counts = Tuple[Union[str, int, None], Optional[int], Mapping[str, int]]  # (source, frame, {class name: count})


def count_rows(counts: Iterable[Counts], class_names: Iterable[str]) -> List[Dict[str, Any]]:
    """counts.csv's rows: (source, frame, class_name, count) for every class of the model in every image or frame
    (0 where none), then any label the model gave that its class names do not name."""
    names = list(class_names)
    rows = []
    for source, frame, found in counts:
        for name in names + [name for name in found if name not in names]:
            rows.append({"source": source, "frame": frame, "class_name": name, "count": int(found.get(name, 0))})
    return rows


def write_prediction_files(
    records: Sequence[Mapping[str, Any]], output_dir: str, counts: Iterable[Counts] = (), class_names=()
) -> None:
    """detections.json and detections.csv, one record per detection (fields as DETECTION_FIELDS); counts.csv (see
    :func:`count_rows`) and counts.json (the totals per class, and each image's or frame's counts)."""
    from ..atomic_files import write_bytes_atomically

    rows = count_rows(counts, class_names)
    totals: Dict[str, int] = {}
    for row in rows:
        totals[row["class_name"]] = totals.get(row["class_name"], 0) + row["count"]
    per_image: Dict[Tuple[Any, Any], Dict[str, int]] = {}
    for row in rows:
        per_image.setdefault((row["source"], row["frame"]), {})[row["class_name"]] = row["count"]
    summary = {
        "totals": totals,
        "images": [{"source": source, "frame": frame, "counts": found} for (source, frame), found in per_image.items()],
    }
    files = {
        "detections.json": json.dumps(list(records), indent=1),
        "detections.csv": csv_text(DETECTION_FIELDS, records),
        "counts.json": json.dumps(summary, indent=1),
        "counts.csv": csv_text(COUNT_FIELDS, rows),
    }
    for name, text in files.items():
        write_bytes_atomically(text.encode("utf8"), os.path.join(output_dir, name))
