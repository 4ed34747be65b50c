"""keras-retinanet's utils.image, from keras_retinanet.data: reading any image as uint8 BGR, preprocessing, warping and visual effects."""

import cv2
import numpy as np
import pytest

from keras_retinanet.errors import DatasetError
from keras_retinanet.data.augmentation import TransformParameters, apply_transform
from keras_retinanet.data.image_io import read_image_bgr
from keras_retinanet.data.input_transform import compute_resize_scale, preprocess_image, resize_image
from keras_retinanet.data.visual_effects import VisualEffect, random_visual_effect_generator


def _colour_image():
    image = np.zeros((20, 30, 3), np.uint8)
    image[:, :, 0] = 10  # B
    image[:, :, 1] = 100  # G
    image[:, :, 2] = 200  # R
    return image


def test_reads_colour_png(tmp_path):
    path = tmp_path / "c.png"
    cv2.imwrite(str(path), _colour_image())
    image = read_image_bgr(path)
    assert image.dtype == np.uint8 and image.shape == (20, 30, 3)
    np.testing.assert_array_equal(image[0, 0], [10, 100, 200])


def test_grayscale_becomes_three_equal_channels(tmp_path):
    path = tmp_path / "g.png"
    gray = np.arange(20 * 30, dtype=np.uint8).reshape(20, 30)
    cv2.imwrite(str(path), gray)
    image = read_image_bgr(path)
    assert image.shape == (20, 30, 3)
    for channel in range(3):
        np.testing.assert_array_equal(image[:, :, channel], gray)


def test_bgra_drops_alpha(tmp_path):
    path = tmp_path / "a.png"
    bgra = np.dstack([_colour_image(), np.full((20, 30), 7, np.uint8)])
    cv2.imwrite(str(path), bgra)
    image = read_image_bgr(path)
    assert image.shape == (20, 30, 3)
    np.testing.assert_array_equal(image[5, 5], [10, 100, 200])


def test_16_bit_is_scaled_to_8_bit(tmp_path):
    path = tmp_path / "d.png"
    values = np.array([0, 1, 128, 255], np.uint16)
    deep = np.tile((values * 257)[None, :, None], (2, 1, 3)).astype(np.uint16)  # v * 257 is v in 8 bits
    cv2.imwrite(str(path), deep)
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    image = read_image_bgr(path)
    assert image.dtype == np.uint8 and image.shape == (2, 4, 3)
    np.testing.assert_array_equal(image[0, :, 0], values)


def test_16_bit_grayscale(tmp_path):
    path = tmp_path / "d.png"
    cv2.imwrite(str(path), np.full((3, 3), 200 * 257, np.uint16))
    image = read_image_bgr(path)
    assert image.shape == (3, 3, 3) and np.all(image == 200)


def test_missing_image_names_the_file(tmp_path):
    with pytest.raises(DatasetError, match=r"nothere\.jpg: image file not found"):
        read_image_bgr(tmp_path / "nothere.jpg")


def test_empty_image_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(DatasetError, match=r"empty\.jpg: image file is empty"):
        read_image_bgr(path)


def test_not_an_image(tmp_path):
    path = tmp_path / "text.png"
    path.write_text("this is not an image")
    with pytest.raises(DatasetError, match=r"text\.png: cannot decode image"):
        read_image_bgr(path)


def test_truncated_jpeg(tmp_path):
    path = tmp_path / "cut.jpg"
    rng = np.random.default_rng(0)
    ok, data = cv2.imencode(".jpg", rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    path.write_bytes(data.tobytes()[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"cut\.jpg: .*truncated"):
        read_image_bgr(path)


def test_truncated_png(tmp_path):
    path = tmp_path / "cut.png"
    ok, data = cv2.imencode(".png", np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    path.write_bytes(data.tobytes()[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"cut\.png: "):
        read_image_bgr(path)


def test_preprocess_modes():
    x = np.array([[[0, 127.5, 255]]], np.float32)
    np.testing.assert_allclose(preprocess_image(x, "tf"), [[[-1, 0, 1]]])
    np.testing.assert_allclose(preprocess_image(x, "caffe"), [[[0 - 103.939, 127.5 - 116.779, 255 - 123.68]]], rtol=1e-6)
    with pytest.raises(ValueError, match="unknown preprocessing mode"):
        preprocess_image(x, "torch")


def test_resize_scale_and_cap():
    assert compute_resize_scale((400, 600), min_side=800, max_side=1333) == 2.0
    # 400x1000 at scale 2 would be 2000 wide: capped at 1333 / 1000.
    assert compute_resize_scale((400, 1000), min_side=800, max_side=1333) == pytest.approx(1.333)
    image, scale = resize_image(np.zeros((50, 100, 3), np.uint8), min_side=100, max_side=300)
    assert scale == 2.0 and image.shape == (100, 200, 3)


def test_constant_fill_uses_cval_in_every_channel():
    image = np.full((10, 10, 3), 50, np.uint8)
    shift_right = np.array([[1, 0, 5], [0, 1, 0], [0, 0, 1]], np.float64)
    out = apply_transform(shift_right, image, TransformParameters(fill_mode="constant", cval=7))
    np.testing.assert_array_equal(out[:, :5], 7)
    np.testing.assert_array_equal(out[:, 5:], 50)
    nearest = apply_transform(shift_right, image, TransformParameters(fill_mode="nearest"))
    np.testing.assert_array_equal(nearest, 50)


def test_transform_parameters_reject_unknown_modes():
    with pytest.raises(ValueError, match="fill_mode"):
        TransformParameters(fill_mode="mirror")
    with pytest.raises(ValueError, match="interpolation"):
        TransformParameters(interpolation="bilinear")


def _reference_visual_effect(image, contrast, brightness, hue, saturation):
    """keras-retinanet's arithmetic, written out on the whole image."""
    out = image.astype(np.float64)
    mean = out.reshape(-1, 3).mean(axis=0)
    out = np.clip((out - mean) * contrast + mean, 0, 255).astype(np.uint8)
    out = np.clip(out.astype(np.float64) + brightness * 255, 0, 255).astype(np.uint8)
    hsv = cv2.cvtColor(out, cv2.COLOR_BGR2HSV)
    hsv[..., 0] = np.mod(hsv[..., 0] + hue * 180, 180)
    hsv[..., 1] = np.clip(hsv[..., 1] * saturation, 0, 255)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


@pytest.mark.parametrize("params", [(1.1, 0.05, 0.03, 0.96), (0.8, -0.1, -0.05, 1.05), (1.3, 0.2, 0.5, 1.5)])
def test_visual_effect_matches_the_reference_arithmetic(params):
    image = np.random.default_rng(3).integers(0, 256, (17, 23, 3), dtype=np.uint8)
    effect = VisualEffect(*params)
    np.testing.assert_array_equal(effect(image.copy()), _reference_visual_effect(image, *params))


def test_visual_effect_brightness_by_hand():
    image = np.array([[[10, 100, 250]]], np.uint8)
    out = VisualEffect(None, 0.1, None, None)(image)
    np.testing.assert_array_equal(out, [[[35, 125, 255]]])  # +25.5 truncated, clipped at 255


def test_visual_effect_generator_draws_in_range_and_repeats_with_seed():
    effects = random_visual_effect_generator(prng=np.random.RandomState(5))
    drawn = [next(effects) for _ in range(50)]
    assert all(0.9 <= e.contrast_factor <= 1.1 and -0.1 <= e.brightness_delta <= 0.1 for e in drawn)
    assert all(-0.05 <= e.hue_delta <= 0.05 and 0.95 <= e.saturation_factor <= 1.05 for e in drawn)
    again = random_visual_effect_generator(prng=np.random.RandomState(5))
    assert next(again).contrast_factor == drawn[0].contrast_factor
    with pytest.raises(ValueError, match="brightness_range"):
        random_visual_effect_generator(brightness_range=(-2, 0))
