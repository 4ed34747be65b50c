"""keras_retinanet.data: the parts the Generator composes, each checked on values worked out by hand."""

import numpy as np
import pytest

from keras_retinanet.data.augmentation import Augmentation, TransformRanges, training_augmentation
from keras_retinanet.data.boxes import clip_annotations_to_image
from keras_retinanet.data.input_transform import CAFFE_MEANS_BGR, InputTransform
from keras_retinanet.data.batch_targets import AnchorTargets

ALWAYS_FLIP_X = Augmentation(transform=TransformRanges(flip_x_chance=1.0))


def _columns_image(height=6, width=10):
    """uint8 image whose pixel (row, column) holds 10 * column in every channel."""
    return np.repeat((np.arange(width, dtype=np.uint8) * 10)[None, :, None], 3, axis=2).repeat(height, axis=0)


def test_a_horizontal_flip_moves_pixels_and_boxes_together():
    image = _columns_image()
    annotations = {"bboxes": np.array([[2.0, 3.0, 5.0, 6.0]]), "labels": np.array([1])}
    flipped, result = ALWAYS_FLIP_X(image, annotations, np.random.RandomState(0))
    # Pixel i covers [i, i + 1); a flip of a 10-wide image sends it to 9 - i, and x to 10 - x.
    np.testing.assert_array_equal(flipped[0, :, 0], image[0, ::-1, 0])
    np.testing.assert_allclose(result["bboxes"], [[5.0, 3.0, 8.0, 6.0]], atol=1e-9)
    np.testing.assert_array_equal(result["labels"], [1])
    # pure: the inputs are untouched
    np.testing.assert_array_equal(annotations["bboxes"], [[2.0, 3.0, 5.0, 6.0]])
    np.testing.assert_array_equal(image, _columns_image())


def test_bare_boxes_come_back_as_boxes():
    _, boxes = ALWAYS_FLIP_X(_columns_image(), np.array([[0.0, 0.0, 1.0, 1.0]]), np.random.RandomState(0))
    np.testing.assert_allclose(boxes, [[9.0, 0.0, 10.0, 1.0]], atol=1e-9)


def test_every_random_number_comes_from_the_rng_given():
    augmentation = training_augmentation(random_transform=True)
    image = (np.random.RandomState(1).rand(32, 48, 3) * 255).astype(np.uint8)
    boxes = np.array([[4.0, 4.0, 30.0, 20.0]])
    first = augmentation(image, boxes, np.random.RandomState(7))
    second = augmentation(image, boxes, np.random.RandomState(7))
    other = augmentation(image, boxes, np.random.RandomState(8))
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert not np.array_equal(first[0], other[0])


def test_clipping_keeps_what_is_inside_and_drops_what_is_not():
    annotations = {
        "bboxes": np.array([[-5.0, 2.0, 4.0, 8.0], [1.0, 1.0, 3.0, 3.0], [12.0, 0.0, 15.0, 4.0]]),
        "labels": np.array([0, 1, 2]),
    }
    result, clipped, dropped = clip_annotations_to_image(annotations, (6, 10, 3))
    np.testing.assert_array_equal(result["bboxes"], [[0.0, 2.0, 4.0, 6.0], [1.0, 1.0, 3.0, 3.0]])
    np.testing.assert_array_equal(result["labels"], [0, 1])
    assert (clipped, dropped) == (1, 1)


def test_input_transform_resizes_then_preprocesses_or_the_other_way():
    image = np.full((100, 200, 3), 100, dtype=np.uint8)
    transform = InputTransform("caffe", image_min_side=50, image_max_side=1000)
    network_input, scale = transform(image)
    assert scale == 0.5 and network_input.shape == (50, 100, 3) and network_input.dtype == np.float32
    np.testing.assert_allclose(network_input[0, 0], 100 - CAFFE_MEANS_BGR, rtol=1e-6)
    first, scale_first = transform(image, preprocess_first=True)
    assert scale_first == 0.5
    np.testing.assert_allclose(first, network_input, rtol=1e-6)
    # 'tf' mode maps 0 and 255 to -1 and 1; resizing off keeps the size and scale 1
    extremes = np.array([[[0, 0, 0], [255, 255, 255]]], dtype=np.uint8)
    output, scale = InputTransform("tf", resize=False)(extremes)
    assert scale == 1.0
    np.testing.assert_allclose(output, [[[-1, -1, -1], [1, 1, 1]]])
    with pytest.raises(ValueError, match="unknown preprocessing mode 'torch'"):
        InputTransform("torch")


def test_input_transform_rounds_like_keras_retinanet_in_each_order():
    # Resizing uint8 first rounds the interpolated value to an integer; preprocessing first does not.
    image = np.array([[[0, 0, 0], [1, 1, 1]]], dtype=np.uint8).repeat(2, axis=0)  # 2x2, columns 0 and 1
    transform = InputTransform("none", image_min_side=4, image_max_side=4)
    resized_first, _ = transform(image)
    preprocessed_first, _ = transform(image, preprocess_first=True)
    assert set(np.unique(resized_first)) <= {0.0, 1.0}
    assert np.any((preprocessed_first > 0) & (preprocessed_first < 1))  # 0.25 and 0.75 survive in float


def test_anchor_targets_cache_anchors_per_shape():
    targets = AnchorTargets()
    first = targets.anchors((64, 96, 3))
    assert targets.anchors((64, 96, 3)) is first
    # 9 anchors per position on P3-P7 of a 64x96 input: (8x12 + 4x6 + 2x3 + 1x2 + 1x1) positions
    assert first.shape == (9 * (96 + 24 + 6 + 2 + 1), 4)
    image = np.zeros((64, 96, 3), np.float32)
    regression, labels = targets([image], [{"bboxes": np.array([[16.0, 16.0, 48.0, 48.0]]), "labels": np.array([0])}], 2)
    assert regression.shape == (1, first.shape[0], 5) and labels.shape == (1, first.shape[0], 3)
    assert labels[0, :, 0].max() == 1 and labels[0, :, 1].max() == 0  # the box is class 0, positives exist
