"""Image to network input: the one place where images are resized and preprocessed for a backbone.

Training, evaluation, prediction, debug drawing and export calibration all prepare
images through :class:`InputTransform`, so a model always sees its inputs as it was
trained to see them.
"""

from typing import Callable, Optional, Tuple, Union

import cv2
import numpy as np

from ..config.defaults import IMAGE_MAX_SIDE, IMAGE_MIN_SIDE

CAFFE_MEANS_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)
PREPROCESSING_MODES = ("caffe", "tf", "none")


def preprocess_image(x, mode="caffe"):
    """Prepare an image (or batch) for a backbone.

    Args:
        x: (..., 3) BGR image(s).
        mode: 'caffe' subtracts the ImageNet BGR means; 'tf' scales to [-1, 1]; 'none'
            only converts to float32 (for models that normalise inside, like EfficientNet).

    Returns:
        float32 array of the same shape.
    """
    x = np.asarray(x).astype(np.float32)
    if mode == "tf":
        return x / 127.5 - 1.0
    if mode == "caffe":
        return x - CAFFE_MEANS_BGR
    if mode == "none":
        return x
    raise ValueError(f"unknown preprocessing mode '{mode}'; expected 'caffe', 'tf' or 'none'")


def compute_resize_scale(image_shape, min_side=IMAGE_MIN_SIDE, max_side=IMAGE_MAX_SIDE):
    """Scale that brings the smaller side to ``min_side`` without the larger passing ``max_side``."""
    rows, cols = image_shape[:2]
    smallest_side = min(rows, cols)
    scale = min_side / smallest_side
    largest_side = max(rows, cols)
    if largest_side * scale > max_side:
        scale = max_side / largest_side
    return scale


def resize_image(img, min_side=IMAGE_MIN_SIDE, max_side=IMAGE_MAX_SIDE):
    """Resize an image as keras-retinanet did.

    Returns:
        (resized image, scale).
    """
    scale = compute_resize_scale(img.shape, min_side=min_side, max_side=max_side)
    img = cv2.resize(img, None, fx=scale, fy=scale)
    return img, scale


class InputTransform:
    """Resizes an image and applies a backbone's preprocessing: (H, W, 3) uint8 BGR -> network input.

    Args:
        preprocess: a preprocessing mode ('caffe', 'tf', 'none') or a function image -> float image
            (e.g. ``Backbone.preprocess_image``).
        image_min_side: the smaller side is resized to this ...
        image_max_side: ... unless the larger side would pass this.
        resize: False keeps images at their size (scale 1).
    """

    def __init__(
        self,
        preprocess: Union[str, Callable] = "caffe",
        image_min_side: int = IMAGE_MIN_SIDE,
        image_max_side: int = IMAGE_MAX_SIDE,
        resize: bool = True,
    ):
        if isinstance(preprocess, str) and preprocess not in PREPROCESSING_MODES:
            raise ValueError(f"unknown preprocessing mode '{preprocess}'; expected one of {', '.join(PREPROCESSING_MODES)}")
        self._preprocess = preprocess
        self.image_min_side = image_min_side
        self.image_max_side = image_max_side
        self.resize_enabled = resize

    @classmethod
    def for_backbone(cls, backbone, data_config):
        """The transform of a :class:`keras_retinanet.models.Backbone` with a ``DataConfig``'s image sides."""
        return cls(
            backbone.preprocess_image,
            image_min_side=data_config.image_min_side,
            image_max_side=data_config.image_max_side,
            resize=not data_config.no_resize,
        )

    def resize(self, image: np.ndarray) -> Tuple[np.ndarray, float]:
        """(H, W, C) image -> (resized image, scale); scale 1 when resizing is off."""
        if not self.resize_enabled:
            return image, 1.0
        return resize_image(image, min_side=self.image_min_side, max_side=self.image_max_side)

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """(..., 3) BGR image(s) -> float32 network values."""
        if callable(self._preprocess):
            return np.asarray(self._preprocess(image), dtype=np.float32)
        return preprocess_image(image, mode=self._preprocess)

    def __call__(self, image: np.ndarray, preprocess_first: bool = False) -> Tuple[np.ndarray, float]:
        """Network input of one image and the scale from image to input pixels.

        Args:
            image: (H, W, 3) uint8 BGR image.
            preprocess_first: preprocess, then resize the float image: the order of
                keras-retinanet's evaluation and prediction, kept there so that evaluation
                numbers match keras-retinanet's (resizing the uint8 image first rounds the
                interpolated pixels to integers, which moves the network's input slightly).

        Returns:
            (input (H', W', 3) float32, scale): boxes in input pixels are ``boxes * scale``.
        """
        if preprocess_first:
            network_input, scale = self.resize(self.preprocess(image))
            return np.asarray(network_input, dtype=np.float32), scale
        resized, scale = self.resize(image)
        return self.preprocess(resized), scale


class StepsTransform(InputTransform):
    """An :class:`InputTransform` whose two steps are given functions.

    For datasets and callers that hold a ``preprocess_image`` and a ``resize_image`` of their own instead of an
    InputTransform (keras-retinanet's generators); the order of the steps still comes from
    :meth:`InputTransform.__call__`.

    Args:
        preprocess: image -> float network values.
        resize: image -> (resized image, scale), or None to keep the size (scale 1).
    """

    def __init__(self, preprocess: Callable, resize: Optional[Callable] = None):
        super().__init__(preprocess, resize=resize is not None)
        self._resize_step = resize

    def resize(self, image: np.ndarray) -> Tuple[np.ndarray, float]:
        if self._resize_step is None:
            return image, 1.0
        return self._resize_step(image)


def as_input_transform(
    preprocess: Union[InputTransform, Callable], resize: Optional[Callable] = None
) -> InputTransform:
    """An InputTransform as given, or one made of a preprocess and an optional resize function.

    Args:
        preprocess: an InputTransform, or a function image -> float network values.
        resize: with a function ``preprocess``: image -> (resized image, scale), or None to keep the size.
    """
    if isinstance(preprocess, InputTransform):
        if resize is not None:
            raise TypeError("an InputTransform resizes by itself; pass no separate resize function with it")
        return preprocess
    return StepsTransform(preprocess, resize)
