"""Reading image files as uint8 BGR arrays (as keras-retinanet did), and their sizes without decoding."""

import os

import cv2
import numpy as np

from ..errors import DatasetError

# EXIF orientation is ignored, as keras-retinanet (PIL) did: annotations refer to the stored pixels.
_IMREAD_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
_JPEG_START = b"\xff\xd8"
_JPEG_END = b"\xff\xd9"


def read_image_bgr(path):
    """Read an image file as a (H, W, 3) uint8 BGR array.

    Grayscale images are replicated to three channels, alpha channels are dropped and
    16-bit images are scaled to 8 bits (OpenCV's ``>> 8``).

    Args:
        path: image file (str or PathLike).

    Returns:
        (H, W, 3) uint8 BGR array.

    Raises:
        DatasetError: the file is missing, empty, truncated or not a readable image.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DatasetError(path, "image file not found")
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise DatasetError(path, f"cannot read image file ({error.strerror or error})") from None
    if data.size == 0:
        raise DatasetError(path, "image file is empty")
    image = cv2.imdecode(data, _IMREAD_FLAGS)
    if image is None:
        raise DatasetError(path, "cannot decode image (corrupt, truncated or not an image format OpenCV reads)")
    # libjpeg fills a truncated JPEG with grey and only warns; a JPEG must end with its EOI marker.
    if data[:2].tobytes() == _JPEG_START and _JPEG_END not in data[-64:].tobytes():
        raise DatasetError(path, "JPEG file is truncated (no end-of-image marker)")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return image


def image_size(path):
    """(width, height) of an image file, from its header when possible.

    Raises:
        DatasetError: the image is missing or unreadable.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DatasetError(path, "image file not found")
    try:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as image:
                return image.width, image.height
        except (UnidentifiedImageError, OSError, SyntaxError):
            pass  # formats PIL does not know may still be read by OpenCV
    except ImportError:
        pass
    image = read_image_bgr(path)
    return image.shape[1], image.shape[0]
