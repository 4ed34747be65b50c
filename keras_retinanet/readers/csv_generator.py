"""Reader of keras-retinanet's CSV format.

Annotations, one box a row (a row without a box is an image without objects)::

    path/to/image.jpg,x1,y1,x2,y2,class_name
    path/to/other.jpg,,,,,

Classes, ids from 0, no background class::

    class_name,id

Relative image paths are relative to the annotations file's folder (or ``base_dir``).
"""

import math
import os
from collections import OrderedDict

import numpy as np

from .text_files import csv_rows, read_text_file
from ..errors import DatasetError
from .generator import Generator


def _parse_classes(path, text):
    """class name -> id, in file order; DatasetError for malformed rows, bad or duplicate ids and names."""
    name = os.path.basename(path)
    classes = OrderedDict()
    ids = {}
    for line, row in csv_rows(path, text):
        if not row or all(not field.strip() for field in row):
            continue
        if len(row) != 2:
            raise DatasetError(path, f"format should be 'class_name,class_id', got {len(row)} fields: {row!r}", line=line)
        class_name, class_id = row[0].strip(), row[1].strip()
        if not class_name:
            raise DatasetError(path, "empty class name", line=line)
        try:
            class_id = int(class_id)
        except ValueError:
            raise DatasetError(path, f"malformed class id '{class_id}' (expected an integer)", line=line) from None
        if class_id < 0:
            raise DatasetError(path, f"class id {class_id} of '{class_name}' is negative; ids start at 0", line=line)
        if class_name in classes:
            raise DatasetError(path, f"duplicate class name '{class_name}' (first on line {ids[classes[class_name]][1]})", line=line)
        if class_id in ids:
            raise DatasetError(
                path, f"duplicate class id {class_id} ('{class_name}' and '{ids[class_id][0]}' on line {ids[class_id][1]})", line=line
            )
        classes[class_name] = class_id
        ids[class_id] = (class_name, line)
    if not classes:
        raise DatasetError(path, f"{name} lists no classes")
    return classes


def read_classes_file(path):
    """class name -> id of a keras-retinanet classes CSV (``class_name,id`` rows)."""
    return _parse_classes(path, read_text_file(path, "classes file"))


def _parse_coordinate(path, line, field, value):
    """One box coordinate: a finite, non-negative number (integers in keras-retinanet's files)."""
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        raise DatasetError(path, f"malformed {field} '{value}' (expected a number)", line=line) from None
    if not math.isfinite(number):
        raise DatasetError(path, f"malformed {field} '{value}' (expected a finite number)", line=line)
    if number < 0:
        raise DatasetError(path, f"{field} ({value}) is negative; coordinates are pixels from the top-left corner", line=line)
    return number


def _parse_annotations(path, text, classes):
    """image path -> list of (x1, y1, x2, y2, class_name, line), in file order."""
    result = OrderedDict()
    first_line = {}
    for line, row in csv_rows(path, text):
        if not row or all(not field.strip() for field in row):
            continue
        if len(row) < 6:
            raise DatasetError(
                path,
                f"format should be 'img_file,x1,y1,x2,y2,class_name' or 'img_file,,,,,', got {len(row)} fields: {row!r}",
                line=line,
            )
        img_file, x1, y1, x2, y2, class_name = (field.strip() for field in row[:6])
        if not img_file:
            raise DatasetError(path, "empty image path", line=line)
        if img_file not in result:
            result[img_file] = []
            first_line[img_file] = line
        if (x1, y1, x2, y2, class_name) == ("", "", "", "", ""):
            continue  # an image without objects
        x1 = _parse_coordinate(path, line, "x1", x1)
        y1 = _parse_coordinate(path, line, "y1", y1)
        x2 = _parse_coordinate(path, line, "x2", x2)
        y2 = _parse_coordinate(path, line, "y2", y2)
        if x2 <= x1:
            raise DatasetError(path, f"x2 ({_number(x2)}) must be greater than x1 ({_number(x1)})", line=line)
        if y2 <= y1:
            raise DatasetError(path, f"y2 ({_number(y2)}) must be greater than y1 ({_number(y1)})", line=line)
        if class_name not in classes:
            raise DatasetError(
                path, f"unknown class name '{class_name}' (known classes: {', '.join(classes)})", line=line
            )
        result[img_file].append((x1, y1, x2, y2, class_name, line))
    if not result:
        raise DatasetError(path, "no annotations in the file")
    return result, first_line


def _number(value):
    """A coordinate as the user wrote it: 40, not 40.0."""
    return int(value) if float(value).is_integer() else value


class CSVGenerator(Generator):
    """Dataset in keras-retinanet's CSV format.

    Args:
        csv_data_file: annotations CSV.
        csv_class_file: classes CSV.
        base_dir: folder that relative image paths start from (default: the annotations file's folder).
        **kwargs: passed to :class:`Generator`.

    Raises:
        DatasetError: for any malformed file, unknown class, bad box or missing image, naming
            the file, the line and the problem.
    """

    def __init__(self, csv_data_file, csv_class_file, base_dir=None, **kwargs):
        csv_data_file = os.fspath(csv_data_file)
        csv_class_file = os.fspath(csv_class_file)
        self.csv_data_file = csv_data_file
        self.base_dir = os.path.dirname(csv_data_file) if base_dir is None else os.fspath(base_dir)

        self.classes = read_classes_file(csv_class_file)
        self.labels = {class_id: name for name, class_id in self.classes.items()}

        image_data, first_line = _parse_annotations(
            csv_data_file, read_text_file(csv_data_file, "annotations file"), self.classes
        )
        self.image_names = list(image_data.keys())
        self.image_data = image_data
        self._check_images_exist(first_line)
        super().__init__(**kwargs)

    def _check_images_exist(self, first_line):
        """Fail before training when images are missing, naming the first and counting all."""
        missing = [name for name in self.image_names if not os.path.isfile(self._full_path(name))]
        if missing:
            others = f" ({len(missing) - 1} more image(s) are missing too)" if len(missing) > 1 else ""
            raise DatasetError(
                self.csv_data_file,
                f"image '{missing[0]}' not found at {self._full_path(missing[0])}{others}",
                line=first_line[missing[0]],
            )

    def _full_path(self, name):
        return os.path.join(self.base_dir, name)

    def size(self):
        return len(self.image_names)

    def image_path(self, image_index):
        return self._full_path(self.image_names[image_index])

    def load_annotations(self, image_index):
        rows = self.image_data[self.image_names[image_index]]
        return {
            "labels": np.array([self.name_to_label(row[4]) for row in rows], dtype=np.int64),
            "bboxes": np.array([row[:4] for row in rows], dtype=np.float64).reshape((-1, 4)),
        }
