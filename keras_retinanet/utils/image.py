"""Reading, preprocessing and resizing images."""

import cv2
import numpy as np

CAFFE_MEANS_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)


def read_image_bgr(path):
    """Read an image as a (H, W, 3) uint8 BGR array.

    Raises:
        ValueError: the file is missing or cannot be decoded; the message names it.
    """
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: cannot read image (missing, unreadable or not an image)")
    return image


def preprocess_image(x, mode="caffe"):
    """Prepare an image (or batch) for a backbone.

    Args:
        x: (..., 3) BGR image(s).
        mode: 'caffe' subtracts the ImageNet BGR means; 'tf' scales to [-1, 1].

    Returns:
        float32 array of the same shape.
    """
    x = np.asarray(x).astype(np.float32)
    if mode == "tf":
        return x / 127.5 - 1.0
    if mode == "caffe":
        return x - CAFFE_MEANS_BGR
    raise ValueError(f"unknown preprocessing mode '{mode}'; expected 'caffe' or 'tf'")


def compute_resize_scale(image_shape, min_side=800, max_side=1333):
    """Scale that brings the smaller side to ``min_side`` without the larger passing ``max_side``."""
    rows, cols = image_shape[:2]
    smallest_side = min(rows, cols)
    scale = min_side / smallest_side
    largest_side = max(rows, cols)
    if largest_side * scale > max_side:
        scale = max_side / largest_side
    return scale


def resize_image(img, min_side=800, max_side=1333):
    """Resize an image as keras-retinanet did.

    Returns:
        (resized image, scale).
    """
    scale = compute_resize_scale(img.shape, min_side=min_side, max_side=max_side)
    img = cv2.resize(img, None, fx=scale, fy=scale)
    return img, scale
