"""Reader of KITTI object detection labels: ``{base_dir}/{subset}/labels/*.txt`` and ``images/*.png``.

Each label line has 15 space separated fields::

    type truncated occluded alpha left top right bottom h w l x y z rotation_y

Only ``type`` and the 2D box (0-based pixel coordinates) are used. 'DontCare' regions
are not objects and are skipped (keras-retinanet trained on them as a class).
"""

import math
import os

import numpy as np

from .text_files import read_text_file
from ..errors import DatasetError
from .generator import Generator

kitti_classes = {
    "Car": 0,
    "Van": 1,
    "Truck": 2,
    "Pedestrian": 3,
    "Person_sitting": 4,
    "Cyclist": 5,
    "Tram": 6,
    "Misc": 7,
}

_IGNORED_TYPES = ("DontCare",)
_NUM_FIELDS = 15


def _parse_label_file(path, classes):
    """(labels, boxes) of one label file; DatasetError naming the line for bad rows."""
    text = read_text_file(path, "label file", allow_empty=True)  # an image without objects
    labels, boxes = [], []
    for line_number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < _NUM_FIELDS:
            raise DatasetError(path, f"expected {_NUM_FIELDS} space separated fields, got {len(fields)}", line=line_number)
        object_type = fields[0]
        if object_type in _IGNORED_TYPES:
            continue
        if object_type not in classes:
            raise DatasetError(
                path, f"unknown object type '{object_type}' (known: {', '.join(classes)}, DontCare)", line=line_number
            )
        coordinates = []
        for name, text_value in zip(("left", "top", "right", "bottom"), fields[4:8]):
            try:
                value = float(text_value)
            except ValueError:
                raise DatasetError(path, f"malformed {name} '{text_value}' (expected a number)", line=line_number) from None
            if not math.isfinite(value) or value < 0:
                raise DatasetError(path, f"{name} ({text_value}) must be a non-negative number", line=line_number)
            coordinates.append(value)
        left, top, right, bottom = coordinates
        if right <= left:
            raise DatasetError(path, f"right ({right:g}) must be greater than left ({left:g})", line=line_number)
        if bottom <= top:
            raise DatasetError(path, f"bottom ({bottom:g}) must be greater than top ({top:g})", line=line_number)
        labels.append(classes[object_type])
        boxes.append(coordinates)
    return np.array(labels, dtype=np.int64), np.array(boxes, dtype=np.float64).reshape((-1, 4))


class KittiGenerator(Generator):
    """KITTI 2D object detection dataset.

    Args:
        base_dir: root with ``{subset}/labels`` and ``{subset}/images``.
        subset: 'train', 'val', ...
        **kwargs: passed to :class:`Generator`.
    """

    def __init__(self, base_dir, subset="train", **kwargs):
        self.base_dir = os.fspath(base_dir)
        self.subset = subset
        label_dir = os.path.join(self.base_dir, subset, "labels")
        image_dir = os.path.join(self.base_dir, subset, "images")
        if not os.path.isdir(label_dir):
            raise DatasetError(label_dir, "label folder not found")
        self.classes = dict(kitti_classes)
        self.labels = {label: name for name, label in self.classes.items()}

        self.images = []
        self.image_data = []
        for file_name in sorted(os.listdir(label_dir)):
            if not file_name.endswith(".txt"):
                continue
            label_path = os.path.join(label_dir, file_name)
            image_path = os.path.join(image_dir, file_name[: -len(".txt")] + ".png")
            if not os.path.isfile(image_path):
                raise DatasetError(label_path, f"its image is missing: {image_path} not found")
            self.images.append(image_path)
            self.image_data.append(_parse_label_file(label_path, self.classes))
        if not self.images:
            raise DatasetError(label_dir, "no .txt label files")
        super().__init__(**kwargs)

    def size(self):
        return len(self.images)

    def image_path(self, image_index):
        return self.images[image_index]

    def load_annotations(self, image_index):
        labels, boxes = self.image_data[image_index]
        return {"labels": labels.copy(), "bboxes": boxes.copy()}
