"""Colour augmentation of (H, W, 3) uint8 BGR images: keras-retinanet's visual effects.

Colour changes move no pixel, so boxes are unchanged.
"""

import dataclasses
from typing import Tuple

import cv2
import numpy as np

_LEVELS = np.arange(256, dtype=np.float64)


def _clip_to_uint8(values):
    """Clip to [0, 255] and truncate to uint8, as keras-retinanet's ``_clip`` did."""
    return np.clip(values, 0, 255).astype(np.uint8)


def adjust_contrast(image, factor):
    """Scale each channel about its mean: ``clip((x - mean) * factor + mean)``."""
    mean = image.reshape(-1, image.shape[-1]).mean(axis=0)
    return _clip_to_uint8((image - mean) * factor + mean)


def adjust_brightness(image, delta):
    """Add ``delta * 255`` to every pixel (``delta`` in [-1, 1])."""
    return _clip_to_uint8(image + delta * 255)


def adjust_hue(image, delta):
    """Rotate OpenCV's 8-bit hue (0..179) of an HSV image by ``delta * 180``, in place."""
    image[..., 0] = np.mod(image[..., 0] + delta * 180, 180)
    return image


def adjust_saturation(image, factor):
    """Scale the saturation of an HSV image, in place."""
    image[..., 1] = np.clip(image[..., 1] * factor, 0, 255)
    return image


class VisualEffect:
    """A colour change with fixed parameters: contrast, brightness, then hue and saturation.

    The result equals applying ``adjust_contrast``, ``adjust_brightness``,
    ``adjust_hue`` and ``adjust_saturation`` in turn (keras-retinanet's order and
    rounding), but each step is a 256-entry lookup table, which is several times faster
    than float arithmetic on the whole image.

    Args:
        contrast_factor: contrast multiplier (1 leaves the image unchanged), or None.
        brightness_delta: brightness offset as a fraction of 255, or None.
        hue_delta: hue rotation as a fraction of a full turn, or None.
        saturation_factor: saturation multiplier, or None.
    """

    def __init__(self, contrast_factor, brightness_delta, hue_delta, saturation_factor):
        self.contrast_factor = contrast_factor
        self.brightness_delta = brightness_delta
        self.hue_delta = hue_delta
        self.saturation_factor = saturation_factor

    def __call__(self, image):
        """Apply the effect to a (H, W, 3) uint8 BGR image; returns a new image."""
        image = np.ascontiguousarray(image, dtype=np.uint8)
        if self.contrast_factor or self.brightness_delta:
            image = cv2.LUT(image, self._contrast_brightness_table(image))
        if self.hue_delta or self.saturation_factor:
            hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
            hsv = cv2.LUT(hsv, self._hue_saturation_table())
            image = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
        return image

    def _contrast_brightness_table(self, image):
        """(1, 256, 3) table: per channel, contrast about the channel mean, then brightness."""
        if self.contrast_factor:
            means = image.reshape(-1, image.shape[-1]).mean(axis=0)
            table = _clip_to_uint8((_LEVELS[:, None] - means) * self.contrast_factor + means)
        else:
            table = np.repeat(_LEVELS[:, None], image.shape[-1], axis=1).astype(np.uint8)
        if self.brightness_delta:
            table = _clip_to_uint8(table + self.brightness_delta * 255)
        return table[None, :, :]

    def _hue_saturation_table(self):
        """(1, 256, 3) table acting on H and S of an HSV image, V unchanged."""
        hue = _LEVELS.copy()
        if self.hue_delta:
            hue = np.mod(hue + self.hue_delta * 180, 180)
        saturation = _LEVELS.copy()
        if self.saturation_factor:
            saturation = np.clip(saturation * self.saturation_factor, 0, 255)
        table = np.stack([hue, saturation, _LEVELS], axis=1).astype(np.uint8)
        return table[None, :, :]


def _uniform(value_range, prng):
    return prng.uniform(value_range[0], value_range[1])


def _check_range(value_range, min_value=None, max_value=None, name="range"):
    """A (low, high) pair with low <= high inside [min_value, max_value]."""
    if len(value_range) != 2:
        raise ValueError(f"{name} must be a (low, high) pair, got {value_range!r}")
    low, high = value_range
    if low > high:
        raise ValueError(f"{name}: low ({low}) is larger than high ({high})")
    if min_value is not None and low < min_value:
        raise ValueError(f"{name}: low ({low}) is below {min_value}")
    if max_value is not None and high > max_value:
        raise ValueError(f"{name}: high ({high}) is above {max_value}")


@dataclasses.dataclass(frozen=True)
class VisualEffectRanges:
    """The ranges a random :class:`VisualEffect` is drawn from, uniformly.

    Attributes:
        contrast_range: contrast factor range, >= 0.
        brightness_range: brightness delta range, in [-1, 1].
        hue_range: hue delta range, in [-1, 1].
        saturation_range: saturation factor range, >= 0.
    """

    contrast_range: Tuple[float, float] = (0.9, 1.1)
    brightness_range: Tuple[float, float] = (-0.1, 0.1)
    hue_range: Tuple[float, float] = (-0.05, 0.05)
    saturation_range: Tuple[float, float] = (0.95, 1.05)

    def __post_init__(self):
        _check_range(self.contrast_range, 0, name="contrast_range")
        _check_range(self.brightness_range, -1, 1, name="brightness_range")
        _check_range(self.hue_range, -1, 1, name="hue_range")
        _check_range(self.saturation_range, 0, name="saturation_range")

    def draw(self, rng) -> VisualEffect:
        """One effect; four uniform draws from ``rng`` in keras-retinanet's order (contrast, brightness, hue, saturation)."""
        return VisualEffect(
            contrast_factor=_uniform(self.contrast_range, rng),
            brightness_delta=_uniform(self.brightness_range, rng),
            hue_delta=_uniform(self.hue_range, rng),
            saturation_factor=_uniform(self.saturation_range, rng),
        )


def random_visual_effect_generator(
    contrast_range=(0.9, 1.1),
    brightness_range=(-0.1, 0.1),
    hue_range=(-0.05, 0.05),
    saturation_range=(0.95, 1.05),
    prng=None,
):
    """Endless generator of :class:`VisualEffect` with parameters drawn uniformly (keras-retinanet's API).

    Args:
        contrast_range: contrast factor range, >= 0.
        brightness_range: brightness delta range, in [-1, 1].
        hue_range: hue delta range, in [-1, 1].
        saturation_range: saturation factor range, >= 0.
        prng: a ``np.random.RandomState`` for repeatable draws (default: a fresh one).
    """
    ranges = VisualEffectRanges(contrast_range, brightness_range, hue_range, saturation_range)
    if prng is None:
        prng = np.random.RandomState()

    def _generate():
        while True:
            yield ranges.draw(prng)

    return _generate()
