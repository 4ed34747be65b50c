"""Property tests: every reader turns any input into a dataset or into the package's own error.

Annotations CSV, classes CSV, config .ini, COCO JSON and Pascal VOC XML get random bytes,
mangled rows (wrong column counts, huge or non-finite numbers, unicode, empty fields,
duplicates) and well-formed files. Each either parses, keeping every valid row, or raises
``DatasetError`` naming the file (and the line or element where it can).
"""

import csv
import io
import json
import math
import os
from xml.sax.saxutils import escape

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from keras_retinanet.errors import DatasetError
from keras_retinanet.preprocessing.coco import CocoGenerator
from keras_retinanet.preprocessing.csv_generator import CSVGenerator, read_classes_file
from keras_retinanet.preprocessing.pascal_voc import PascalVocGenerator
from keras_retinanet.config.anchors_ini import parse_anchor_parameters, parse_pyramid_levels, read_config_file

FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
IMAGE_NAMES = ("a.png", "b.png", "c.png")
CLASS_NAMES = ("cat", "dog", "ünï cødé")
KW = {"group_method": "none", "shuffle_groups": False}  # no image decoding while building a generator

# Text pieces a hostile or careless file holds.
weird_text = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "nan", "inf", "-1", "1e400", "9" * 40, "0x1f", "1,5", '"', "\x00", "🐱", "\r\n", "  7 "]),
)
numbers = st.one_of(
    st.integers(-10, 10**6), st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**30), 10**30)
)


@pytest.fixture(scope="module")
def images_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    for name in IMAGE_NAMES:
        cv2.imwrite(str(folder / name), np.zeros((50, 60, 3), np.uint8))
    return folder


def write(path, data):
    with open(path, "wb") as handle:
        handle.write(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    return str(path)


def check_error(error, path):
    """The package's error names the file (and is no bare exception)."""
    assert isinstance(error, DatasetError)
    assert error.path.startswith(str(path)) or str(path) in error.path, (error.path, path)
    assert error.reason and str(path) in str(error)


def csv_text(rows):
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------
# Classes CSV
# --------------------------------------------------------------------------------------


@FUZZ
@given(data=st.one_of(st.binary(max_size=200), st.lists(st.lists(weird_text, max_size=4), max_size=6).map(csv_text)))
@example(data="cat," + "9" * 200000 + "\n")  # past the csv module's field size limit
@example(data="cat,1e400\n")
def test_classes_csv_random_input(images_dir, data):
    path = images_dir / "classes_random.csv"
    write(path, data)
    try:
        classes = read_classes_file(str(path))
    except DatasetError as error:
        check_error(error, path)
        return
    assert classes and all(isinstance(v, int) and v >= 0 for v in classes.values())
    assert len(set(classes.values())) == len(classes)


@FUZZ
@given(
    names=st.lists(st.text(min_size=1, max_size=8).filter(lambda s: s.strip() == s and s and "\x00" not in s),
                   min_size=1, max_size=6, unique=True),  # fmt: skip
    shuffle=st.randoms(use_true_random=False),
)
def test_classes_csv_valid_rows_all_kept(images_dir, names, shuffle):
    ids = list(range(len(names)))
    shuffle.shuffle(ids)
    path = images_dir / "classes_valid.csv"
    write(path, csv_text(zip(names, ids)))
    try:
        classes = read_classes_file(str(path))
    except DatasetError as error:  # only a name csv cannot hold as one field (e.g. a lone \r)
        check_error(error, path)
        assert any(c in "".join(names) for c in "\r\n")
        return
    assert dict(classes) == dict(zip(names, ids))


# --------------------------------------------------------------------------------------
# Annotations CSV
# --------------------------------------------------------------------------------------


def write_classes(folder):
    return write(folder / "classes.csv", csv_text((name, i) for i, name in enumerate(CLASS_NAMES)))


@FUZZ
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.lists(st.lists(st.one_of(weird_text, st.sampled_from(IMAGE_NAMES + CLASS_NAMES)), max_size=8), max_size=6).map(csv_text),
        st.lists(st.tuples(st.sampled_from(IMAGE_NAMES), numbers, numbers, numbers, numbers,
                           st.sampled_from(CLASS_NAMES + ("bird", ""))), max_size=6).map(csv_text),
    )
)  # fmt: skip
@example(data="a.png,1,1,5," + "5" * 200000 + ",cat\n")
@example(data="a.png,1,1,1e400,5,cat\n")
def test_annotations_csv_random_input(images_dir, data):
    path = images_dir / "annotations_random.csv"
    write(path, data)
    try:
        generator = CSVGenerator(str(path), write_classes(images_dir), **KW)
    except DatasetError as error:
        check_error(error, path)
        return
    for index in range(generator.size()):
        annotations = generator.load_annotations(index)
        boxes = annotations["bboxes"]
        assert np.all(np.isfinite(boxes)) and np.all(boxes >= 0)
        assert np.all(boxes[:, 2] > boxes[:, 0]) and np.all(boxes[:, 3] > boxes[:, 1])
        assert set(annotations["labels"].tolist()) <= set(range(len(CLASS_NAMES)))


valid_box = st.tuples(
    st.sampled_from(IMAGE_NAMES),
    st.integers(0, 10**6), st.integers(0, 10**6), st.integers(1, 10**6), st.integers(1, 10**6),
    st.sampled_from(CLASS_NAMES),
).map(lambda r: (r[0], r[1], r[2], r[1] + r[3], r[2] + r[4], r[5]))  # fmt: skip


@FUZZ
@given(rows=st.lists(st.one_of(valid_box, st.sampled_from(IMAGE_NAMES).map(lambda n: (n, "", "", "", "", ""))),
                     min_size=1, max_size=12))  # fmt: skip
def test_annotations_csv_valid_rows_all_kept(images_dir, rows):
    """Every valid row, duplicates included, appears in the dataset; every image listed is kept."""
    path = images_dir / "annotations_valid.csv"
    write(path, csv_text(rows))
    generator = CSVGenerator(str(path), write_classes(images_dir), **KW)
    expected = {}
    for name, *box in rows:
        expected.setdefault(name, [])
        if box[0] != "":
            expected[name].append((*map(float, box[:4]), CLASS_NAMES.index(box[4])))
    assert generator.image_names == list(expected)
    for index, name in enumerate(generator.image_names):
        annotations = generator.load_annotations(index)
        got = [(*map(float, b), int(label)) for b, label in zip(annotations["bboxes"], annotations["labels"])]
        assert got == expected[name]


# --------------------------------------------------------------------------------------
# Config .ini
# --------------------------------------------------------------------------------------

number_list = st.lists(st.one_of(st.integers(-5, 600).map(str), weird_text), min_size=0, max_size=6).map(" ".join)


@FUZZ
@given(
    data=st.one_of(
        st.binary(max_size=200),
        st.text(max_size=200),
        st.fixed_dictionaries(
            {"sizes": number_list, "strides": number_list, "ratios": number_list, "scales": number_list},
            optional={"levels": number_list, "header": st.sampled_from(["[anchor_parameters]", "[other]", "", "[[x]"])},
        ).map(lambda d: (d.get("header", "[anchor_parameters]") + "\n"
                         + "".join(f"{k} = {v}\n" for k, v in d.items() if k not in ("levels", "header"))
                         + (f"[pyramid_levels]\nlevels = {d['levels']}\n" if "levels" in d else ""))),
    )
)  # fmt: skip
@example(data="[anchor_parameters]\nsizes = 9999999999999999999999999999999999999999\nstrides = 8\nratios = 1\nscales = 1\n")
@example(data="[anchor_parameters]\nsizes = 32%\nstrides = 8\nratios = 1\nscales = 1\n")
@example(data="[pyramid_levels]\nlevels = 3\nlevels = 4\n")
def test_config_random_input(images_dir, data):
    path = images_dir / "config.ini"
    write(path, data)
    try:
        config = read_config_file(str(path))
        anchors = parse_anchor_parameters(config) if config.has_section("anchor_parameters") else None
        levels = parse_pyramid_levels(config) if config.has_section("pyramid_levels") else None
    except DatasetError as error:
        check_error(error, path)
        return
    if anchors is not None:
        assert len(anchors.sizes) == len(anchors.strides) > 0
        assert all(math.isfinite(float(r)) and r > 0 for r in anchors.ratios)
    if levels is not None:
        assert levels and all(isinstance(level, int) and level > 0 for level in levels)


@FUZZ
@given(
    sizes=st.lists(st.integers(1, 1024), min_size=1, max_size=5),
    ratios=st.lists(st.floats(0.01, 100), min_size=1, max_size=4),
    scales=st.lists(st.floats(0.01, 100), min_size=1, max_size=4),
)
def test_config_valid_values_all_kept(images_dir, sizes, ratios, scales):
    strides = [8 * (i + 1) for i in range(len(sizes))]
    text = (f"[anchor_parameters]\nsizes = {' '.join(map(str, sizes))}\nstrides = {' '.join(map(str, strides))}\n"
            f"ratios = {' '.join(map(repr, ratios))}\nscales = {' '.join(map(repr, scales))}\n")  # fmt: skip
    path = images_dir / "config_valid.ini"
    write(path, text)
    anchors = parse_anchor_parameters(read_config_file(str(path)))
    assert list(anchors.sizes) == sizes and list(anchors.strides) == strides
    np.testing.assert_allclose(anchors.ratios, np.float32(ratios))
    np.testing.assert_allclose(anchors.scales, np.float32(scales))


# --------------------------------------------------------------------------------------
# COCO JSON
# --------------------------------------------------------------------------------------

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers.filter(lambda v: not (isinstance(v, float) and not math.isfinite(v))),
              weird_text),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(weird_text, children, max_size=3)),
    max_leaves=8,
)  # fmt: skip


def mangle(value):
    """A strategy replacing a value with a random JSON value, sometimes."""
    return st.one_of(st.just(value), json_values)


@st.composite
def coco_documents(draw):
    categories = [{"id": draw(mangle(i + 1)), "name": draw(mangle(name))} for i, name in enumerate(CLASS_NAMES[:2])]
    images = [
        {"id": draw(mangle(i + 1)), "file_name": draw(mangle(name)), "width": draw(mangle(60)), "height": draw(mangle(50))}
        for i, name in enumerate(IMAGE_NAMES[: draw(st.integers(0, 3))])
    ]
    annotations = []
    for index in range(draw(st.integers(0, 4))):
        bbox = draw(st.one_of(st.lists(numbers, min_size=4, max_size=4), json_values))
        annotation = {"id": draw(mangle(index)), "image_id": draw(mangle(1)), "category_id": draw(mangle(1)),
                      "bbox": bbox, "iscrowd": draw(mangle(0))}  # fmt: skip
        for key in draw(st.lists(st.sampled_from(sorted(annotation)), max_size=1)):
            del annotation[key]
        annotations.append(annotation)
    document = {"images": images, "annotations": annotations, "categories": categories}
    for key in draw(st.lists(st.sampled_from(sorted(document)), max_size=1)):
        document[key] = draw(json_values)
    return json.dumps(document, allow_nan=True)


def coco_folder(root, text):
    for sub in ("annotations", "images/set"):
        os.makedirs(root / sub, exist_ok=True)
    for name in IMAGE_NAMES:
        target = root / "images" / "set" / name
        if not target.exists():
            target.write_bytes((root.parent / name).read_bytes() if (root.parent / name).exists() else b"")
    return write(root / "annotations" / "instances_set.json", text)


@FUZZ
@given(data=st.one_of(st.binary(max_size=200), st.text(max_size=100), json_values.map(json.dumps), coco_documents()))
@example(data='{"images": [], "annotations": [], "categories": [{"id": 1, "name": []}]}')
@example(data='{"images": [{"id": 1, "file_name": "a.png", "width": 1e400, "height": 5}], "annotations": [], '
              '"categories": [{"id": 1, "name": "cat"}]}')
def test_coco_random_input(images_dir, data):
    path = coco_folder(images_dir / "coco", data)
    try:
        generator = CocoGenerator(str(images_dir / "coco"), "set", **KW)
    except DatasetError as error:
        check_error(error, path)
        return
    assert generator.num_classes() >= 1
    for index in range(generator.size()):
        annotations = generator.load_annotations(index)
        boxes = annotations["bboxes"]
        assert np.all(np.isfinite(boxes)) and np.all(boxes[:, 2] > boxes[:, 0]) and np.all(boxes[:, 3] > boxes[:, 1])


@FUZZ
@given(boxes=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 1), st.integers(0, 10**5), st.integers(0, 10**5),
                                st.integers(1, 10**5), st.integers(1, 10**5)), max_size=8))  # fmt: skip
def test_coco_valid_annotations_all_kept(images_dir, boxes):
    images = [{"id": i + 1, "file_name": name, "width": 60, "height": 50} for i, name in enumerate(IMAGE_NAMES)]
    categories = [{"id": 5, "name": "cat"}, {"id": 9, "name": "dog"}]
    annotations = [{"id": n, "image_id": image + 1, "category_id": (5, 9)[category], "bbox": [x, y, w, h], "iscrowd": 0}
                   for n, (image, category, x, y, w, h) in enumerate(boxes)]  # fmt: skip
    coco_folder(images_dir / "coco_valid", json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    generator = CocoGenerator(str(images_dir / "coco_valid"), "set", **KW)
    assert generator.size() == 3
    for index in range(3):
        got = generator.load_annotations(index)
        expected = [(x, y, x + w, y + h, c) for (i, c, x, y, w, h) in boxes if i == index]
        assert [(*map(float, b), int(label)) for b, label in zip(got["bboxes"], got["labels"])] == expected


# --------------------------------------------------------------------------------------
# Pascal VOC XML
# --------------------------------------------------------------------------------------

VOC_CLASSES = {"cat": 0, "dog": 1}


def voc_folder(root, xml_texts):
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        os.makedirs(root / sub, exist_ok=True)
    names = [f"im{index}" for index in range(len(xml_texts))]
    for name, text in zip(names, xml_texts):
        write(root / "Annotations" / f"{name}.xml", text)
        target = root / "JPEGImages" / f"{name}.png"
        if not target.exists():
            cv2.imwrite(str(target), np.zeros((50, 60, 3), np.uint8))
    write(root / "ImageSets" / "Main" / "set.txt", "".join(f"{name}\n" for name in names))
    return names


def voc_object(name, box, flags=("0", "0")):
    return (f"<object><name>{escape(name)}</name><truncated>{escape(flags[0])}</truncated>"
            f"<difficult>{escape(flags[1])}</difficult><bndbox>"
            + "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in zip(("xmin", "ymin", "xmax", "ymax"), box))
            + "</bndbox></object>")  # fmt: skip


xml_field = st.one_of(st.integers(-5, 10**6).map(str), weird_text.map(lambda s: s.replace("\x00", "")))


@st.composite
def voc_documents(draw):
    objects = "".join(
        voc_object(draw(st.one_of(st.sampled_from(["cat", "dog"]), xml_field)),
                   draw(st.lists(xml_field, min_size=4, max_size=4)),
                   draw(st.tuples(xml_field, xml_field)))
        for _ in range(draw(st.integers(0, 3)))
    )  # fmt: skip
    size = draw(st.sampled_from(["", "<size><width>60</width><height>50</height></size>"]))
    text = f"<annotation>{size}{objects}</annotation>"
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(text)))
        text = text[:cut]
    return text


@FUZZ
@given(data=st.lists(st.one_of(st.binary(max_size=100), st.text(max_size=60), voc_documents()), min_size=1, max_size=2))
@example(data=["<annotation>" + voc_object("cat", (1, 1, 5, 5), ("inf", "0")) + "</annotation>"])
@example(data=["<annotation>" + voc_object("cat", (1, 1, "1e400", 5)) + "</annotation>"])
@example(data=["<annotation><object><name>cat</name></object></annotation>"])
def test_pascal_voc_random_input(images_dir, data):
    root = images_dir / "voc"
    names = voc_folder(root, data)
    try:
        generator = PascalVocGenerator(str(root), "set", classes=VOC_CLASSES, image_extension=".png", **KW)
    except DatasetError as error:
        assert isinstance(error, DatasetError)
        assert error.path.startswith(str(root)) and error.reason
        return
    assert generator.size() == len(names)
    for index in range(generator.size()):
        boxes = generator.load_annotations(index)["bboxes"]
        assert np.all(np.isfinite(boxes)) and np.all(boxes[:, 2] > boxes[:, 0]) and np.all(boxes[:, 3] > boxes[:, 1])


@FUZZ
@given(objects=st.lists(st.tuples(st.sampled_from(["cat", "dog"]), st.integers(1, 10**5), st.integers(1, 10**5),
                                  st.integers(1, 10**5), st.integers(1, 10**5)), max_size=6))  # fmt: skip
def test_pascal_voc_valid_objects_all_kept(images_dir, objects):
    text = "<annotation>" + "".join(voc_object(n, (x, y, x + w, y + h)) for n, x, y, w, h in objects) + "</annotation>"
    root = images_dir / "voc_valid"
    voc_folder(root, [text])
    generator = PascalVocGenerator(str(root), "set", classes=VOC_CLASSES, image_extension=".png", **KW)
    got = generator.load_annotations(0)
    expected = [(x - 1.0, y - 1.0, x + w - 1.0, y + h - 1.0, VOC_CLASSES[n]) for n, x, y, w, h in objects]
    assert [(*map(float, b), int(label)) for b, label in zip(got["bboxes"], got["labels"])] == expected
