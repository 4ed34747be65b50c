"""The synthetic demo dataset: reproducible from its seed, readable by both readers, boxes on the shapes."""

import filecmp
import hashlib
import json
import os

import numpy as np
import pytest

from keras_retinanet.readers.demo import CLASSES, make_demo_dataset, render_image
from keras_retinanet.preprocessing.coco import CocoGenerator
from keras_retinanet.preprocessing.csv_generator import CSVGenerator

SMALL = dict(num_train=6, num_val=3, image_size=128, min_object_size=20, max_object_size=48, max_objects=4)


def _files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def test_same_seed_gives_byte_identical_files(tmp_path):
    first = make_demo_dataset(tmp_path / "a", seed=5, **SMALL)
    second = make_demo_dataset(tmp_path / "b", seed=5, **SMALL)
    names = _files(first.root)
    assert names == _files(second.root)
    assert "classes.csv" in names and "annotations/instances_val.json" in names and "images/train/000005.jpg" in names
    match, mismatch, errors = filecmp.cmpfiles(first.root, second.root, names, shallow=False)
    assert mismatch == [] and errors == []

    other = make_demo_dataset(tmp_path / "c", seed=6, **SMALL)
    assert not filecmp.cmp(os.path.join(first.root, "train.csv"), os.path.join(other.root, "train.csv"), shallow=False)


def test_a_crowded_image_renders_as_the_figures_data_did():
    """The pixels and boxes of one crowded image, as rendered by the version the README's demo figures were measured
    with (18ecfec, which drew each shape in an image-sized mask): drawing each shape in its own rectangle must not
    change a pixel."""
    image, objects = render_image(np.random.default_rng([7, 0, 3]), 192, 256, 8, 40, 40, 60, 0.1)
    assert len(objects) == 55
    assert hashlib.sha256(image.tobytes()).hexdigest() == "c71963242cd4598d452d5eea3c4d75c542bd7d8d49994b037674e940eb88606d"
    assert hashlib.sha256(json.dumps(objects).encode()).hexdigest() == (
        "3762842bf53ac276e67b535d23ad58aeb85e68dcc39afb9b96a57ff32bf44615"
    )


def test_more_images_keep_the_first_ones(tmp_path):
    small = make_demo_dataset(tmp_path / "a", seed=1, **SMALL)
    larger = make_demo_dataset(tmp_path / "b", seed=1, **{**SMALL, "num_train": 8})
    assert filecmp.cmp(os.path.join(small.train_images, "000003.jpg"), os.path.join(larger.train_images, "000003.jpg"),
                       shallow=False)


def test_csv_and_coco_layouts_agree_and_boxes_sit_on_the_shapes(tmp_path):
    dataset = make_demo_dataset(tmp_path, seed=0, image_format=".png", **SMALL)
    csv_gen = CSVGenerator(dataset.train_csv, dataset.classes_csv, group_method="none", shuffle_groups=False)
    coco_gen = CocoGenerator(dataset.root, "train", group_method="none", shuffle_groups=False)
    assert csv_gen.size() == coco_gen.size() == 6
    assert [csv_gen.label_to_name(i) for i in range(4)] == list(CLASSES)
    assert [coco_gen.label_to_name(i) for i in range(4)] == list(CLASSES)
    sizes, checked = [], 0
    for index in range(csv_gen.size()):
        a, b = csv_gen.load_annotations(index), coco_gen.load_annotations(index)
        np.testing.assert_array_equal(a["labels"], b["labels"])
        np.testing.assert_array_equal(a["bboxes"], b["bboxes"])
        image = csv_gen.load_image(index).astype(np.float64)
        assert image.shape == (128, 128, 3)
        boxes = a["bboxes"].astype(int)
        for k, (x1, y1, x2, y2) in enumerate(boxes):
            assert 0 <= x1 < x2 <= 128 and 0 <= y1 < y2 <= 128
            sizes.append(np.sqrt((x2 - x1) * (y2 - y1)))
            others = np.delete(boxes, k, axis=0)
            if np.any((others[:, 0] < x2 + 1) & (others[:, 2] > x1 - 1) & (others[:, 1] < y2 + 1) & (others[:, 3] > y1 - 1)):
                continue  # touched by another object: its edges may be hidden
            # The centre of the box of all four shapes lies on the shape; each edge row/column of a
            # tight box holds some of the shape's pixels, and the ring just outside holds none.
            colour = np.median(image[(y1 + y2) // 2 - 1:(y1 + y2) // 2 + 2, (x1 + x2) // 2 - 1:(x1 + x2) // 2 + 2].reshape(-1, 3), axis=0)
            def on_shape(pixels, colour=colour):
                return np.abs(pixels.reshape(-1, 3) - colour).max(axis=1) < 30
            checked += 1
            for edge in (image[y1, x1:x2], image[y2 - 1, x1:x2], image[y1:y2, x1], image[y1:y2, x2 - 1]):
                assert on_shape(edge).any()
            ring = [image[y1 - 1, x1:x2] if y1 > 0 else None, image[y2, x1:x2] if y2 < 128 else None,
                    image[y1:y2, x1 - 1] if x1 > 0 else None, image[y1:y2, x2] if x2 < 128 else None]
            for outside in ring:
                if outside is not None:
                    assert on_shape(outside).mean() < 0.2
    assert checked >= 5
    assert min(sizes) >= 20 * 0.7 and max(sizes) <= 48 * 1.1


def test_labels_cover_every_class(tmp_path):
    dataset = make_demo_dataset(tmp_path, seed=0, num_train=20, num_val=0, image_size=96, min_object_size=16,
                                max_object_size=40)
    generator = CSVGenerator(dataset.train_csv, dataset.classes_csv)
    labels = np.concatenate([generator.load_annotations(i)["labels"] for i in range(generator.size())])
    assert set(labels.tolist()) == {0, 1, 2, 3}


def test_bad_arguments():
    with pytest.raises(ValueError, match="min_object_size"):
        make_demo_dataset("/tmp/unused", min_object_size=50, max_object_size=20)
    with pytest.raises(ValueError, match="does not fit"):
        make_demo_dataset("/tmp/unused", image_size=32, min_object_size=40, max_object_size=50)
