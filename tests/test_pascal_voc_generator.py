"""PascalVocGenerator: XML files written by the test, 1-based coordinates, difficult/truncated, errors."""

import os

import cv2
import numpy as np
import pytest

from keras_retinanet.errors import DatasetError
from keras_retinanet.preprocessing.pascal_voc import PascalVocGenerator, voc_classes


def _object(name, box, truncated=0, difficult=0, flags=True):
    flag_xml = f"<truncated>{truncated}</truncated><difficult>{difficult}</difficult>" if flags else ""
    xmin, ymin, xmax, ymax = box
    return (f"<object><name>{name}</name><pose>Left</pose>{flag_xml}"
            f"<bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>")


def _annotation(objects, width=60, height=40):
    return (f"<annotation><folder>VOC2007</folder><size><width>{width}</width><height>{height}</height>"
            f"<depth>3</depth></size>{''.join(objects)}</annotation>")


def _dataset(tmp_path, files, set_lines=None):
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        os.makedirs(tmp_path / sub, exist_ok=True)
    for name, xml in files.items():
        (tmp_path / "Annotations" / f"{name}.xml").write_text(xml)
        cv2.imwrite(str(tmp_path / "JPEGImages" / f"{name}.jpg"), np.zeros((40, 60, 3), np.uint8))
    lines = set_lines if set_lines is not None else [f"{name}\n" for name in files]
    (tmp_path / "ImageSets" / "Main" / "trainval.txt").write_text("".join(lines))
    return str(tmp_path)


def test_reads_boxes_minus_one_and_flags(tmp_path):
    root = _dataset(tmp_path, {
        "000001": _annotation([_object("dog", (11, 21, 30, 35)), _object("cat", (1, 1, 5, 5), truncated=1)]),
        "000002": _annotation([_object("person", (2, 3, 40, 39), difficult=1), _object("car", (5, 6, 7, 8), flags=False)]),
    }, set_lines=["000001\n", "000002  1\n"])
    generator = PascalVocGenerator(root, "trainval", group_method="none", shuffle_groups=False)
    assert generator.size() == 2 and generator.num_classes() == 20
    first = generator.load_annotations(0)
    np.testing.assert_array_equal(first["labels"], [voc_classes["dog"], voc_classes["cat"]])
    np.testing.assert_array_equal(first["bboxes"], [[10, 20, 29, 34], [0, 0, 4, 4]])
    second = generator.load_annotations(1)
    np.testing.assert_array_equal(second["labels"], [voc_classes["person"], voc_classes["car"]])
    assert generator.image_aspect_ratio(0) == pytest.approx(1.5)
    assert generator.load_image(0).shape == (40, 60, 3)

    skipping = PascalVocGenerator(root, "trainval", skip_truncated=True, skip_difficult=True, group_method="none",
                                  shuffle_groups=False)
    np.testing.assert_array_equal(skipping.load_annotations(0)["labels"], [voc_classes["dog"]])
    np.testing.assert_array_equal(skipping.load_annotations(1)["labels"], [voc_classes["car"]])


def test_custom_classes(tmp_path):
    root = _dataset(tmp_path, {"a": _annotation([_object("widget", (1, 1, 9, 9))])})
    generator = PascalVocGenerator(root, "trainval", classes={"widget": 0})
    assert generator.num_classes() == 1 and generator.label_to_name(0) == "widget"


@pytest.mark.parametrize(
    "xml, message",
    [
        (_annotation([_object("dog", (1, 1, 5, 5)), _object("dragon", (1, 1, 5, 5))]),
         r"bad\.xml \(<object> #2\): unknown class name 'dragon'"),
        (_annotation([_object("dog", (1, 1, "five", 5))]), r"bad\.xml \(<object> #1 <bndbox>\): <xmax> is 'five', expected a number"),
        (_annotation([_object("dog", (20, 1, 10, 5))]), r"bad\.xml \(<object> #1 <bndbox>\): xmax \(10\) must be greater than xmin \(20\)"),
        (_annotation([_object("dog", (1, 9, 10, 9))]), r"bad\.xml \(<object> #1 <bndbox>\): ymax \(9\) must be greater than ymin \(9\)"),
        (_annotation([_object("dog", (-5, 1, 10, 9))]), r"bad\.xml \(<object> #1 <bndbox>\): negative coordinate"),
        (_annotation(["<object><name>dog</name></object>"]), r"bad\.xml \(<object> #1\): missing element <bndbox>"),
        ("<annotation><object>", r"bad\.xml line 1: invalid XML"),
    ],
)
def test_bad_xml(tmp_path, xml, message):
    root = _dataset(tmp_path, {"good": _annotation([_object("dog", (1, 1, 5, 5))]), "bad": xml})
    with pytest.raises(DatasetError, match=message):
        PascalVocGenerator(root, "trainval")


def test_missing_annotation_and_image(tmp_path):
    root = _dataset(tmp_path, {"good": _annotation([_object("dog", (1, 1, 5, 5))])}, set_lines=["good\n", "ghost\n"])
    with pytest.raises(DatasetError, match=r"ghost\.xml: annotation file of image 'ghost' not found"):
        PascalVocGenerator(root, "trainval")
    os.remove(tmp_path / "JPEGImages" / "good.jpg")
    (tmp_path / "ImageSets" / "Main" / "trainval.txt").write_text("good\n")
    with pytest.raises(DatasetError, match=r"trainval\.txt: image 'good' not found"):
        PascalVocGenerator(root, "trainval")


def test_missing_and_empty_set_file(tmp_path):
    root = _dataset(tmp_path, {"good": _annotation([_object("dog", (1, 1, 5, 5))])}, set_lines=[])
    with pytest.raises(DatasetError, match=r"trainval\.txt: image set file is empty"):
        PascalVocGenerator(root, "trainval")
    with pytest.raises(DatasetError, match=r"test\.txt: image set file not found"):
        PascalVocGenerator(root, "test")
