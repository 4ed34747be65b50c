"""An upload's bytes as the (H, W, 3) uint8 BGR image ``Detector.predict`` takes.

Decoded as :func:`keras_retinanet.data.image_io.read_image_bgr` reads files (OpenCV, EXIF orientation ignored, alpha
dropped, 16 bits scaled to 8, a JPEG without its end marker refused), so that a served image gives the detections
``load_detector(MODEL).predict(path)`` gives the file. Before decoding, the header's size is checked (with Pillow,
which reads headers without decoding) so that a small file declaring a huge image is refused without the memory.
"""

import io
import warnings
from typing import Optional, Tuple

import cv2
import numpy as np

# As data.image_io: annotations refer to the stored pixels, as keras-retinanet (PIL) did.
IMREAD_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
JPEG_START = b"\xff\xd8"
JPEG_END = b"\xff\xd9"


class UploadError(ValueError):
    """An upload that is not a usable image: ``status`` (400 or 413) and a one-line message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


try:
    from PIL import Image, UnidentifiedImageError

    # The server applies its own limit (max_image_pixels) to the size Pillow reads; Pillow's warning says nothing more.
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
except ImportError:  # pragma: no cover - Pillow comes with matplotlib
    Image = None


def header_size(data: bytes) -> Optional[Tuple[int, int]]:
    """(width, height) from an image's header, without decoding its pixels; None where Pillow does not know it.

    Raises:
        UploadError: 413 for an image beyond Pillow's own bound (twice ``PIL.Image.MAX_IMAGE_PIXELS``).
    """
    if Image is None:  # pragma: no cover
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            return int(image.width), int(image.height)
    except Image.DecompressionBombError as error:
        raise UploadError(413, f"image too large: {error}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """The (H, W, 3) uint8 BGR image of an upload.

    Raises:
        UploadError: 400 for an empty body, bytes that are not an image OpenCV decodes, or a truncated JPEG;
            413 for an image of more than ``max_pixels`` pixels.
    """
    if not data:
        raise UploadError(400, "the request has no image: the body is empty")
    size = header_size(data)
    if size is not None and size[0] * size[1] > max_pixels:
        raise UploadError(413, f"image of {size[0]}x{size[1]} pixels is larger than the server's {max_pixels} pixels")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), IMREAD_FLAGS)
    if image is None or image.size == 0:
        raise UploadError(400, "the body is not an image OpenCV can decode (corrupt, truncated or another format)")
    # libjpeg fills a truncated JPEG with grey and only warns; a JPEG must end with its EOI marker.
    if data[:2] == JPEG_START and JPEG_END not in data[-64:]:
        raise UploadError(400, "the JPEG is truncated (no end-of-image marker)")
    if image.shape[0] * image.shape[1] > max_pixels:
        raise UploadError(
            413, f"image of {image.shape[1]}x{image.shape[0]} pixels is larger than the server's {max_pixels} pixels"
        )
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return image
