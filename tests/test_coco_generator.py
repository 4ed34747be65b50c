"""CocoGenerator: instances JSON written by the test, crowd/tiny boxes, category remapping and errors."""

import copy
import json
import os

import cv2
import numpy as np
import pytest

from keras_retinanet.errors import DatasetError
from keras_retinanet.preprocessing.coco import CocoGenerator

DATASET = {
    "images": [
        {"id": 10, "file_name": "x.jpg", "width": 60, "height": 40},
        {"id": 20, "file_name": "y.png", "width": 30, "height": 50},
    ],
    "categories": [
        {"id": 7, "name": "zebra"},
        {"id": 3, "name": "ant"},
    ],
    "annotations": [
        {"id": 1, "image_id": 10, "category_id": 7, "bbox": [1.5, 2, 20, 10], "area": 200, "iscrowd": 0},
        {"id": 2, "image_id": 10, "category_id": 3, "bbox": [30, 5, 8, 30], "area": 240, "iscrowd": 0},
        {"id": 3, "image_id": 10, "category_id": 3, "bbox": [0, 0, 50, 30], "area": 1500, "iscrowd": 1},
        {"id": 4, "image_id": 10, "category_id": 7, "bbox": [5, 5, 0.5, 10], "area": 5, "iscrowd": 0},
        {"id": 5, "image_id": 20, "category_id": 7, "bbox": [2, 3, 4, 5], "area": 20},
    ],
}


def _write(tmp_path, dataset=DATASET, set_name="train", raw=None):
    os.makedirs(tmp_path / "annotations", exist_ok=True)
    os.makedirs(tmp_path / "images" / set_name, exist_ok=True)
    for image in DATASET["images"]:
        cv2.imwrite(str(tmp_path / "images" / set_name / image["file_name"]),
                    np.full((image["height"], image["width"], 3), 128, np.uint8))
    path = tmp_path / "annotations" / f"instances_{set_name}.json"
    if raw is not None:
        path.write_bytes(raw)
    else:
        path.write_text(json.dumps(dataset, indent=1))
    return str(tmp_path)


def test_reads_boxes_and_remaps_category_ids(tmp_path):
    generator = CocoGenerator(_write(tmp_path), "train", group_method="none", shuffle_groups=False)
    assert generator.size() == 2 and generator.num_classes() == 2
    # Categories in id order: ant (3) -> 0, zebra (7) -> 1.
    assert generator.label_to_name(0) == "ant" and generator.name_to_label("zebra") == 1
    assert generator.coco_label_to_label(7) == 1 and generator.label_to_coco_label(0) == 3
    assert generator.coco_label_to_name(3) == "ant"

    first = generator.load_annotations(0)  # crowd (id 3) and the 0.5 px wide box (id 4) are skipped
    np.testing.assert_array_equal(first["labels"], [1, 0])
    np.testing.assert_allclose(first["bboxes"], [[1.5, 2, 21.5, 12], [30, 5, 38, 35]])
    second = generator.load_annotations(1)  # 'iscrowd' absent counts as not crowd
    np.testing.assert_array_equal(second["labels"], [1])
    np.testing.assert_allclose(second["bboxes"], [[2, 3, 6, 8]])

    assert generator.image_path(1) == os.path.join(str(tmp_path), "images", "train", "y.png")
    assert generator.image_aspect_ratio(0) == pytest.approx(1.5)
    assert generator.load_image(1).shape == (50, 30, 3)


def _broken(change):
    dataset = copy.deepcopy(DATASET)
    change(dataset)
    return dataset


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["annotations"][1].update(category_id=99), r"\(annotation id 2\): unknown category_id 99"),
        (lambda d: d["annotations"][0].update(bbox=[1, 2, 3]), r"\(annotation id 1\): bbox must be \[x, y, width, height\]"),
        (lambda d: d["annotations"][0].update(bbox=[1, 2, -3, 4]), r"\(annotation id 1\): bbox .* negative width or height"),
        (lambda d: d["annotations"][0].update(bbox=[-1, 2, 3, 4]), r"\(annotation id 1\): bbox .* negative x or y"),
        (lambda d: d["annotations"][0].update(bbox=["a", 2, 3, 4]), r"\(annotation id 1\): bbox must be"),
        (lambda d: d["annotations"][4].update(image_id=99), r"\(annotation id 5\): image_id 99 is not in 'images'"),
        (lambda d: d["annotations"][4].update(id=1), r"\(annotation id 1\): duplicate annotation id"),
        (lambda d: d["categories"].append({"id": 7, "name": "yak"}), r"\(categories\[2\]\): duplicate category id 7"),
        (lambda d: d["categories"].append({"id": 8, "name": "ant"}), r"\(categories\[2\]\): duplicate category name 'ant'"),
        (lambda d: d.pop("categories"), r"instances_train\.json: missing 'categories' list"),
        (lambda d: d["images"][1].update(file_name="gone.jpg"), r"\(image id 20\): image 'gone\.jpg' not found"),
    ],
)
def test_bad_annotations(tmp_path, change, message):
    with pytest.raises(DatasetError, match=message):
        CocoGenerator(_write(tmp_path, _broken(change)), "train")


def test_invalid_json_names_the_line(tmp_path):
    text = json.dumps(DATASET, indent=1).replace('"iscrowd": 1', '"iscrowd": 1,,')
    with pytest.raises(DatasetError, match=r"instances_train\.json line \d+: invalid JSON"):
        CocoGenerator(_write(tmp_path, raw=text.encode()), "train")


def test_empty_and_non_utf8_files(tmp_path):
    with pytest.raises(DatasetError, match=r"instances_train\.json: annotations file is empty"):
        CocoGenerator(_write(tmp_path, raw=b""), "train")
    raw = json.dumps(DATASET, indent=1).replace("zebra", "z\u00e9bra").encode("latin-1")
    with pytest.raises(DatasetError, match=r"instances_train\.json line \d+: not UTF-8"):
        CocoGenerator(_write(tmp_path, raw=raw), "train")


def test_missing_annotations_file(tmp_path):
    with pytest.raises(DatasetError, match=r"instances_val\.json: annotations file not found"):
        CocoGenerator(_write(tmp_path), "val")
