"""keras-retinanet's ``utils.image``: reading, preprocessing, resizing and augmenting images.

The code lives in :mod:`keras_retinanet.data` (``image_io``, ``input_transform``, ``augmentation``,
``visual_effects``).
"""

from ..data.augmentation import TransformParameters, adjust_transform_for_image, apply_transform
from ..data.image_io import read_image_bgr
from ..data.input_transform import compute_resize_scale, preprocess_image, resize_image
from ..data.visual_effects import (
    VisualEffect,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    random_visual_effect_generator,
)

__all__ = [
    "TransformParameters",
    "VisualEffect",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_hue",
    "adjust_saturation",
    "adjust_transform_for_image",
    "apply_transform",
    "compute_resize_scale",
    "preprocess_image",
    "random_visual_effect_generator",
    "read_image_bgr",
    "resize_image",
]
