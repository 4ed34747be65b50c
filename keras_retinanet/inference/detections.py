"""``Detections``: what a detector found in one image, and every form it goes out in.

    result = load_detector("model.keras").predict("photo.jpg")
    result.boxes, result.scores, result.labels, result.names, result.counts, len(result)
    result.save("photo-detections.png")          # drawn on the image; .json and .csv write the data
    result.to_coco(image_id=42), result.to_supervision(), result.to_records(), result.to_json()
    result[result.scores > 0.8]                  # a Detections of the confident ones
    result["boxes"]                              # the dict of earlier versions still reads the same

One object per image, frozen: the commands, the server, evaluation and Python all read detections from it, so
that they agree.
"""

import csv
import dataclasses
import io
import json
import os
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

# The keys of the dict that Detector.predict returned before Detections, in its order.
MAPPING_KEYS = ("boxes", "scores", "labels", "names", "counts")
RECORD_FIELDS = ("source", "frame", "x1", "y1", "x2", "y2", "score", "label", "class_name")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def class_counts(labels: np.ndarray, names: np.ndarray) -> Dict[str, int]:
    """{class name: number of detections}, in label order, for the classes detected."""
    counts: Dict[str, int] = {}
    for label in np.unique(labels):
        counts[str(names[labels == label][0])] = int(np.sum(labels == label))
    return counts


def csv_text(fields: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """CSV text with a header row, one row per mapping."""
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


def json_float32(values: np.ndarray) -> list:
    """float32 values as the shortest decimals that read back as the same float32 ('0.87', not
    '0.8700000047683716'): ``np.float32(json_value)`` is the detector's value, exactly."""
    return [float(str(value)) for value in np.asarray(values, dtype=np.float32).ravel()]


@dataclasses.dataclass(frozen=True, eq=False)
class Detections:
    """The detections of one image, best first, in the image's own pixels.

    Attributes:
        boxes: (N, 4) float32 x1, y1, x2, y2.
        scores: (N,) float32, decreasing.
        labels: (N,) int32.
        names: (N,) str, the class name of each label.
        image_size: (height, width) of the image.
        capped: whether a cap on the number of detections bound: fewer were kept than the filter found (the
            caller's ``max_detections``), or the model's own filter gave its full quota and may have found more
            (a tile's, or a whole image's). Raise ``max_detections`` (or load the model with a larger one) to keep
            more.
        source: the image file it came from, when predicted from a path (``draw`` and ``save`` read it).
        network_seconds: the time the network took for this image (its tiles included).

    ``len(result)`` is the number of detections. ``result[key]`` with one of 'boxes', 'scores', 'labels', 'names',
    'counts' reads as the dict ``predict`` returned before (``keys()``, ``items()``, ``get()``, iteration and
    ``in`` too); any other index (a mask, a slice, an array of indices) selects detections.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    names: np.ndarray
    image_size: Tuple[int, int]
    capped: bool = False
    source: Optional[str] = None
    network_seconds: float = 0.0

    def __post_init__(self):
        fields = {
            "boxes": np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4),
            "scores": np.asarray(self.scores, dtype=np.float32).reshape(-1),
            "labels": np.asarray(self.labels, dtype=np.int32).reshape(-1),
            "names": np.asarray(self.names, dtype=str).reshape(-1),
            "image_size": (int(self.image_size[0]), int(self.image_size[1])),
            "capped": bool(self.capped),
        }
        sizes = {len(fields[key]) for key in ("boxes", "scores", "labels", "names")}
        if len(sizes) != 1:
            raise ValueError(f"Detections need as many boxes, scores, labels and names; got {sorted(sizes)}")
        for key, value in fields.items():
            if isinstance(value, np.ndarray):
                value.setflags(write=False)  # frozen: the arrays too
            object.__setattr__(self, key, value)

    @classmethod
    def empty(cls, image_size: Tuple[int, int], **fields) -> "Detections":
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0), np.zeros(0, str), image_size, **fields)

    @property
    def counts(self) -> Dict[str, int]:
        """{class name: number of detections}, in label order, for the classes detected."""
        return class_counts(self.labels, self.names)

    def __len__(self) -> int:
        return len(self.scores)

    # ----------------------------------------------------------------------------------------------------------
    # the dict of earlier versions

    def keys(self) -> Tuple[str, ...]:
        return MAPPING_KEYS

    def values(self) -> List[Any]:
        return [self[key] for key in MAPPING_KEYS]

    def items(self) -> List[Tuple[str, Any]]:
        return [(key, self[key]) for key in MAPPING_KEYS]

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in MAPPING_KEYS else default

    def __iter__(self):
        return iter(MAPPING_KEYS)

    def __contains__(self, key) -> bool:
        return key in MAPPING_KEYS

    def __getitem__(self, key):
        if isinstance(key, str):
            if key not in MAPPING_KEYS:
                raise KeyError(key)
            return getattr(self, key)
        return dataclasses.replace(self, boxes=self.boxes[key], scores=self.scores[key], labels=self.labels[key],
                                   names=self.names[key], capped=self.capped)  # fmt: skip

    # ----------------------------------------------------------------------------------------------------------
    # the forms the ecosystem uses

    def to_coco(self, image_id: int, category_ids: Union[Mapping[int, int], Callable[[int], int], None] = None
                ) -> List[Dict[str, Any]]:  # fmt: skip
        """COCO's results format (what ``COCO.loadRes`` and COCO evaluation servers take), best first.

        Args:
            image_id: the image's id in the COCO annotations.
            category_ids: {label: COCO category id} or a function label -> id (e.g. 0 -> 1 for 'person'); None:
                the label itself.

        Returns:
            [{'image_id', 'category_id', 'bbox': [x, y, width, height], 'score'}]; widths and heights computed in
            float32, as keras-retinanet did, for the same JSON numbers.
        """
        category_of = category_ids.__getitem__ if isinstance(category_ids, Mapping) else category_ids
        xywh = self.boxes.copy()
        xywh[:, 2:] -= xywh[:, :2]
        return [
            {"image_id": int(image_id), "category_id": int(category_of(label)) if category_of else int(label),
             "bbox": box, "score": score}
            for box, score, label in zip(xywh.tolist(), self.scores.tolist(), self.labels.tolist())
        ]  # fmt: skip

    def to_supervision(self):
        """A ``supervision.Detections`` (xyxy, confidence, class_id, and the class names as ``data['class_name']``),
        for supervision's annotators, trackers, zones and counters.

        Raises:
            ImportError: supervision is not installed (one line saying how to install it).
        """
        try:
            import supervision
        except ImportError:
            raise ImportError("to_supervision needs the supervision package: pip install supervision") from None
        return supervision.Detections(
            xyxy=self.boxes.copy(), confidence=self.scores.copy(), class_id=self.labels.astype(int),
            data={"class_name": self.names.copy()},
        )  # fmt: skip

    def to_records(self, source: Union[str, int, None] = None, frame: Optional[int] = None) -> List[Dict[str, Any]]:
        """One dict per detection, the rows of ``detections.csv`` and ``detections.json``: source, frame, x1, y1,
        x2, y2, score, label, class_name (source: the given one, else the image file's)."""
        source = self.source if source is None else source
        return [
            {"source": source, "frame": frame, "x1": x1, "y1": y1, "x2": x2, "y2": y2, "score": score,
             "label": label, "class_name": name}
            for (x1, y1, x2, y2), score, label, name in zip(
                self.boxes.tolist(), self.scores.tolist(), self.labels.tolist(), self.names.tolist())
        ]  # fmt: skip

    def to_dict(self) -> Dict[str, Any]:
        """The JSON-ready form: boxes, scores, labels, names, counts, width, height, capped (what retinanet-serve
        answers); floats as the shortest decimals that read back as the same float32."""
        boxes = json_float32(self.boxes)
        height, width = self.image_size
        return {
            "boxes": [boxes[i : i + 4] for i in range(0, len(boxes), 4)],
            "scores": json_float32(self.scores),
            "labels": self.labels.tolist(),
            "names": self.names.tolist(),
            "counts": self.counts,
            "width": width,
            "height": height,
            "capped": self.capped,
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as compact JSON text."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    # ----------------------------------------------------------------------------------------------------------
    # pictures and files

    def _image(self, image: Optional[np.ndarray]) -> np.ndarray:
        if image is not None:
            return np.asarray(image)
        if self.source is None:
            raise ValueError("these detections came from an array, not a file: pass the image to draw on")
        from ..data.image_io import read_image_bgr

        return read_image_bgr(self.source)

    def draw(self, image: Optional[np.ndarray] = None, score_threshold: float = 0.0) -> np.ndarray:
        """A copy of the image with the detections drawn (each class in its colour, 'name: score' captions).

        Args:
            image: (H, W, 3) uint8 BGR; None: the image file the detections came from.
            score_threshold: draw only detections scoring above it.
        """
        from ..drawing import draw_detections

        drawn = self._image(image).copy()
        names = dict(zip(self.labels.tolist(), self.names.tolist()))
        draw_detections(drawn, self.boxes, self.scores, self.labels, label_to_name=lambda label: names[int(label)],
                        score_threshold=score_threshold)  # fmt: skip
        return drawn

    def save(self, path: Union[str, os.PathLike], image: Optional[np.ndarray] = None) -> str:
        """Write the detections by the file's extension, whole or not at all: ``.json`` (:meth:`to_dict`), ``.csv``
        (:meth:`to_records`), or an image (``.png``, ``.jpg``, ...: :meth:`draw` on ``image``, default the source).

        Returns:
            the path written.

        Raises:
            ValueError: another extension, or an image asked for without one to draw on.
        """
        from ..atomic_files import write_bytes_atomically

        path = os.fspath(path)
        extension = os.path.splitext(path)[1].lower()
        if extension == ".json":
            data = json.dumps(self.to_dict(), indent=1).encode("utf8")
        elif extension == ".csv":
            data = csv_text(RECORD_FIELDS, self.to_records()).encode("utf8")
        elif extension in IMAGE_EXTENSIONS:
            import cv2

            written, encoded = cv2.imencode(extension, self.draw(image))
            if not written:
                raise ValueError(f"{path}: OpenCV cannot write {extension} images")
            data = encoded.tobytes()
        else:
            raise ValueError(f"{path}: cannot tell what to write; use .json, .csv or an image extension "
                             f"({', '.join(IMAGE_EXTENSIONS)})")  # fmt: skip
        return write_bytes_atomically(data, path)

    def __repr__(self) -> str:
        height, width = self.image_size
        counts = ", ".join(f"{name}: {count}" for name, count in self.counts.items()) or "nothing"
        return f"Detections({len(self)} in {width}x{height}: {counts}{', capped' if self.capped else ''})"
