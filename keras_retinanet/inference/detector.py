"""The detector: a model file that knows how to use itself.

    from keras_retinanet import load_detector
    detector = load_detector("model.keras")       # a training snapshot converts itself
    detector = load_detector("resnet50_coco")     # a preset: keras-retinanet's COCO model, downloaded once
    result = detector.predict("photo.jpg")        # or a BGR uint8 array, or a list of them
    result["boxes"], result["scores"], result["labels"], result["names"]

Images are prepared by an :class:`InputTransform` built from the model's spec, in keras-retinanet's
prediction order (preprocess, then resize: ``preprocess_first=True``), the order evaluation uses too, so that
``retinanet-predict``, ``retinanet-evaluate`` and Python give the same detections.
"""

import logging
import os
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import keras
import numpy as np

from ..config import RetinaNetConfig
from ..config.spec import DetectorSpec
from ..data.image_io import read_image_bgr
from ..data.input_transform import InputTransform
from ..hub import Located
from .single_image import detect_image
from .loading import OpenedModel, open_model
from .refilter import filter_settings, refiltered
from .runtimes import RawImageTransform
from .slicing import Tiling, batches, merge_tiles, tile_windows

logger = logging.getLogger(__name__)

Image = Union[str, os.PathLike, np.ndarray]


def _as_image(image: Image) -> np.ndarray:
    """A path or an array as a (H, W, 3) uint8 BGR array.

    Raises:
        DatasetError: an unreadable image file.
        ValueError: an array that is not an image.
    """
    if isinstance(image, (str, os.PathLike)):
        return read_image_bgr(image)
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"expected a (H, W, 3) BGR image, got an array of shape {array.shape}")
    return array


class Detector:
    """An inference model with the spec that says how to use it.

    Args:
        model: a RetinaNet inference model (outputs boxes, scores, labels).
        spec: its :class:`DetectorSpec` (with filter settings).
        notes: what the settings it was opened with overrode (image sides, class names).
        score_threshold: the threshold :meth:`predict` applies when given none (None: the model's own).
        from_file: whether the spec is the model file's (False: built from settings, for keras-retinanet's files).

    Attributes:
        model: the Keras inference model.
        spec: the spec; ``image_min_side``/``image_max_side`` are the sides images are resized to.
        input_transform: the :class:`InputTransform` preparing images for ``model``.
        notes: list of strings.
        from_file: bool.
    """

    def __init__(
        self,
        model: keras.Model,
        spec: DetectorSpec,
        notes: Sequence[str] = (),
        score_threshold: Optional[float] = None,
        from_file: bool = True,
    ):
        self.model = model
        self.from_file = from_file
        self.default_score_threshold = score_threshold
        self.spec = spec
        self.notes = list(notes)
        self.input_transform = InputTransform(
            spec.preprocessing,
            image_min_side=spec.image_min_side,
            image_max_side=spec.image_max_side,
            resize=spec.resize,
        )
        # Inference models with a rebuilt filter (a lower score threshold, more detections), built once each.
        self._refiltered: Dict[Tuple[Tuple[str, Any], ...], keras.Model] = {}
        # Set by commands (--tile): evaluation then runs sliced inference through detect_array.
        self.tiling: Optional[Tiling] = None

    @property
    def filter_threshold(self) -> float:
        """The threshold of the model's own filter: scores at or below it never come out of ``model``."""
        return float(filter_settings(self.model)["score_threshold"])

    @property
    def max_detections(self) -> int:
        """The most detections the model's own filter gives an image."""
        return int(filter_settings(self.model)["max_detections"])

    def predict_on_batch(self, batch: np.ndarray):
        """The inference model's outputs on a prepared batch, so that a Detector can stand in for its model."""
        return self.model.predict_on_batch(batch)

    def model_for(self, score_threshold: Optional[float] = None, max_detections: Optional[int] = None) -> keras.Model:
        """The inference model that yields every detection above ``score_threshold``, up to ``max_detections``.

        The model itself when its own filter gives them (a higher threshold, fewer detections: the caller keeps
        the best); else a model whose filter is rebuilt (same layers and weights), since the model's own filter
        dropped them.
        """
        changes: Dict[str, Any] = {}
        if score_threshold is not None and score_threshold < self.filter_threshold:
            changes["score_threshold"] = float(score_threshold)
        if max_detections is not None and max_detections > self.max_detections:
            changes["max_detections"] = int(max_detections)
        if not changes:
            return self.model
        key = tuple(sorted(changes.items()))
        if key not in self._refiltered:
            self._refiltered[key] = refiltered(self.model, **changes)
        return self._refiltered[key]

    def allow_detections(self, max_detections: int) -> None:
        """Let the model give up to ``max_detections`` an image from now on (its filter rebuilt where it gives
        fewer); an evaluation keeping more detections than the model's own filter gives asks for this."""
        if max_detections > self.max_detections:
            self.model = self.model_for(max_detections=max_detections)
            self.spec = self.spec.with_filter(**filter_settings(self.model))
            self._refiltered.clear()  # built on the model before

    def _as_result(self, boxes, scores, labels, score_threshold, max_detections) -> Dict[str, Any]:
        """The result dict of one image's detections (padding rows, label -1, are dropped)."""
        keep = labels >= 0
        if score_threshold is not None:
            keep &= scores > score_threshold  # strictly above, as the filter keeps them
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        order = np.argsort(-scores, kind="stable")  # the filter outputs best first already; made certain
        if max_detections is not None:
            order = order[:max_detections]
        labels = labels[order].astype(np.int32)
        names = np.array([self.spec.name_of(int(label)) for label in labels], dtype=str)
        return {
            "boxes": boxes[order].astype(np.float32).reshape(-1, 4),
            "scores": scores[order].astype(np.float32),
            "labels": labels,
            "names": names,
            "counts": class_counts(labels, names),
        }

    def _detect_whole(self, array: np.ndarray, score_threshold, max_detections):
        """(boxes, scores, labels, seconds) of one image run whole, in its pixels; padding rows included."""
        return detect_image(self.model_for(score_threshold, max_detections), array, self.input_transform)

    def _detect_tiled(self, array: np.ndarray, tiling: Tiling, score_threshold, max_detections):
        """(boxes, scores, labels, seconds) of one image sliced into tiles and merged, in its pixels.

        Tiles go through the model ``tiling.batch_size`` at a time, each prepared by the detector's own
        InputTransform; only one batch of crops exists at a time, so memory does not grow with the image.
        """
        model = self.model_for(score_threshold, max_detections)
        height, width = array.shape[:2]
        parts: List[Tuple[np.ndarray, ...]] = []
        seconds = 0.0
        windows = tile_windows(height, width, tiling)
        for first, group in zip(range(0, len(windows), tiling.batch_size), batches(windows, tiling.batch_size)):
            prepared = [self.input_transform(array[y1:y2, x1:x2], preprocess_first=True) for x1, y1, x2, y2 in group]
            start = time.perf_counter()
            outputs = model.predict_on_batch(np.stack([network_input for network_input, _ in prepared]))
            seconds += time.perf_counter() - start
            boxes, scores, labels = (np.asarray(output) for output in outputs[:3])
            for number, ((x1, y1, _, _), (_, scale)) in enumerate(zip(group, prepared)):
                valid = labels[number] >= 0
                image_boxes = boxes[number][valid] / scale + np.array([x1, y1, x1, y1], np.float32)
                parts.append((image_boxes, scores[number][valid], labels[number][valid],
                              np.repeat(group[number][np.newaxis], valid.sum(), axis=0),
                              np.full(valid.sum(), first + number)))  # fmt: skip
        if tiling.whole_image:
            boxes, scores, labels, whole_seconds = self._detect_whole(array, score_threshold, max_detections)
            valid = labels >= 0
            seconds += whole_seconds
            parts.append((boxes[valid], scores[valid], labels[valid],
                          np.repeat([[0, 0, width, height]], valid.sum(), axis=0), np.full(valid.sum(), -1)))  # fmt: skip
        boxes, scores, labels, part_windows, tiles = (np.concatenate(column) for column in zip(*parts))
        boxes, scores, labels = merge_tiles(
            boxes, scores, labels, part_windows, tiles, (height, width), tiling.merge, tiling.nms_threshold
        )
        return boxes.astype(np.float32), scores.astype(np.float32), labels.astype(np.int32), seconds

    def detect_array(
        self,
        image: np.ndarray,
        score_threshold: Optional[float] = None,
        max_detections: Optional[int] = None,
        tiling: Optional[Tiling] = None,
    ):
        """(boxes (D, 4), scores (D,), labels (D,), model seconds) of one BGR image, in its pixels, best first.

        Whole, or sliced by ``tiling`` (default: the detector's ``tiling``). Rows past the detections may be padding
        (label -1, score -1), as a model's own outputs.
        """
        tiling = tiling if tiling is not None else self.tiling
        if tiling is None:
            return self._detect_whole(image, score_threshold, max_detections)
        return self._detect_tiled(image, tiling, score_threshold, max_detections)

    def _detect_one(self, image: Image, score_threshold, max_detections, tiling) -> Dict[str, Any]:
        """Detections of one image; see :meth:`predict`."""
        boxes, scores, labels, _ = self.detect_array(_as_image(image), score_threshold, max_detections, tiling)
        if max_detections is None:
            max_detections = self.max_detections
        return self._as_result(boxes, scores, labels, score_threshold, max_detections)

    def predict(
        self,
        images: Union[Image, Sequence[Image]],
        score_threshold: Optional[float] = None,
        max_detections: Optional[int] = None,
        tile: Union[None, int, Tuple[int, int], Tiling] = None,
        tile_overlap: float = 0.2,
        tile_merge: str = "border",
        whole_image: bool = False,
        tile_batch_size: int = 4,
    ) -> Union[Dict[str, Any], List[Dict[str, Any]]]:
        """Detect objects in one image or a list of images (of any sizes, run one at a time).

        Args:
            images: an image file path or a (H, W, 3) uint8 BGR array; or a list (or a (B, H, W, 3) array) of them.
            score_threshold: keep detections scoring strictly above this; None: the detector's default (the
                ``score_threshold`` it was loaded with), else all the model gives (those above its own filter
                threshold). Below the model's threshold the filter is rebuilt.
            max_detections: at most this many detections an image (None: the model's own, 300 unless it was
                converted otherwise); more than the model's own rebuilds its filter.
            tile: slice each image into tiles of this size in its own pixels (an int, or (height, width)), each
                detected at the model's scale (resized as the spec says), and merge them (None: the whole image,
                resized). Images smaller than a tile are one tile.
            tile_overlap: the fraction of a tile that neighbouring tiles share: objects up to this size are seen
                whole by some tile.
            tile_merge: how detections of overlapping tiles become one set: 'border' (default), 'nms' or
                'merge' (see :mod:`keras_retinanet.inference.slicing`).
            whole_image: with tiles, also detect on the whole image, for objects larger than a tile.
            tile_batch_size: tiles run through the network together.

        Returns:
            for one image a dict, for a list a list of dicts, each with
            ``boxes`` (N, 4) float32 x1, y1, x2, y2 in that image's own pixels, ``scores`` (N,) float32,
            ``labels`` (N,) int32 and ``names`` (N,) str, best first, without padding, and ``counts``
            ({class name: detections}, in label order).

        Raises:
            DatasetError: an image file cannot be read.
            TilingError: bad tile arguments.
        """
        if score_threshold is None:
            score_threshold = self.default_score_threshold
        if max_detections is not None and int(max_detections) < 1:
            raise ValueError(f"max_detections must be at least 1, got {max_detections}")
        tiling = None
        if tile is not None:
            tiling = Tiling.of(
                tile, overlap=tile_overlap, merge=tile_merge, whole_image=whole_image, batch_size=tile_batch_size
            )
        if isinstance(images, (list, tuple)) or (isinstance(images, np.ndarray) and images.ndim == 4):
            return [self._detect_one(image, score_threshold, max_detections, tiling) for image in images]
        return self._detect_one(images, score_threshold, max_detections, tiling)


def class_counts(labels: np.ndarray, names: np.ndarray) -> Dict[str, int]:
    """{class name: number of detections}, in label order, for the classes detected."""
    counts: Dict[str, int] = {}
    for label in np.unique(labels):
        counts[str(names[labels == label][0])] = int(np.sum(labels == label))
    return counts


class ExportedDetector(Detector):
    """A :class:`Detector` of an exported model (SavedModel, TFLite, ONNX), run by its own runtime.

    Args:
        runner: a runner of :mod:`.runtimes` (``predict_on_batch`` as a Keras inference model).
        spec: the spec stored in the export.

    Attributes:
        format: 'savedmodel', 'tflite' or 'onnx'.

    The filter is part of the exported graph: a ``score_threshold`` below the export's own gives only what it
    keeps (said once in the log).
    """

    def __init__(self, runner, spec: DetectorSpec, notes: Sequence[str] = (), score_threshold: Optional[float] = None):
        super().__init__(runner, spec, notes, score_threshold=score_threshold, from_file=True)
        self.format = runner.format
        if runner.raw_input:
            self.input_transform = RawImageTransform()  # the graph preprocesses and resizes by itself
        self._warned_threshold = False
        self._warned_count = False

    @property
    def filter_threshold(self) -> float:
        return float((self.spec.filter or {}).get("score_threshold", 0.0))

    @property
    def max_detections(self) -> int:
        return int((self.spec.filter or {}).get("max_detections", 300))

    def allow_detections(self, max_detections: int) -> None:
        self.model_for(max_detections=max_detections)  # an export's filter is in its graph: said once

    def model_for(self, score_threshold: Optional[float] = None, max_detections: Optional[int] = None):
        if score_threshold is not None and score_threshold < self.filter_threshold and not self._warned_threshold:
            self._warned_threshold = True
            logger.warning(
                "the %s export keeps scores above %g only (its filter is in the graph); asked for %g",
                self.format, self.filter_threshold, score_threshold,
            )  # fmt: skip
        if max_detections is not None and max_detections > self.max_detections and not self._warned_count:
            self._warned_count = True
            logger.warning(
                "the %s export gives at most %d detections an image (its filter is in the graph); asked for %d: "
                "export it again with --max-detections",
                self.format, self.max_detections, max_detections,
            )  # fmt: skip
        return self.model


def detector_of(opened: OpenedModel, score_threshold: Optional[float] = None) -> Detector:
    """The :class:`Detector` (an :class:`ExportedDetector` for an export) of a model :func:`open_model` opened.

    Args:
        opened: what :func:`keras_retinanet.inference.open_model` gave.
        score_threshold: the threshold :meth:`Detector.predict` applies when given none (None: the model's own).
    """
    if opened.export_format is not None:
        return ExportedDetector(opened.model, opened.spec, opened.notes, score_threshold=score_threshold)
    return Detector(opened.model, opened.spec, opened.notes, score_threshold=score_threshold, from_file=opened.from_file)


def load_detector(
    path: Union[str, os.PathLike, Located],
    backbone: Optional[str] = None,
    class_names: Optional[Sequence[str]] = None,
    image_min_side: Optional[int] = None,
    image_max_side: Optional[int] = None,
    score_threshold: Optional[float] = None,
    precision: str = "float32",
    safe_mode: bool = True,
    threads: Optional[int] = None,
    max_detections: Optional[int] = None,
    max_candidates_per_level: Optional[int] = None,
    nms_method: Optional[str] = None,
    soft_nms_sigma: Optional[float] = None,
) -> Detector:
    """Load a model file, or a preset by name, as a :class:`Detector`.

    A file of this package needs nothing but its path: its spec names the backbone, classes, image sides and
    anchors. A preset (``keras_retinanet.hub.preset_names()``, e.g. 'resnet50_coco') is fetched into the cache
    and described by its spec (the COCO class names, ...). keras-retinanet's own files (no spec) are described
    by the arguments: backbone default 'resnet50', image sides default 800/1333, class names default '0', '1', ...

    Args:
        path: ``.keras`` or ``.h5`` file (a training snapshot is converted to an inference model), a preset
            name or a URL; or an export of ``retinanet-convert-model`` (a SavedModel folder, ``.tflite`` or
            ``.onnx`` file, raw-input or not), run by its own runtime and described by the spec stored in it;
            or what :func:`keras_retinanet.hub.locate` gave (opened by :func:`keras_retinanet.inference.open_model`).
        backbone: the backbone; must match the file's spec if it has one.
        class_names: label names in label order; their number must match the model's.
        image_min_side, image_max_side: resize images to these sides instead of those the model was trained at.
        score_threshold: the threshold :meth:`Detector.predict` applies by default (None: the model's own
            filter threshold, 0.05 for a converted training snapshot); below the model's own the filter is rebuilt.
        precision: 'float32', 'mixed', 'mixed_float16', 'mixed_bfloat16' or 'auto' (16-bit only where the
            hardware runs it natively and the model's detections are kept; one log line says what and why).
            Exports run as they were exported ('float32' or 'auto').
        safe_mode: refuse files holding Lambda layers (code stored in the file).
        threads: an export's runtime threads (TFLite, ONNX Runtime); default: the cores this process may use.
        max_detections: detections per image (None: the model's own, 300 for a converted training snapshot);
            another value rebuilds the filter of a Keras model (an export's is fixed in its graph).
        max_candidates_per_level: keep only each pyramid level's N best scores as NMS candidates, bounding the
            filter's work on images where very many scores pass the threshold, at the price of objects in
            crowded images (None: every score above the threshold, keras-retinanet's filter).
        nms_method, soft_nms_sigma: 'soft' for Gaussian Soft-NMS with that sigma instead of keras-retinanet's hard
            NMS ('hard'); None: the model's own.

    Returns:
        the :class:`Detector`.

    Raises:
        ModelError: an argument contradicts the file (another backbone, another number of classes).
        ModelFileError: the file is not a model file or not a RetinaNet.
        UnknownModelError: neither a file nor a preset; DownloadError: a preset could not be downloaded.
    """
    settings = {
        "model.backbone": backbone,
        "data.image_min_side": image_min_side,
        "data.image_max_side": image_max_side,
        "model.max_detections": max_detections,
        "model.max_candidates_per_level": max_candidates_per_level,
        "model.nms_method": nms_method,
        "model.soft_nms_sigma": soft_nms_sigma,
    }
    config = RetinaNetConfig.build({key: value for key, value in settings.items() if value is not None})
    opened = open_model(
        path, config, class_names=class_names, safe_mode=safe_mode, precision=precision, threads=threads
    )
    return detector_of(opened, score_threshold)
