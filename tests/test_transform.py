"""keras-retinanet's utils.transform, from keras_retinanet.data.affine: matrices worked out by hand, and boxes that follow the transformed objects."""

import cv2
import numpy as np
import pytest

from keras_retinanet.data.affine import (
    change_transform_origin,
    colvec,
    random_flip,
    random_transform,
    random_transform_generator,
    rotation,
    scaling,
    shear,
    transform_aabb,
    translation,
)
from keras_retinanet.data.augmentation import TransformParameters, adjust_transform_for_image, apply_transform


def test_colvec():
    np.testing.assert_array_equal(colvec(1, 2, 3), [[1], [2], [3]])


def test_rotation_quarter_turn_maps_x_axis_to_y_axis():
    np.testing.assert_allclose(rotation(np.pi / 2).dot([1, 0, 1]), [0, 1, 1], atol=1e-12)


def test_translation_scaling_shear_by_hand():
    np.testing.assert_allclose(translation([3, -2]).dot([1, 1, 1]), [4, -1, 1])
    np.testing.assert_allclose(scaling([2, 0.5]).dot([3, 4, 1]), [6, 2, 1])
    angle = 0.3
    # shear moves x by -sin(angle) * y and scales y by cos(angle)
    np.testing.assert_allclose(shear(angle).dot([0, 10, 1]), [-10 * np.sin(angle), 10 * np.cos(angle), 1])


def test_change_transform_origin_keeps_the_centre_fixed():
    matrix = change_transform_origin(rotation(1.0), (5, 7))
    np.testing.assert_allclose(matrix.dot([5, 7, 1]), [5, 7, 1], atol=1e-12)


def test_transform_aabb_of_a_rotated_square():
    # A unit square rotated 45 degrees about the origin spans x in [-sqrt(2)/2, sqrt(2)/2], y in [0, sqrt(2)].
    box = transform_aabb(rotation(np.pi / 4), [0, 0, 1, 1])
    half = np.sqrt(2) / 2
    np.testing.assert_allclose(box, [-half, 0, half, 2 * half], atol=1e-12)


def test_transform_aabb_under_flip():
    flip = change_transform_origin(scaling([-1, 1]), (50, 0))  # mirror about x = 50
    np.testing.assert_allclose(transform_aabb(flip, [10, 20, 30, 40]), [70, 20, 90, 40])


def test_random_flip_chances():
    prng = np.random.RandomState(0)
    assert np.array_equal(random_flip(0, 0, prng), np.eye(3))
    assert np.array_equal(random_flip(1, 1, prng), np.diag([-1, -1, 1]))


def test_random_transform_without_ranges_is_identity():
    np.testing.assert_allclose(random_transform(prng=np.random.RandomState(0)), np.eye(3), atol=1e-12)


def test_generator_is_repeatable_with_a_seeded_prng_and_stays_in_range():
    kwargs = dict(min_translation=(-0.1, -0.1), max_translation=(0.1, 0.1), min_scaling=(0.9, 0.9), max_scaling=(1.1, 1.1))
    first = random_transform_generator(prng=np.random.RandomState(42), **kwargs)
    second = random_transform_generator(prng=np.random.RandomState(42), **kwargs)
    for _ in range(20):
        a, b = next(first), next(second)
        np.testing.assert_array_equal(a, b)
        assert np.all(np.abs(a[0:2, 2]) <= 0.1 + 1e-12)
        assert 0.9 - 1e-12 <= a[0, 0] <= 1.1 + 1e-12 and 0.9 - 1e-12 <= a[1, 1] <= 1.1 + 1e-12


def _rendered_box(image):
    ys, xs = np.nonzero(image[:, :, 0] > 127)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(min_rotation=0.3, max_rotation=0.3),
        dict(min_shear=-0.25, max_shear=-0.25),
        dict(min_translation=(0.1, -0.15), max_translation=(0.1, -0.15)),
        dict(min_scaling=(1.3, 0.8), max_scaling=(1.3, 0.8)),
        dict(flip_x_chance=1, flip_y_chance=1),
        dict(min_rotation=-0.2, max_rotation=0.2, min_translation=(-0.1, -0.1), max_translation=(0.1, 0.1),
             min_shear=-0.1, max_shear=0.1, min_scaling=(0.9, 0.9), max_scaling=(1.1, 1.1), flip_x_chance=0.5),
    ],
)
def test_boxes_follow_the_transformed_rectangle(kwargs):
    image = np.zeros((120, 160, 3), np.uint8)
    box = np.array([50, 40, 90, 70], np.float64)  # pixels 50..89 x 40..69
    cv2.rectangle(image, (50, 40), (89, 69), (255, 255, 255), thickness=-1)
    params = TransformParameters(fill_mode="constant", interpolation="linear")
    transforms = random_transform_generator(prng=np.random.RandomState(7), **kwargs)
    for _ in range(3):
        matrix = adjust_transform_for_image(next(transforms), image, params.relative_translation)
        warped = apply_transform(matrix, image, params)
        expected = _rendered_box(warped)
        np.testing.assert_allclose(transform_aabb(matrix, box), expected, atol=1.0)


def test_relative_translation_is_a_fraction_of_the_image():
    image = np.zeros((100, 200, 3), np.uint8)
    matrix = adjust_transform_for_image(translation([0.1, 0.2]), image, relative_translation=True)
    np.testing.assert_allclose(matrix.dot([0, 0, 1]), [20, 20, 1])
    matrix = adjust_transform_for_image(translation([3, 4]), image, relative_translation=False)
    np.testing.assert_allclose(matrix.dot([0, 0, 1]), [3, 4, 1])
