"""Reader of COCO-style datasets: ``annotations/instances_{set}.json`` and ``images/{set}/``.

Crowd annotations and boxes under one pixel wide or high are skipped. COCO category
ids (1..90 with gaps in COCO itself) become labels 0..N-1 in id order;
``label_to_coco_label`` maps them back for evaluation with pycocotools.
"""

import contextlib
import io
import json
import math
import os

import numpy as np
from pycocotools.coco import COCO

from .text_files import read_text_file
from ..errors import DatasetError
from .generator import Generator


def _load_coco_json(path):
    """Parse an instances file and check the parts this reader relies on.

    Returns:
        the dataset dict (with 'images', 'annotations', 'categories').
    """
    text = read_text_file(path, "annotations file")
    try:
        dataset = json.loads(text)
    except json.JSONDecodeError as error:
        raise DatasetError(path, f"invalid JSON: {error.msg} (column {error.colno})", line=error.lineno) from None
    if not isinstance(dataset, dict):
        raise DatasetError(path, "expected a JSON object with 'images', 'annotations' and 'categories'")
    for key in ("images", "annotations", "categories"):
        if key not in dataset:
            raise DatasetError(path, f"missing '{key}' list (a COCO instances file has images, annotations and categories)")
        if not isinstance(dataset[key], list):
            raise DatasetError(path, f"'{key}' must be a list")
    _check_categories(path, dataset["categories"])
    _check_images(path, dataset["images"])
    _check_annotations(path, dataset)
    return dataset


def _is_id(value):
    """COCO ids are integers (some exporters write strings); never booleans, floats or containers."""
    return (isinstance(value, int) and not isinstance(value, bool)) or isinstance(value, str)


def _is_number(value):
    """A JSON number that is finite as a float (huge integers and 1e400 are not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _check_categories(path, categories):
    ids, names = {}, {}
    for index, category in enumerate(categories):
        where = f"categories[{index}]"
        if not isinstance(category, dict) or "id" not in category or "name" not in category:
            raise DatasetError(path, "each category needs an 'id' and a 'name'", where=where)
        category_id, name = category["id"], category["name"]
        if not isinstance(category_id, int) or isinstance(category_id, bool):
            raise DatasetError(path, f"category id {category_id!r} is not an integer", where=where)
        if not isinstance(name, str) or not name.strip():
            raise DatasetError(path, f"category name {name!r} is not a non-empty string", where=where)
        if category_id in ids:
            raise DatasetError(path, f"duplicate category id {category_id} ('{name}' and '{ids[category_id]}')", where=where)
        if name in names:
            raise DatasetError(path, f"duplicate category name '{name}' (ids {names[name]} and {category_id})", where=where)
        ids[category_id] = name
        names[name] = category_id
    if not categories:
        raise DatasetError(path, "no categories")


def _check_images(path, images):
    seen = set()
    for index, image in enumerate(images):
        where = f"images[{index}]"
        if not isinstance(image, dict) or not all(key in image for key in ("id", "file_name", "width", "height")):
            raise DatasetError(path, "each image needs 'id', 'file_name', 'width' and 'height'", where=where)
        if not _is_id(image["id"]):
            raise DatasetError(path, f"image id {image['id']!r} is not an integer or string", where=where)
        if not isinstance(image["file_name"], str) or not image["file_name"].strip():
            raise DatasetError(path, f"file_name {image['file_name']!r} is not a non-empty string", where=where)
        if image["id"] in seen:
            raise DatasetError(path, f"duplicate image id {image['id']}", where=where)
        seen.add(image["id"])
        for key in ("width", "height"):
            if not _is_number(image[key]) or image[key] <= 0:
                raise DatasetError(path, f"image {key} {image[key]!r} must be a positive number", where=where)


def _check_annotations(path, dataset):
    category_ids = {category["id"] for category in dataset["categories"]}
    image_ids = {image["id"] for image in dataset["images"]}
    seen = set()
    for index, annotation in enumerate(dataset["annotations"]):
        if not isinstance(annotation, dict):
            raise DatasetError(path, "each annotation must be an object", where=f"annotations[{index}]")
        annotation_id = annotation.get("id")
        where = f"annotation id {annotation_id}" if annotation_id is not None else f"annotations[{index}]"
        for key in ("id", "image_id", "category_id", "bbox"):
            if key not in annotation:
                raise DatasetError(path, f"missing '{key}'", where=where)
        for key in ("id", "image_id", "category_id"):
            if not _is_id(annotation[key]):
                raise DatasetError(path, f"{key} {annotation[key]!r} is not an integer or string", where=where)
        if annotation_id in seen:
            raise DatasetError(path, "duplicate annotation id", where=where)
        seen.add(annotation_id)
        if annotation["image_id"] not in image_ids:
            raise DatasetError(path, f"image_id {annotation['image_id']!r} is not in 'images'", where=where)
        if annotation["category_id"] not in category_ids:
            raise DatasetError(
                path, f"unknown category_id {annotation['category_id']!r} (known: {sorted(category_ids)})", where=where
            )
        bbox = annotation["bbox"]
        if (
            not isinstance(bbox, list)
            or len(bbox) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox)
        ):
            raise DatasetError(path, f"bbox must be [x, y, width, height] numbers, got {bbox!r}", where=where)
        if not all(_is_number(v) for v in bbox):
            raise DatasetError(path, f"bbox {bbox} has a non-finite value", where=where)
        x, y, width, height = bbox
        if x < 0 or y < 0:
            raise DatasetError(path, f"bbox {bbox} has a negative x or y", where=where)
        if width < 0 or height < 0:
            raise DatasetError(path, f"bbox {bbox} has a negative width or height", where=where)


class CocoGenerator(Generator):
    """Dataset in COCO layout.

    Args:
        data_dir: folder with ``annotations/`` and ``images/``.
        set_name: 'train2017', 'val2017', ... (``annotations/instances_{set_name}.json``, ``images/{set_name}/``).
        **kwargs: passed to :class:`Generator`.
    """

    def __init__(self, data_dir, set_name, **kwargs):
        self.data_dir = os.fspath(data_dir)
        self.set_name = set_name
        self.annotations_file = os.path.join(self.data_dir, "annotations", "instances_" + set_name + ".json")
        dataset = _load_coco_json(self.annotations_file)
        self.coco = COCO()
        self.coco.dataset = dataset
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
            self.coco.createIndex()
        self.image_ids = list(self.coco.getImgIds())
        self.load_classes()
        self._check_images_exist()
        super().__init__(**kwargs)

    def load_classes(self):
        """Labels 0..N-1 for the categories in id order, and the maps both ways."""
        categories = sorted(self.coco.loadCats(self.coco.getCatIds()), key=lambda category: category["id"])
        self.classes = {}
        self.coco_labels = {}
        self.coco_labels_inverse = {}
        for category in categories:
            self.coco_labels[len(self.classes)] = category["id"]
            self.coco_labels_inverse[category["id"]] = len(self.classes)
            self.classes[category["name"]] = len(self.classes)
        self.labels = {label: name for name, label in self.classes.items()}

    def _check_images_exist(self):
        missing = [image_index for image_index in range(self.size()) if not os.path.isfile(self.image_path(image_index))]
        if missing:
            info = self.coco.imgs[self.image_ids[missing[0]]]
            others = f" ({len(missing) - 1} more image(s) are missing too)" if len(missing) > 1 else ""
            raise DatasetError(
                self.annotations_file,
                f"image '{info['file_name']}' not found at {self.image_path(missing[0])}{others}",
                where=f"image id {info['id']}",
            )

    def size(self):
        return len(self.image_ids)

    def coco_label_to_label(self, coco_label):
        """COCO category id -> label 0..N-1."""
        return self.coco_labels_inverse[coco_label]

    def coco_label_to_name(self, coco_label):
        return self.label_to_name(self.coco_label_to_label(coco_label))

    def label_to_coco_label(self, label):
        """Label 0..N-1 -> COCO category id."""
        return self.coco_labels[label]

    def image_path(self, image_index):
        info = self.coco.imgs[self.image_ids[image_index]]
        return os.path.join(self.data_dir, "images", self.set_name, info["file_name"])

    def image_aspect_ratio(self, image_index):
        info = self.coco.imgs[self.image_ids[image_index]]
        return float(info["width"]) / float(info["height"])

    def load_annotations(self, image_index):
        labels, boxes = [], []
        for annotation in self.coco.imgToAnns.get(self.image_ids[image_index], []):
            if annotation.get("iscrowd", 0):
                continue
            x, y, width, height = annotation["bbox"]
            if width < 1 or height < 1:
                continue
            labels.append(self.coco_label_to_label(annotation["category_id"]))
            boxes.append([x, y, x + width, y + height])
        return {
            "labels": np.array(labels, dtype=np.int64),
            "bboxes": np.array(boxes, dtype=np.float64).reshape((-1, 4)),
        }
