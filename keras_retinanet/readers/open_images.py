"""Reader of Open Images (v4 layout, as keras-retinanet read it).

Layout::

    main_dir/
        {version}/class-descriptions-boxable.csv      # LabelName,DisplayName  (no header)
        {version}/{subset}/{subset}-annotations-bbox.csv
            # header: ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,... (coordinates in [0, 1])
        images/{subset}/{ImageID}.jpg

Labels are the row order of the class descriptions. Boxes whose label is not in the
descriptions (or not in ``labels_filter``) are skipped.
"""

import csv
import io
import math
import os
from collections import OrderedDict

import numpy as np

from .text_files import read_text_file
from ..errors import DatasetError
from .generator import Generator

_REQUIRED_COLUMNS = ("ImageID", "LabelName", "XMin", "XMax", "YMin", "YMax")


def get_labels(metadata_dir, version="v4"):
    """Class descriptions of a dataset.

    Returns:
        (id_to_labels {label: display name}, cls_index {LabelName (MID): label}).
    """
    path = os.path.join(metadata_dir, "class-descriptions-boxable.csv")
    reader = csv.reader(io.StringIO(read_text_file(path, "class descriptions file"), newline=""))
    id_to_labels, cls_index, names = OrderedDict(), OrderedDict(), {}
    for row in reader:
        line = reader.line_num
        if not row or all(not field.strip() for field in row):
            continue
        if len(row) != 2:
            raise DatasetError(path, f"format should be 'LabelName,DisplayName', got {len(row)} fields", line=line)
        mid, display_name = row[0].strip(), row[1].strip()
        if mid in cls_index:
            raise DatasetError(path, f"duplicate class id '{mid}'", line=line)
        if display_name in names:
            raise DatasetError(path, f"duplicate class name '{display_name}' (first on line {names[display_name]})", line=line)
        names[display_name] = line
        cls_index[mid] = len(id_to_labels)
        id_to_labels[len(id_to_labels)] = display_name
    return id_to_labels, cls_index


def _parse_normalized(path, line, row, column):
    text = (row.get(column) or "").strip()
    try:
        value = float(text)
    except ValueError:
        raise DatasetError(path, f"malformed {column} '{text}' (expected a number in [0, 1])", line=line) from None
    if not math.isfinite(value) or value < 0:
        raise DatasetError(path, f"{column} ({text}) must be a number in [0, 1]", line=line)
    return value


def generate_images_annotations(path, cls_index):
    """Annotations per image from an annotations CSV.

    Returns:
        OrderedDict ImageID -> list of (label, x1, y1, x2, y2) in normalised coordinates.
    """
    reader = csv.DictReader(io.StringIO(read_text_file(path, "annotations file"), newline=""))
    missing = [column for column in _REQUIRED_COLUMNS if column not in (reader.fieldnames or [])]
    if missing:
        raise DatasetError(path, f"header lacks column(s) {', '.join(missing)}", line=1)
    result = OrderedDict()
    for row in reader:
        line = reader.line_num
        if None in row:
            raise DatasetError(path, "more fields than the header has columns", line=line)
        image_id = (row["ImageID"] or "").strip()
        if not image_id:
            raise DatasetError(path, "empty ImageID", line=line)
        label_name = (row["LabelName"] or "").strip()
        if label_name not in cls_index:
            continue
        x1 = _parse_normalized(path, line, row, "XMin")
        x2 = _parse_normalized(path, line, row, "XMax")
        y1 = _parse_normalized(path, line, row, "YMin")
        y2 = _parse_normalized(path, line, row, "YMax")
        if x2 <= x1:
            raise DatasetError(path, f"XMax ({x2:g}) must be greater than XMin ({x1:g})", line=line)
        if y2 <= y1:
            raise DatasetError(path, f"YMax ({y2:g}) must be greater than YMin ({y1:g})", line=line)
        result.setdefault(image_id, []).append((cls_index[label_name], x1, y1, x2, y2))
    return result


class OpenImagesGenerator(Generator):
    """Open Images detection dataset.

    Args:
        main_dir: root folder (see the module docstring for the layout).
        subset: 'train', 'validation' or 'test'.
        version: metadata folder name (default 'v4').
        labels_filter: display names to keep (others are dropped; labels become 0..len-1 in this order), or None.
        **kwargs: passed to :class:`Generator`.
    """

    def __init__(self, main_dir, subset, version="v4", labels_filter=None, **kwargs):
        self.main_dir = os.fspath(main_dir)
        self.subset = subset
        self.base_dir = os.path.join(self.main_dir, "images", subset)
        metadata_dir = os.path.join(self.main_dir, version)
        self.annotations_file = os.path.join(metadata_dir, subset, f"{subset}-annotations-bbox.csv")

        self.id_to_labels, cls_index = get_labels(metadata_dir, version)
        if labels_filter is not None:
            unknown = [name for name in labels_filter if name not in self.id_to_labels.values()]
            if unknown:
                raise ValueError(f"labels_filter: unknown class name(s) {unknown}")
            old_to_new = {old: labels_filter.index(name) for old, name in self.id_to_labels.items() if name in labels_filter}
            cls_index = {mid: old_to_new[old] for mid, old in cls_index.items() if old in old_to_new}
            self.id_to_labels = OrderedDict((label, name) for label, name in enumerate(labels_filter))
        self.names_to_labels = {name: label for label, name in self.id_to_labels.items()}

        self.annotations = generate_images_annotations(self.annotations_file, cls_index)
        self.id_to_image_id = list(self.annotations.keys())
        missing = [image_id for image_id in self.id_to_image_id if not os.path.isfile(self._path(image_id))]
        if missing:
            others = f" ({len(missing) - 1} more image(s) are missing too)" if len(missing) > 1 else ""
            raise DatasetError(self.annotations_file, f"image '{missing[0]}' not found at {self._path(missing[0])}{others}")
        super().__init__(**kwargs)

    def _path(self, image_id):
        return os.path.join(self.base_dir, image_id + ".jpg")

    def size(self):
        return len(self.id_to_image_id)

    def num_classes(self):
        return len(self.id_to_labels)

    def has_label(self, label):
        return label in self.id_to_labels

    def has_name(self, name):
        return name in self.names_to_labels

    def name_to_label(self, name):
        return self.names_to_labels[name]

    def label_to_name(self, label):
        return self.id_to_labels[label]

    def image_path(self, image_index):
        return self._path(self.id_to_image_id[image_index])

    def load_annotations(self, image_index):
        width, height = self.image_size(image_index)
        rows = self.annotations[self.id_to_image_id[image_index]]
        boxes = np.array([row[1:] for row in rows], dtype=np.float64).reshape((-1, 4)) * [width, height, width, height]
        return {"labels": np.array([row[0] for row in rows], dtype=np.int64), "bboxes": boxes}
