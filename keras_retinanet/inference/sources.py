"""Detection over images, folders of images, videos and cameras: what ``retinanet-predict`` runs, from Python too.

    detector = load_detector('model.keras')
    predictor = SourcePredictor(detector, score_threshold=0.5, tile=640)
    records, failed = predict_sources(predictor, collect_sources(['photos/', 'clip.mp4']), 'out/')
    write_prediction_files(records, 'out/', predictor.counts, detector.spec.class_names)   # prediction_files

Each input is drawn with its detections (images as PNG, videos and cameras as MP4) into the output folder. An
input that cannot be read is reported in one line and skipped; a problem of the model stops the run.
"""

import logging
import os
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import DatasetError, RetinaNetError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")

Source = Union[str, int]  # a file's path, or a camera's index
Record = Dict[str, Any]  # one detection: source, frame, x1, y1, x2, y2, score, label, class_name

logger = logging.getLogger(__name__)


class InputError(RetinaNetError):
    """An input that does not exist, or a video or camera that cannot be opened (not to be confused with
    :class:`keras_retinanet.hub.SourceError`, a weights URL that cannot be used)."""


def open_camera(index: int):
    """An opened ``cv2.VideoCapture`` of camera ``index``.

    Raises:
        InputError: OpenCV finds no camera with that index.
    """
    import cv2

    # OpenCV logs its failed attempts over several lines; the error below says it in one.
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        capture = cv2.VideoCapture(index)
    finally:
        cv2.utils.logging.setLogLevel(level)
    if not capture.isOpened():
        capture.release()
        raise InputError(f"cannot open camera {index}: OpenCV finds no camera with that index")
    return capture


def collect_sources(paths: Sequence[str]) -> List[Tuple[Source, str]]:
    """Folders expanded into their images: [(path or camera index, 'image' | 'video' | 'camera')].

    A bare number that is not a file is a camera index, and the camera must open.

    Raises:
        InputError: an input does not exist, a camera does not open, or there is nothing to read.
    """
    found: List[Tuple[Source, str]] = []
    for path in paths:
        if os.path.isdir(path):
            for name in sorted(os.listdir(path)):
                if name.lower().endswith(IMAGE_EXTENSIONS):
                    found.append((os.path.join(path, name), "image"))
        elif path.isdigit() and not os.path.exists(path):
            open_camera(int(path)).release()  # checked now, before a model is loaded
            found.append((int(path), "camera"))
        elif not os.path.exists(path):
            raise InputError(f"input '{path}' does not exist")
        elif path.lower().endswith(VIDEO_EXTENSIONS):
            found.append((path, "video"))
        else:
            found.append((path, "image"))
    if not found:
        raise InputError("no images or videos found in the inputs")
    return found


class SourcePredictor:
    """Detects objects in BGR images with a Detector, draws them and counts them per class.

    Args:
        detector: a :class:`keras_retinanet.inference.Detector`.
        score_threshold: keep and draw detections scoring above this.
        options: further keyword arguments of ``Detector.predict`` (max_detections, tile, ...).

    Attributes:
        counts: [(source, frame or None, {class name: count})], one per image or frame predicted.
        capped: [(source, frame or None)] of the images or frames where a cap on the detections bound.
    """

    def __init__(self, detector, score_threshold: float, **options):
        self.detector = detector
        self.score_threshold = score_threshold
        self.options = options
        self.counts: List[Tuple[Source, Optional[int], Dict[str, int]]] = []
        self.capped: List[Tuple[Source, Optional[int]]] = []

    def __call__(self, image: np.ndarray, source: Source = None, frame: Optional[int] = None):
        """image: (H, W, 3) BGR. Returns (records, drawn image); each record a dict of source, frame (None for an
        image), box, score, label and class name."""
        result = self.detector.predict(image, score_threshold=self.score_threshold, **self.options)
        self.counts.append((source, frame, result.counts))
        if result.capped:
            self.capped.append((source, frame))
        return result.to_records(source, frame), result.draw(image, score_threshold=self.score_threshold)


def predict_image_file(predictor: SourcePredictor, path: str, output_dir: str, draw: bool) -> List[Record]:
    """Detections of one image file, its drawing written as PNG.

    Raises:
        DatasetError: the file cannot be read as an image.
    """
    import cv2

    from ..data.image_io import read_image_bgr

    records, drawn = predictor(read_image_bgr(path), source=path)
    if draw:
        cv2.imwrite(os.path.join(output_dir, os.path.splitext(os.path.basename(path))[0] + ".png"), drawn)
    return records


def predict_video(
    predictor: SourcePredictor, source: Source, output_dir: str, draw: bool, max_frames: Optional[int] = None
) -> List[Record]:
    """Detections of every frame of a video file or camera (an int index), the drawn frames written as MP4.

    A camera runs until it stops giving frames, ``max_frames``, or Ctrl-C; what it gave is kept.

    Raises:
        InputError: the video or camera cannot be opened.
    """
    import cv2
    import keras

    camera = isinstance(source, int)
    capture = open_camera(source) if camera else cv2.VideoCapture(source)
    if not capture.isOpened():
        raise InputError(f"{source}: cannot open video (corrupt, or a format OpenCV does not read)")
    label = f"camera:{source}" if camera else source
    stem = f"camera{source}" if camera else os.path.splitext(os.path.basename(source))[0]
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    frames = None if camera else (int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None)
    if frames is not None and max_frames is not None:
        frames = min(frames, max_frames)
    writer = None
    results: List[Record] = []
    progress = keras.utils.Progbar(frames, unit_name="frame")
    index = 0
    try:
        while max_frames is None or index < max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            records, drawn = predictor(frame, source=label, frame=index)
            results.extend(records)
            if draw:
                if writer is None:
                    height, width = drawn.shape[:2]
                    out = os.path.join(output_dir, stem + ".mp4")
                    writer = cv2.VideoWriter(out, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
                writer.write(drawn)
            index += 1
            progress.update(index)
    except KeyboardInterrupt:
        if not camera:
            raise
        sys.stdout.write("\n")  # below the progress bar
        logger.info(f"stopped camera {source} after {index} frames")
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    return results


def predict_sources(
    predictor: SourcePredictor,
    sources: Sequence[Tuple[Source, str]],
    output_dir: str,
    draw: bool = True,
    max_frames: Optional[int] = None,
) -> Tuple[List[Record], List[Source]]:
    """Detections of every input of :func:`collect_sources`; one that cannot be read is reported in one line on
    stderr and skipped.

    Returns:
        (records, the inputs skipped).
    """
    import keras

    images = [source for source, kind in sources if kind == "image"]
    image_progress = keras.utils.Progbar(len(images), unit_name="image") if images else None
    done = 0
    results: List[Record] = []
    failed: List[Source] = []
    for source, kind in sources:
        try:
            if kind == "image":
                results.extend(predict_image_file(predictor, source, output_dir, draw))
            else:
                results.extend(predict_video(predictor, source, output_dir, draw, max_frames=max_frames))
        except (DatasetError, InputError, OSError) as error:
            # Only unreadable inputs are skipped; a problem of the model stops the run.
            print(f"skipped {error}", file=sys.stderr)
            failed.append(source)
        if kind == "image":
            done += 1
            image_progress.update(done)
    return results, failed
