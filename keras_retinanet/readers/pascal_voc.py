"""Reader of Pascal VOC datasets: ``Annotations/*.xml``, ``JPEGImages/``, ``ImageSets/Main/{set}.txt``.

VOC coordinates are 1-based pixel indices; 1 is subtracted from each, as keras-retinanet did.
All XML files are parsed when the generator is built, so a bad file stops before training.
"""

import math
import os
import xml.etree.ElementTree as ET

import numpy as np

from .text_files import read_text_file
from ..errors import DatasetError
from ..data.image_io import image_size
from .generator import Generator

voc_classes = {
    "aeroplane": 0,
    "bicycle": 1,
    "bird": 2,
    "boat": 3,
    "bottle": 4,
    "bus": 5,
    "car": 6,
    "cat": 7,
    "chair": 8,
    "cow": 9,
    "diningtable": 10,
    "dog": 11,
    "horse": 12,
    "motorbike": 13,
    "person": 14,
    "pottedplant": 15,
    "sheep": 16,
    "sofa": 17,
    "train": 18,
    "tvmonitor": 19,
}


def _find_node(path, parent, name, where, parse=None, default=None):
    """Child element ``name`` of ``parent`` (its parsed text with ``parse``); DatasetError when absent or bad."""
    node = parent.find(name)
    if node is None:
        if default is not None:
            return default
        raise DatasetError(path, f"missing element <{name}>", where=where)
    if parse is None:
        return node
    text = (node.text or "").strip()
    try:
        value = parse(text)
    except (ValueError, OverflowError):  # int(float('inf')) overflows
        raise DatasetError(path, f"<{name}> is '{text}', expected a number", where=where) from None
    if isinstance(value, float) and not math.isfinite(value):
        raise DatasetError(path, f"<{name}> is '{text}', expected a finite number", where=where)
    return value


def _flag(text):
    """VOC's 0/1 flags, sometimes written as floats or booleans."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return int(lowered == "true")
    return int(float(text))


class PascalVocGenerator(Generator):
    """Dataset in Pascal VOC layout.

    Args:
        data_dir: folder with ``Annotations``, ``JPEGImages`` and ``ImageSets``.
        set_name: 'train', 'val', 'trainval', 'test' (``ImageSets/Main/{set_name}.txt``).
        classes: class name -> label (default: the 20 VOC classes).
        image_extension: extension of the image files.
        skip_truncated: leave out objects marked truncated.
        skip_difficult: leave out objects marked difficult.
        **kwargs: passed to :class:`Generator`.
    """

    def __init__(
        self,
        data_dir,
        set_name,
        classes=voc_classes,
        image_extension=".jpg",
        skip_truncated=False,
        skip_difficult=False,
        **kwargs,
    ):
        self.data_dir = os.fspath(data_dir)
        self.set_name = set_name
        self.classes = dict(classes)
        self.image_extension = image_extension
        self.skip_truncated = skip_truncated
        self.skip_difficult = skip_difficult
        self.labels = {label: name for name, label in self.classes.items()}

        set_file = os.path.join(self.data_dir, "ImageSets", "Main", set_name + ".txt")
        text = read_text_file(set_file, "image set file")
        self.image_names = [line.split()[0] for line in text.splitlines() if line.strip()]
        self._annotations = []
        self._sizes = []
        for name in self.image_names:
            annotations, size = self._parse_annotation_file(name)
            self._annotations.append(annotations)
            self._sizes.append(size)
        self._check_images_exist(set_file)
        super().__init__(**kwargs)

    def _annotation_path(self, name):
        return os.path.join(self.data_dir, "Annotations", name + ".xml")

    def _check_images_exist(self, set_file):
        missing = [index for index in range(self.size()) if not os.path.isfile(self.image_path(index))]
        if missing:
            others = f" ({len(missing) - 1} more image(s) are missing too)" if len(missing) > 1 else ""
            raise DatasetError(
                set_file, f"image '{self.image_names[missing[0]]}' not found at {self.image_path(missing[0])}{others}"
            )

    def _parse_annotation_file(self, name):
        """Boxes and labels of one XML file, and the image size it states (or None)."""
        path = self._annotation_path(name)
        if not os.path.isfile(path):
            raise DatasetError(path, f"annotation file of image '{name}' not found")
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as error:
            line = error.position[0] if getattr(error, "position", None) else None
            raise DatasetError(path, f"invalid XML: {error}", line=line) from None

        size = None
        size_node = root.find("size")
        if size_node is not None and size_node.find("width") is not None and size_node.find("height") is not None:
            width = _find_node(path, size_node, "width", "<size>", parse=float)
            height = _find_node(path, size_node, "height", "<size>", parse=float)
            if width > 0 and height > 0:
                size = (width, height)

        labels, boxes = [], []
        for index, element in enumerate(root.iter("object")):
            where = f"<object> #{index + 1}"
            class_name = (_find_node(path, element, "name", where).text or "").strip()
            if class_name not in self.classes:
                raise DatasetError(
                    path, f"unknown class name '{class_name}' (known classes: {', '.join(self.classes)})", where=where
                )
            # Some VOC 2012 objects lack these flags; absent means 0.
            truncated = _find_node(path, element, "truncated", where, parse=_flag, default=0)
            difficult = _find_node(path, element, "difficult", where, parse=_flag, default=0)
            bndbox = _find_node(path, element, "bndbox", where)
            box_where = where + " <bndbox>"
            x1, y1, x2, y2 = (
                _find_node(path, bndbox, key, box_where, parse=float) - 1 for key in ("xmin", "ymin", "xmax", "ymax")
            )
            # 0 is off by one in VOC's 1-based system but common in exported files: it is clipped later.
            if x1 < -1 or y1 < -1:
                raise DatasetError(path, f"negative coordinate in ({x1 + 1:g}, {y1 + 1:g})", where=box_where)
            if x2 <= x1:
                raise DatasetError(path, f"xmax ({x2 + 1:g}) must be greater than xmin ({x1 + 1:g})", where=box_where)
            if y2 <= y1:
                raise DatasetError(path, f"ymax ({y2 + 1:g}) must be greater than ymin ({y1 + 1:g})", where=box_where)
            if (truncated and self.skip_truncated) or (difficult and self.skip_difficult):
                continue
            labels.append(self.name_to_label(class_name))
            boxes.append([x1, y1, x2, y2])
        annotations = {
            "labels": np.array(labels, dtype=np.int64),
            "bboxes": np.array(boxes, dtype=np.float64).reshape((-1, 4)),
        }
        return annotations, size

    def size(self):
        return len(self.image_names)

    def image_path(self, image_index):
        return os.path.join(self.data_dir, "JPEGImages", self.image_names[image_index] + self.image_extension)

    def image_aspect_ratio(self, image_index):
        if self._sizes[image_index] is None:
            self._sizes[image_index] = image_size(self.image_path(image_index))
        width, height = self._sizes[image_index]
        return float(width) / float(height)

    def load_annotations(self, image_index):
        annotations = self._annotations[image_index]
        return {key: value.copy() for key, value in annotations.items()}
