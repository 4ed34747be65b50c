"""keras-retinanet's ``utils.image``: reading, preprocessing, resizing and augmenting images.

The code lives in :mod:`keras_retinanet.data` (``image_io``, ``input_transform``, ``augmentation``).
"""

from ..data.augmentation import (  # noqa: F401
    TransformParameters,
    VisualEffect,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    adjust_transform_for_image,
    apply_transform,
    random_visual_effect_generator,
)
from ..data.image_io import image_size, read_image_bgr  # noqa: F401
from ..data.input_transform import CAFFE_MEANS_BGR, compute_resize_scale, preprocess_image, resize_image  # noqa: F401
