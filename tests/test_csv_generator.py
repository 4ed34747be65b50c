"""CSVGenerator: keras-retinanet's CSV format, read from files written by the test, and its errors."""

import os

import cv2
import numpy as np
import pytest

from keras_retinanet.errors import DatasetError
from keras_retinanet.preprocessing.csv_generator import CSVGenerator

CLASSES = "cat,0\ndog,1\n"


def _image(path, height=40, width=60, ext_gray=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image = np.full((height, width, 3), 90, np.uint8)
    cv2.imwrite(str(path), image[:, :, 0] if ext_gray else image)


def _dataset(tmp_path, annotations, classes=CLASSES, images=("a.jpg", "sub/b.png", "c.jpg")):
    for name in images:
        _image(tmp_path / name)
    (tmp_path / "annotations.csv").write_text(annotations, encoding="utf-8")
    (tmp_path / "classes.csv").write_text(classes, encoding="utf-8")
    return str(tmp_path / "annotations.csv"), str(tmp_path / "classes.csv")


def test_reads_boxes_labels_relative_paths_and_empty_images(tmp_path):
    ann, cls = _dataset(
        tmp_path,
        "a.jpg,1,2,30,20,cat\n"
        "sub/b.png,5,6,15,16,dog\n"
        "a.jpg,10,11,50,39,dog\n"
        "c.jpg,,,,,\n",
    )
    generator = CSVGenerator(ann, cls, shuffle_groups=False, group_method="none")
    assert generator.size() == 3
    assert generator.num_classes() == 2
    assert generator.name_to_label("dog") == 1 and generator.label_to_name(0) == "cat"
    assert generator.has_label(1) and not generator.has_label(2) and generator.has_name("cat")
    assert generator.image_path(1) == os.path.join(str(tmp_path), "sub/b.png")

    first = generator.load_annotations(0)
    np.testing.assert_array_equal(first["labels"], [0, 1])
    np.testing.assert_array_equal(first["bboxes"], [[1, 2, 30, 20], [10, 11, 50, 39]])
    second = generator.load_annotations(1)
    np.testing.assert_array_equal(second["labels"], [1])
    np.testing.assert_array_equal(second["bboxes"], [[5, 6, 15, 16]])
    empty = generator.load_annotations(2)
    assert empty["labels"].shape == (0,) and empty["bboxes"].shape == (0, 4)

    image = generator.load_image(1)
    assert image.shape == (40, 60, 3) and image.dtype == np.uint8
    assert generator.image_aspect_ratio(0) == pytest.approx(1.5)


def test_base_dir_overrides_the_csv_folder(tmp_path):
    _image(tmp_path / "imgs" / "a.jpg")
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "ann.csv").write_text("a.jpg,1,1,5,5,cat\n")
    (tmp_path / "meta" / "cls.csv").write_text(CLASSES)
    generator = CSVGenerator(str(tmp_path / "meta" / "ann.csv"), str(tmp_path / "meta" / "cls.csv"),
                             base_dir=str(tmp_path / "imgs"))
    assert generator.image_path(0) == os.path.join(str(tmp_path / "imgs"), "a.jpg")


def test_num_classes_is_largest_id_plus_one(tmp_path):
    ann, cls = _dataset(tmp_path, "a.jpg,1,2,30,20,dog\n", classes="cat,0\ndog,4\n")
    assert CSVGenerator(ann, cls).num_classes() == 5


@pytest.mark.parametrize(
    "row, message",
    [
        ("a.jpg,1,2,30\n", r"annotations\.csv line 2: format should be 'img_file,x1,y1,x2,y2,class_name'"),
        ("a.jpg,1,two,30,20,cat\n", r"annotations\.csv line 2: malformed y1 'two' \(expected a number\)"),
        ("a.jpg,-1,2,30,20,cat\n", r"annotations\.csv line 2: x1 \(-1\) is negative"),
        ("a.jpg,50,2,40,20,cat\n", r"annotations\.csv line 2: x2 \(40\) must be greater than x1 \(50\)"),
        ("a.jpg,1,20,30,20,cat\n", r"annotations\.csv line 2: y2 \(20\) must be greater than y1 \(20\)"),
        ("a.jpg,1,2,30,20,bird\n", r"annotations\.csv line 2: unknown class name 'bird' \(known classes: cat, dog\)"),
        ("a.jpg,1,2,nan,20,cat\n", r"annotations\.csv line 2: malformed x2 'nan'"),
        ("missing.jpg,1,2,30,20,cat\n", r"annotations\.csv line 2: image 'missing\.jpg' not found"),
    ],
)
def test_bad_annotation_rows(tmp_path, row, message):
    ann, cls = _dataset(tmp_path, "a.jpg,1,2,30,20,cat\n" + row)
    with pytest.raises(DatasetError, match=message):
        CSVGenerator(ann, cls)


def test_line_numbers_count_blank_lines(tmp_path):
    ann, cls = _dataset(tmp_path, "a.jpg,1,2,30,20,cat\n\n\na.jpg,50,2,40,20,cat\n")
    with pytest.raises(DatasetError, match=r"annotations\.csv line 4: x2"):
        CSVGenerator(ann, cls)


@pytest.mark.parametrize(
    "classes, message",
    [
        ("cat,0\ncat,1\n", r"classes\.csv line 2: duplicate class name 'cat' \(first on line 1\)"),
        ("cat,0\ndog,0\n", r"classes\.csv line 2: duplicate class id 0 \('dog' and 'cat' on line 1\)"),
        ("cat,zero\n", r"classes\.csv line 1: malformed class id 'zero'"),
        ("cat,0,extra\n", r"classes\.csv line 1: format should be 'class_name,class_id'"),
        ("cat,-1\n", r"classes\.csv line 1: class id -1 of 'cat' is negative"),
        ("", r"classes\.csv: classes file is empty"),
    ],
)
def test_bad_classes(tmp_path, classes, message):
    ann, cls = _dataset(tmp_path, "a.jpg,1,2,30,20,cat\n", classes=classes)
    with pytest.raises(DatasetError, match=message):
        CSVGenerator(ann, cls)


def test_empty_annotations_file(tmp_path):
    ann, cls = _dataset(tmp_path, "")
    with pytest.raises(DatasetError, match=r"annotations\.csv: annotations file is empty"):
        CSVGenerator(ann, cls)


def test_missing_files(tmp_path):
    ann, cls = _dataset(tmp_path, "a.jpg,1,2,30,20,cat\n")
    with pytest.raises(DatasetError, match=r"other\.csv: classes file not found"):
        CSVGenerator(ann, str(tmp_path / "other.csv"))
    with pytest.raises(DatasetError, match=r"nope\.csv: annotations file not found"):
        CSVGenerator(str(tmp_path / "nope.csv"), cls)


def test_wrong_encoding_names_the_line(tmp_path):
    ann, cls = _dataset(tmp_path, "a.jpg,1,2,30,20,cat\n")
    (tmp_path / "classes.csv").write_bytes("cat,0\nd\xf6g,1\n".encode("latin-1"))
    with pytest.raises(DatasetError, match=r"classes\.csv line 2: not UTF-8 text \(byte 0xf6"):
        CSVGenerator(ann, cls)


def test_utf8_class_names_and_bom(tmp_path):
    ann, cls = _dataset(tmp_path, "a.jpg,1,2,30,20,ch\u00e8vre\n")
    (tmp_path / "classes.csv").write_bytes("\ufeffch\u00e8vre,0\n".encode("utf-8"))
    generator = CSVGenerator(ann, cls)
    assert generator.label_to_name(0) == "ch\u00e8vre"


def test_corrupt_image_is_reported_when_loaded(tmp_path):
    ann, cls = _dataset(tmp_path, "a.jpg,1,2,30,20,cat\n")
    (tmp_path / "a.jpg").write_bytes(b"\xff\xd8garbage")
    generator = CSVGenerator(ann, cls, group_method="none")
    with pytest.raises(DatasetError, match=r"a\.jpg: "):
        generator.load_image(0)


def test_grayscale_image_loads_as_bgr(tmp_path):
    _image(tmp_path / "g.png", ext_gray=True)
    (tmp_path / "ann.csv").write_text("g.png,1,2,30,20,cat\n")
    (tmp_path / "cls.csv").write_text(CLASSES)
    generator = CSVGenerator(str(tmp_path / "ann.csv"), str(tmp_path / "cls.csv"))
    assert generator.load_image(0).shape == (40, 60, 3)
