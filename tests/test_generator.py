"""The Generator base: grouping, padding, resizing, filtering, augmentation and targets."""

import random
import warnings

import cv2
import numpy as np
import pytest

from keras_retinanet.preprocessing.generator import Generator
from keras_retinanet.data.affine import random_transform_generator
from keras_retinanet.data.augmentation import TransformParameters, adjust_transform_for_image
from keras_retinanet.data.visual_effects import VisualEffect


class ShapesDataset(Generator):
    """A dataset held in memory: white rectangles on black, one image per (height, width, boxes, labels)."""

    def __init__(self, entries, num_classes=3, **kwargs):
        self.entries = entries
        self._num_classes = num_classes
        kwargs.setdefault("no_resize", True)
        super().__init__(**kwargs)

    def size(self):
        return len(self.entries)

    def num_classes(self):
        return self._num_classes

    def has_label(self, label):
        return 0 <= label < self._num_classes

    def has_name(self, name):
        return name in ("a", "b", "c")

    def name_to_label(self, name):
        return "abc".index(name)

    def label_to_name(self, label):
        return "abc"[label]

    def image_path(self, image_index):
        return f"memory/{image_index}.png"

    def image_aspect_ratio(self, image_index):
        height, width = self.entries[image_index][:2]
        return width / height

    def load_image(self, image_index):
        height, width, boxes, _ = self.entries[image_index]
        image = np.zeros((height, width, 3), np.uint8)
        for x1, y1, x2, y2 in boxes:
            cv2.rectangle(image, (int(x1), int(y1)), (int(x2) - 1, int(y2) - 1), (255, 255, 255), thickness=-1)
        return image

    def load_annotations(self, image_index):
        _, _, boxes, labels = self.entries[image_index]
        return {"labels": np.array(labels, np.int64), "bboxes": np.array(boxes, np.float64).reshape((-1, 4))}


def identity_preprocess(image):
    return image.astype(np.float32)


def test_ratio_grouping_and_full_batches():
    entries = [(40, 80, [], []), (80, 40, [], []), (60, 60, [], []), (40, 100, [], []), (50, 50, [], [])]
    generator = ShapesDataset(entries, batch_size=2, group_method="ratio", shuffle_groups=False)
    # aspect ratios 2, 0.5, 1, 2.5, 1 -> order 1, 2, 4, 0, 3; the last batch wraps around to the first image.
    assert generator.groups == [[1, 2], [4, 0], [3, 1]]
    assert len(generator) == 3
    none = ShapesDataset(entries, batch_size=2, group_method="none", shuffle_groups=False)
    assert none.groups == [[0, 1], [2, 3], [4, 0]]
    with pytest.raises(ValueError, match="group_method"):
        ShapesDataset(entries, group_method="size")


def test_on_epoch_end_reshuffles_groups_but_keeps_them():
    entries = [(32, 32, [], [])] * 12
    random.seed(3)
    generator = ShapesDataset(entries, batch_size=2, group_method="none", shuffle_groups=True)
    before = [list(g) for g in generator.groups]
    generator.on_epoch_end()
    assert sorted(map(tuple, generator.groups)) == sorted(map(tuple, before))
    assert generator.groups != before


def test_pydataset_options_pass_through():
    generator = ShapesDataset([(32, 32, [], [])], workers=2, max_queue_size=3)
    assert generator.workers == 2 and generator.max_queue_size == 3


def test_batch_is_zero_padded_to_the_largest_image():
    entries = [(64, 48, [[8, 8, 40, 40]], [1]), (40, 72, [[10, 5, 60, 35]], [2])]
    generator = ShapesDataset(entries, batch_size=2, group_method="none", shuffle_groups=False,
                              preprocess_image=identity_preprocess)
    inputs, (regression, labels) = generator[0]
    assert inputs.shape == (2, 64, 72, 3) and inputs.dtype == np.float32
    assert np.all(inputs[0, :, 48:] == 0) and np.all(inputs[1, 40:, :] == 0)
    assert inputs[0, 10, 10, 0] == 255 and inputs[1, 10, 20, 0] == 255
    # P3..P7 of a 64x72 input: (8x9 + 4x5 + 2x3 + 1x2 + 1x1) positions, 9 anchors each.
    num_anchors = (8 * 9 + 4 * 5 + 2 * 3 + 1 * 2 + 1 * 1) * 9
    assert regression.shape == (2, num_anchors, 5) and labels.shape == (2, num_anchors, 4)


def test_targets_of_a_box_equal_to_an_anchor():
    # P3 anchor (ratio 1, scale 1, size 32) of cell (row 3, col 3): centre (28, 28), box (12, 12, 44, 44).
    # Its index: position 3 * 8 + 3 = 27 of the 8x8 P3 grid, 9 anchors a position, ratio-major -> 27 * 9 + 3.
    generator = ShapesDataset([(64, 64, [[12, 12, 44, 44]], [2])], shuffle_groups=False)
    _, (regression, labels) = generator[0]
    index = 27 * 9 + 3
    np.testing.assert_array_equal(labels[0, index], [0, 0, 1, 1])
    np.testing.assert_allclose(regression[0, index], [0, 0, 0, 0, 1], atol=1e-6)
    assert labels[0, :, -1].max() == 1 and labels[0, :, :3].sum() == (labels[0, :, -1] == 1).sum()


def test_resize_scales_boxes():
    generator = ShapesDataset([(64, 128, [[20, 10, 60, 50]], [0])], no_resize=False, image_min_side=32,
                              image_max_side=1000, shuffle_groups=False, preprocess_image=identity_preprocess)
    image, scale = generator.resize_image(generator.load_image(0))
    assert scale == 0.5 and image.shape == (32, 64, 3)
    images, annotations = generator.preprocess_group([generator.load_image(0)], generator.load_annotations_group([0]))
    np.testing.assert_allclose(annotations[0]["bboxes"], [[10, 5, 30, 25]])
    assert images[0].shape == (32, 64, 3)


def test_out_of_image_boxes_are_clipped_or_dropped_with_one_warning():
    boxes = [[10, 10, 30, 30], [-5, 10, 20, 30], [50, 50, 80, 70], [70, 10, 90, 20], [10, 64, 20, 70]]
    generator = ShapesDataset([(64, 64, boxes, [0, 1, 2, 0, 1])], shuffle_groups=False)
    images, annotations = generator.load_image_group([0]), generator.load_annotations_group([0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, annotations = generator.filter_annotations(images, annotations, [0])
    assert len(caught) == 1
    assert "4 annotation(s) outside their image: 2 clipped to the image, 2 dropped" in str(caught[0].message)
    assert "memory/0.png" in str(caught[0].message)
    np.testing.assert_array_equal(annotations[0]["bboxes"], [[10, 10, 30, 30], [0, 10, 20, 30], [50, 50, 64, 64]])
    np.testing.assert_array_equal(annotations[0]["labels"], [0, 1, 2])
    # The next epoch does not repeat the warning for the same image.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        generator.filter_annotations(generator.load_image_group([0]), generator.load_annotations_group([0]), [0])
    assert caught == []


def test_load_annotations_must_return_a_dict():
    class Broken(ShapesDataset):
        def load_annotations(self, image_index):
            return np.zeros((0, 5))

    with pytest.raises(TypeError, match="must return a dict with 'labels' and 'bboxes'"):
        Broken([(32, 32, [], [])]).load_annotations_group([0])


def test_horizontal_flip_mirrors_image_and_box():
    generator = ShapesDataset([(40, 100, [[10, 5, 30, 25]], [1])], shuffle_groups=False,
                              transform_generator=random_transform_generator(flip_x_chance=1.0),
                              preprocess_image=identity_preprocess)
    image, annotations = generator.random_transform_group_entry(generator.load_image(0), generator.load_annotations(0))
    np.testing.assert_allclose(annotations["bboxes"], [[70, 5, 90, 25]], atol=1e-9)
    ys, xs = np.nonzero(image[:, :, 0] > 127)
    assert (xs.min(), xs.max() + 1) == (70, 90)


def test_random_transforms_keep_boxes_on_the_rendered_objects():
    boxes = [[30, 40, 70, 80], [100, 30, 140, 60]]
    transforms = random_transform_generator(
        prng=np.random.RandomState(11), min_rotation=-0.3, max_rotation=0.3, min_translation=(-0.1, -0.1),
        max_translation=(0.1, 0.1), min_shear=-0.2, max_shear=0.2, min_scaling=(0.8, 0.8), max_scaling=(1.2, 1.2),
        flip_x_chance=0.5, flip_y_chance=0.5)
    generator = ShapesDataset([(120, 180, boxes, [0, 1])], shuffle_groups=False, transform_generator=transforms,
                              transform_parameters=TransformParameters(fill_mode="constant"))
    for _ in range(5):
        # Each object alone, so its rendered pixels identify it.
        for box in boxes:
            single = ShapesDataset([(120, 180, [box], [0])], shuffle_groups=False)
            transform_matrix = next(generator.transform_generator)
            matrix = adjust_transform_for_image(transform_matrix, single.load_image(0), True)
            image, annotations = generator.random_transform_group_entry(
                single.load_image(0), single.load_annotations(0), transform=matrix)
            ys, xs = np.nonzero(image[:, :, 0] > 127)
            rendered = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            np.testing.assert_allclose(annotations["bboxes"][0], rendered, atol=1.0)


def test_boxes_pushed_out_of_the_image_are_dropped_and_others_clipped():
    shift = np.array([[1, 0, 50], [0, 1, 0], [0, 0, 1]], np.float64)  # 50 px to the right
    generator = ShapesDataset([(40, 100, [[10, 5, 30, 25], [60, 5, 90, 25]], [0, 1])], shuffle_groups=False)
    _, annotations = generator.random_transform_group_entry(
        generator.load_image(0), generator.load_annotations(0), transform=shift)
    np.testing.assert_allclose(annotations["bboxes"], [[60, 5, 80, 25]])
    np.testing.assert_array_equal(annotations["labels"], [0])


def test_visual_effects_change_pixels_not_boxes():
    effects = iter([VisualEffect(None, 0.2, None, None)])
    generator = ShapesDataset([(32, 32, [[4, 4, 20, 20]], [0])], shuffle_groups=False, visual_effect_generator=effects)
    images, annotations = generator.random_visual_effect_group(generator.load_image_group([0]),
                                                               generator.load_annotations_group([0]))
    assert images[0][0, 0, 0] == 51 and images[0][10, 10, 0] == 255  # 0 + 0.2 * 255 truncated; 255 clipped
    np.testing.assert_array_equal(annotations[0]["bboxes"], [[4, 4, 20, 20]])


def test_config_anchor_parameters_and_levels(tmp_path):
    from keras_retinanet.config.anchors_ini import read_config_file

    path = tmp_path / "c.ini"
    path.write_text("[anchor_parameters]\nsizes = 16 32\nstrides = 8 16\nratios = 1\nscales = 1 2\n"
                    "[pyramid_levels]\nlevels = 3 4\n")
    generator = ShapesDataset([(64, 64, [[12, 12, 44, 44]], [0])], shuffle_groups=False,
                              config=read_config_file(path))
    anchors = generator.generate_anchors((64, 64, 3))
    assert anchors.shape == ((8 * 8 + 4 * 4) * 2, 4)
    # First anchor: size 16, scale 1, centred on (4, 4).
    np.testing.assert_allclose(anchors[0], [-4, -4, 12, 12])
    _, (regression, labels) = generator[0]
    assert regression.shape == (1, 160, 5) and labels.shape == (1, 160, 4)
