"""OpenImagesGenerator (v4 CSV layout) and KittiGenerator on small datasets written by the test."""

import os

import cv2
import numpy as np
import pytest

from keras_retinanet.errors import DatasetError
from keras_retinanet.preprocessing.kitti import KittiGenerator, kitti_classes
from keras_retinanet.preprocessing.open_images import OpenImagesGenerator

HEADER = "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,IsDepiction,IsInside\n"


def _open_images(tmp_path, rows, descriptions="/m/01,Apple\n/m/02,Banana\n/m/03,Cherry\n"):
    os.makedirs(tmp_path / "v4" / "train", exist_ok=True)
    os.makedirs(tmp_path / "images" / "train", exist_ok=True)
    (tmp_path / "v4" / "class-descriptions-boxable.csv").write_text(descriptions)
    (tmp_path / "v4" / "train" / "train-annotations-bbox.csv").write_text(HEADER + rows)
    for image_id, (height, width) in {"img1": (50, 100), "img2": (80, 40)}.items():
        cv2.imwrite(str(tmp_path / "images" / "train" / f"{image_id}.jpg"), np.zeros((height, width, 3), np.uint8))
    return str(tmp_path)


ROWS = (
    "img1,xclick,/m/02,1,0.1,0.5,0.2,0.6,0,0,0,0,0\n"
    "img1,xclick,/m/99,1,0.1,0.5,0.2,0.6,0,0,0,0,0\n"  # label not in the descriptions: skipped
    "img2,xclick,/m/01,1,0.25,0.75,0.5,1.0,0,0,0,0,0\n"
)


def test_open_images_denormalises_boxes(tmp_path):
    generator = OpenImagesGenerator(_open_images(tmp_path, ROWS), "train", group_method="none", shuffle_groups=False)
    assert generator.size() == 2 and generator.num_classes() == 3
    assert generator.label_to_name(1) == "Banana" and generator.name_to_label("Cherry") == 2
    first = generator.load_annotations(0)
    np.testing.assert_array_equal(first["labels"], [1])
    np.testing.assert_allclose(first["bboxes"], [[10, 10, 50, 30]])  # 100 wide, 50 high
    second = generator.load_annotations(1)
    np.testing.assert_array_equal(second["labels"], [0])
    np.testing.assert_allclose(second["bboxes"], [[10, 40, 30, 80]])  # 40 wide, 80 high
    assert generator.image_aspect_ratio(1) == pytest.approx(0.5)
    assert generator.load_image(0).shape == (50, 100, 3)


def test_open_images_labels_filter(tmp_path):
    generator = OpenImagesGenerator(_open_images(tmp_path, ROWS), "train", labels_filter=["Apple"])
    assert generator.size() == 1 and generator.num_classes() == 1
    np.testing.assert_array_equal(generator.load_annotations(0)["labels"], [0])


@pytest.mark.parametrize(
    "row, message",
    [
        ("img1,xclick,/m/02,1,0.6,0.5,0.2,0.6,0,0,0,0,0\n", r"train-annotations-bbox\.csv line 3: XMax \(0\.5\) must be greater than XMin \(0\.6\)"),
        ("img1,xclick,/m/02,1,abc,0.5,0.2,0.6,0,0,0,0,0\n", r"train-annotations-bbox\.csv line 3: malformed XMin 'abc'"),
        ("img1,xclick,/m/02,1,0.1,0.5,-0.2,0.6,0,0,0,0,0\n", r"train-annotations-bbox\.csv line 3: YMin \(-0\.2\) must be a number in \[0, 1\]"),
        ("img9,xclick,/m/02,1,0.1,0.5,0.2,0.6,0,0,0,0,0\n", r"train-annotations-bbox\.csv: image 'img9' not found"),
    ],
)
def test_open_images_errors(tmp_path, row, message):
    with pytest.raises(DatasetError, match=message):
        OpenImagesGenerator(_open_images(tmp_path, "img2,xclick,/m/01,1,0.25,0.75,0.5,1.0,0,0,0,0,0\n" + row), "train")


def test_open_images_duplicate_class(tmp_path):
    with pytest.raises(DatasetError, match=r"class-descriptions-boxable\.csv line 2: duplicate class name 'Apple'"):
        OpenImagesGenerator(_open_images(tmp_path, ROWS, descriptions="/m/01,Apple\n/m/02,Apple\n"), "train")


def _kitti(tmp_path, labels):
    os.makedirs(tmp_path / "train" / "labels", exist_ok=True)
    os.makedirs(tmp_path / "train" / "images", exist_ok=True)
    for name, text in labels.items():
        (tmp_path / "train" / "labels" / f"{name}.txt").write_text(text)
        cv2.imwrite(str(tmp_path / "train" / "images" / f"{name}.png"), np.zeros((30, 90, 3), np.uint8))
    return str(tmp_path)


KITTI_LINES = (
    "Car 0.00 0 -1.58 10.50 5.00 40.25 20.00 1.65 1.67 3.64 -0.65 1.71 46.70 -1.59\n"
    "DontCare -1 -1 -10 50.00 2.00 60.00 12.00 -1 -1 -1 -1000 -1000 -1000 -10\n"
    "Pedestrian 0.00 0 0.21 60.00 1.00 70.00 29.00 1.89 0.48 1.20 1.84 1.47 8.41 0.01\n"
)


def test_kitti_reads_boxes_and_skips_dont_care(tmp_path):
    generator = KittiGenerator(_kitti(tmp_path, {"000001": KITTI_LINES, "000000": ""}), "train",
                               group_method="none", shuffle_groups=False)
    assert generator.size() == 2 and generator.num_classes() == 8
    assert generator.load_annotations(0)["bboxes"].shape == (0, 4)  # 000000: an image without objects
    annotations = generator.load_annotations(1)
    np.testing.assert_array_equal(annotations["labels"], [kitti_classes["Car"], kitti_classes["Pedestrian"]])
    np.testing.assert_allclose(annotations["bboxes"], [[10.5, 5, 40.25, 20], [60, 1, 70, 29]])
    assert generator.image_aspect_ratio(1) == pytest.approx(3.0)
    assert generator.load_image(1).shape == (30, 90, 3)


@pytest.mark.parametrize(
    "line, message",
    [
        ("Car 0 0 0 10 5 40\n", r"000001\.txt line 2: expected 15 space separated fields, got 7"),
        ("Boat 0 0 0 10 5 40 20 1 1 1 1 1 1 1\n", r"000001\.txt line 2: unknown object type 'Boat'"),
        ("Car 0 0 0 10 5 x 20 1 1 1 1 1 1 1\n", r"000001\.txt line 2: malformed right 'x'"),
        ("Car 0 0 0 50 5 40 20 1 1 1 1 1 1 1\n", r"000001\.txt line 2: right \(40\) must be greater than left \(50\)"),
    ],
)
def test_kitti_errors(tmp_path, line, message):
    with pytest.raises(DatasetError, match=message):
        KittiGenerator(_kitti(tmp_path, {"000001": KITTI_LINES.splitlines(True)[0] + line}), "train")


def test_kitti_missing_image(tmp_path):
    root = _kitti(tmp_path, {"000001": KITTI_LINES})
    os.remove(tmp_path / "train" / "images" / "000001.png")
    with pytest.raises(DatasetError, match=r"000001\.txt: its image is missing"):
        KittiGenerator(root, "train")
