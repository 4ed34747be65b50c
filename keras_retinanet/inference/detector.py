"""The detector: a model file that knows how to use itself.

    from keras_retinanet import load_detector
    detector = load_detector("model.keras")       # a training snapshot converts itself
    detector = load_detector("resnet50_coco")     # a preset: keras-retinanet's COCO model, downloaded once
    result = detector.predict("photo.jpg")        # or a BGR uint8 array, or a list of them
    result.boxes, result.scores, result.labels, result.names, result.counts   # a Detections

One step runs the network, :meth:`Detector.run_batch`: prepared inputs in (:meth:`Detector.prepare`: the image, or
a crop of it, through the spec's :class:`InputTransform`), detections in the image's pixels out. Whole images,
tiles (:mod:`.slicing`), lists of images, ``retinanet-predict``, ``retinanet-evaluate`` and the server's batches
all go through it. Images are prepared in keras-retinanet's prediction order (preprocess, then resize:
``preprocess_first=True``), the order evaluation uses too, so that the commands and Python give the same detections.

A Detector does not change: per-call options are arguments, and :meth:`Detector.with_filter` and
:meth:`Detector.with_tiles` give a new detector.
"""

import dataclasses
import logging
import os
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import keras
import numpy as np

from ..config.spec import DetectorSpec
from ..data.image_io import read_image_bgr
from ..data.input_transform import InputTransform
from ..errors import ModelError
from .detections import Detections
from .refilter import filter_settings, refiltered
from .runtimes import RawImageTransform
from .slicing import DEFAULT_MERGE, TileOptions, predict_sliced

logger = logging.getLogger(__name__)

Image = Union[str, os.PathLike, np.ndarray]
Window = Tuple[int, int, int, int]


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


@dataclasses.dataclass(frozen=True)
class Prepared:
    """One network input, and where its boxes go in the image.

    Attributes:
        network_input: (h, w, 3) as the model takes it (channels last; :meth:`Detector.run_batch` transposes it for
            a channels-first backend).
        scale: input pixels per image pixel.
        window: x1, y1, x2, y2 (exclusive) of the part of the image it shows: the whole image, or a tile.
        image_size: (height, width) of the whole image.
    """

    network_input: np.ndarray
    scale: float
    window: Window
    image_size: Tuple[int, int]


def model_outputs(model, batch: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``model.predict_on_batch``, checked to answer as an inference model: boxes (B, D, 4), scores (B, D), labels
    (B, D) as numpy arrays.

    Raises:
        ValueError: another answer (a training model, say), saying what to do.
    """
    outputs = model.predict_on_batch(batch)
    if not isinstance(outputs, (list, tuple)) or len(outputs) < 3:
        what = f"{len(outputs)} arrays" if isinstance(outputs, (list, tuple)) else type(outputs).__name__
        raise ValueError(
            f"detection needs an inference model whose predict returns [boxes, scores, labels]; this model returns "
            f"{what}. A training model must be converted first (models.convert_model, or --convert-model)."
        )
    boxes, scores, labels = (np.asarray(output) for output in outputs[:3])
    if boxes.ndim != 3 or boxes.shape[-1] != 4 or scores.shape != boxes.shape[:2] or labels.shape != boxes.shape[:2]:
        raise ValueError(
            f"detection needs outputs boxes (B, D, 4), scores (B, D), labels (B, D); got shapes "
            f"{boxes.shape}, {scores.shape}, {labels.shape}. Is this a converted inference model?"
        )
    return boxes, scores, labels


class Detector:
    """An inference model with the spec that says how to use it.

    Args:
        model: a RetinaNet inference model (``predict_on_batch`` gives boxes, scores, labels).
        spec: its :class:`DetectorSpec` (with filter settings); None for a bare inference model, which then needs
            ``input_transform``.
        notes: what the settings it was opened with overrode (image sides, class names).
        score_threshold: the threshold :meth:`predict` applies when given none (None: the model's own).
        from_file: whether the spec is the model file's (False: built from settings, for keras-retinanet's files).
        tiles: the :class:`TileOptions` :meth:`predict` slices images with when given no ``tile`` (None: whole).
        input_transform: how images become network input (default: the spec's).

    Attributes:
        model, spec, notes, from_file, default_score_threshold, tiles, input_transform: as given.
    """

    def __init__(
        self,
        model: keras.Model,
        spec: Optional[DetectorSpec],
        notes: Sequence[str] = (),
        score_threshold: Optional[float] = None,
        from_file: bool = True,
        tiles: Optional[TileOptions] = None,
        input_transform: Optional[InputTransform] = None,
    ):
        if spec is None and input_transform is None:
            raise ValueError("a Detector without a spec needs the input_transform that prepares its images")
        fields = dict(model=model, spec=spec, notes=list(notes), default_score_threshold=score_threshold,
                      from_file=from_file, tiles=tiles)  # fmt: skip
        if input_transform is None:
            input_transform = InputTransform(
                spec.preprocessing, image_min_side=spec.image_min_side, image_max_side=spec.image_max_side,
                resize=spec.resize,
            )  # fmt: skip
        fields["input_transform"] = input_transform
        for name, value in fields.items():
            object.__setattr__(self, name, value)
        # Inference models with a rebuilt filter (a lower score threshold, more detections), built once each.
        object.__setattr__(self, "_refiltered", {})

    def __setattr__(self, name, value):
        raise AttributeError(f"a Detector does not change; use with_filter(...) or with_tiles(...) for another "
                             f"(setting {name!r})")  # fmt: skip

    def _replace(self, **changes) -> "Detector":
        fields = dict(model=self.model, spec=self.spec, notes=self.notes, score_threshold=self.default_score_threshold,
                      from_file=self.from_file, tiles=self.tiles, input_transform=self.input_transform)  # fmt: skip
        fields.update(changes)
        return type(self)(**fields)

    def _own_filter(self) -> Optional[Dict[str, Any]]:
        """The model's filter settings, read from its graph; None for a model without one (a bare stand-in)."""
        if not hasattr(self.model, "layers"):
            return None
        try:
            return filter_settings(self.model)
        except ModelError:
            return None

    @property
    def filter_threshold(self) -> float:
        """The threshold of the model's own filter: scores at or below it never come out of ``model``."""
        settings = self._own_filter()
        return float(settings["score_threshold"]) if settings else 0.0

    @property
    def max_detections(self) -> Optional[int]:
        """The most detections the model's own filter gives an image (None: unknown, a bare stand-in)."""
        settings = self._own_filter()
        return int(settings["max_detections"]) if settings else None

    def name_of(self, label: int) -> str:
        """The class name of a label ('7' for a label the spec does not name)."""
        return self.spec.name_of(int(label)) if self.spec is not None else str(int(label))

    def predict_on_batch(self, batch: np.ndarray):
        """The inference model's outputs on a prepared batch, so that a Detector can stand in for its model."""
        return self.model.predict_on_batch(batch)

    def model_for(self, score_threshold: Optional[float] = None, max_detections: Optional[int] = None):
        """The inference model that yields every detection above ``score_threshold``, up to ``max_detections``.

        The model itself when its own filter gives them (a higher threshold, fewer detections: the caller keeps
        the best); else a model whose filter is rebuilt (same layers and weights), since the model's own filter
        dropped them.
        """
        settings = self._own_filter()
        if settings is None:
            return self.model
        changes: Dict[str, Any] = {}
        if score_threshold is not None and score_threshold < float(settings["score_threshold"]):
            changes["score_threshold"] = float(score_threshold)
        if max_detections is not None and max_detections > int(settings["max_detections"]):
            changes["max_detections"] = int(max_detections)
        if not changes:
            return self.model
        key = tuple(sorted(changes.items()))
        if key not in self._refiltered:
            self._refiltered[key] = refiltered(self.model, **changes)
        return self._refiltered[key]

    def with_filter(self, **changes) -> "Detector":
        """A detector whose model's filter is rebuilt with ``changes`` (e.g. ``max_detections=3000``,
        ``score_threshold=0.01``); the same layers and weights. This detector is unchanged."""
        settings = self._own_filter()
        if settings is None:
            raise ModelError("this model has no detection filter of its own to rebuild")
        if all(settings.get(key) == value for key, value in changes.items()):
            return self
        model = refiltered(self.model, **changes)
        spec = self.spec.with_filter(**filter_settings(model)) if self.spec is not None else None
        return self._replace(model=model, spec=spec)

    def with_tiles(self, tile: Union[None, int, Sequence[int], str, TileOptions], **options) -> "Detector":
        """A detector that slices every image as ``TileOptions.of(tile, **options)`` says when :meth:`predict` is
        given no ``tile`` (None: whole images). This detector is unchanged."""
        return self._replace(tiles=None if tile is None else TileOptions.of(tile, **options))

    def prepare(self, image: np.ndarray, window: Optional[Sequence[int]] = None) -> Prepared:
        """The network input of a (H, W, 3) BGR image, or of its part ``window`` (x1, y1, x2, y2, exclusive)."""
        height, width = image.shape[:2]
        x1, y1, x2, y2 = (0, 0, width, height) if window is None else (int(value) for value in window)
        network_input, scale = self.input_transform(image[y1:y2, x1:x2], preprocess_first=True)
        return Prepared(network_input, float(scale), (x1, y1, x2, y2), (height, width))

    def run_batch(
        self, prepared: Sequence[Prepared], score_threshold: Optional[float] = None,
        max_detections: Optional[int] = None,
    ) -> List[Detections]:  # fmt: skip
        """The one step that runs the network: prepared inputs of one shape in, one :class:`Detections` each out,
        boxes in the whole image's pixels (a tile's shifted by its corner), best first.

        Args:
            prepared: inputs of :meth:`prepare`, all of one shape.
            score_threshold: keep detections scoring strictly above it (None: the detector's default, else all the
                model gives); below the model's own threshold the filter is rebuilt.
            max_detections: at most this many an input (None: the model's own); more rebuilds the filter.

        Returns:
            Detections per input; ``capped`` where the cap bound (see :class:`Detections`).
        """
        if not prepared:
            return []
        shapes = sorted({item.network_input.shape for item in prepared})
        if len(shapes) > 1:
            raise ValueError(f"a batch runs inputs of one shape; got {', '.join(map(str, shapes))}")
        if score_threshold is None:
            score_threshold = self.default_score_threshold
        batch = np.stack([item.network_input for item in prepared])
        if keras.backend.image_data_format() == "channels_first":
            batch = batch.transpose((0, 3, 1, 2))
        started = time.perf_counter()
        boxes, scores, labels = model_outputs(self.model_for(score_threshold, max_detections), batch)
        seconds = (time.perf_counter() - started) / len(prepared)
        return [
            self._detections(item, boxes[number], scores[number], labels[number], score_threshold, max_detections,
                             seconds)  # fmt: skip
            for number, item in enumerate(prepared)
        ]

    def _detections(self, item: Prepared, boxes, scores, labels, score_threshold, max_detections, seconds):
        """One input's outputs as Detections in its image's pixels: padding rows (label -1) and scores at or below
        the threshold dropped, best first, at most ``max_detections``."""
        given = labels >= 0
        keep = given & (scores > score_threshold) if score_threshold is not None else given
        order = np.flatnonzero(keep)
        order = order[np.argsort(-scores[order], kind="stable")]  # the filter outputs best first; made certain
        cap = max_detections if max_detections is not None else len(scores)
        # A cap binds when more were found than kept, or when the filter gave its whole quota and its weakest
        # detection passes the threshold (so the filter may have dropped more that would have passed).
        full = given.all() and len(scores) > 0
        weakest_passes = score_threshold is None or float(scores[given].min()) > score_threshold if full else False
        capped = len(order) > cap or (full and weakest_passes)
        order = order[:cap]
        x1, y1 = item.window[:2]
        image_boxes = np.asarray(boxes[order], np.float32) / np.float32(item.scale) + np.float32([x1, y1, x1, y1])
        image_labels = labels[order].astype(np.int32)
        names = [self.name_of(label) for label in image_labels.tolist()]
        return Detections(image_boxes, scores[order], image_labels, names, item.image_size, capped=capped,
                          network_seconds=seconds)  # fmt: skip

    def _tile_options(self, tile, tile_overlap, tile_merge, whole_image, tile_batch_size) -> Optional[TileOptions]:
        if tile is None:
            options = self.tiles
        else:
            options = TileOptions.of(tile, overlap=tile_overlap, merge=tile_merge, whole_image=whole_image,
                                     batch_size=tile_batch_size)  # fmt: skip
        return options.resolved(self.spec) if options is not None else None

    def _predict_one(self, image: Image, score_threshold, max_detections, tiles) -> Detections:
        source = os.fspath(image) if isinstance(image, (str, os.PathLike)) else None
        array = _as_image(image)
        if tiles is None:
            (result,) = self.run_batch([self.prepare(array)], score_threshold, max_detections)
        else:
            result = predict_sliced(self, array, tiles, score_threshold)
            if max_detections is not None and len(result) > max_detections:
                result = dataclasses.replace(result[:max_detections], capped=True)
        return dataclasses.replace(result, source=source) if source is not None else result

    def predict(
        self,
        images: Union[Image, Sequence[Image]],
        score_threshold: Optional[float] = None,
        max_detections: Optional[int] = None,
        tile: Union[None, int, Tuple[int, int], str, TileOptions] = None,
        tile_overlap: Union[float, str] = "auto",
        tile_merge: str = DEFAULT_MERGE,
        whole_image: bool = False,
        tile_batch_size: int = 4,
    ) -> Union[Detections, List[Detections]]:
        """Detect objects in one image or a list of images (of any sizes, run one at a time).

        Args:
            images: an image file path or a (H, W, 3) uint8 BGR array; or a list (or a (B, H, W, 3) array) of them.
            score_threshold: keep detections scoring strictly above this; None: the detector's default (the
                ``score_threshold`` it was loaded with), else all the model gives (those above its own filter
                threshold). Below the model's threshold the filter is rebuilt. With tiles, it applies before
                merging.
            max_detections: at most this many detections an image. None: the model's own (300 unless it was
                converted otherwise) for a whole image; with tiles, the model's own for each tile and everything
                that survives merging for the image. More than the model's own rebuilds its filter.
            tile: slice each image into tiles of this size in its own pixels (an int, (height, width), or 'auto':
                the tile the model was trained on, else its image side), each detected at the model's scale, and
                merge them (None: the detector's ``tiles``, by default the whole image, resized). Images smaller
                than a tile are one tile.
            tile_overlap: the fraction of a tile that neighbouring tiles share (objects up to this size are seen
                whole by some tile), 0 to 0.9; 'auto': at least the 95th percentile of the training objects' sizes
                (0.2 for a model that recorded none).
            tile_merge: how detections of overlapping tiles become one set: 'merge' (default), 'border' or
                'nms' (see :mod:`keras_retinanet.inference.merging`).
            whole_image: with tiles, also detect on the whole image, for objects larger than a tile.
            tile_batch_size: tiles run through the network together.

        Returns:
            for one image a :class:`Detections`, for a list a list of them: ``boxes`` (N, 4) float32 x1, y1, x2, y2
            in that image's own pixels, ``scores``, ``labels``, ``names``, ``counts``, best first, and ``capped``
            when a cap bound. ``result["boxes"]`` reads as before.

        Raises:
            DatasetError: an image file cannot be read.
            TileError: bad tile arguments.
        """
        if score_threshold is None:
            score_threshold = self.default_score_threshold
        if max_detections is not None and int(max_detections) < 1:
            raise ValueError(f"max_detections must be at least 1, got {max_detections}")
        tiles = self._tile_options(tile, tile_overlap, tile_merge, whole_image, tile_batch_size)
        if isinstance(images, (list, tuple)) or (isinstance(images, np.ndarray) and images.ndim == 4):
            return [self._predict_one(image, score_threshold, max_detections, tiles) for image in images]
        return self._predict_one(images, score_threshold, max_detections, tiles)


class ExportedDetector(Detector):
    """A :class:`Detector` of an exported model (SavedModel, TFLite, ONNX), run by its own runtime.

    Args:
        runner: a runner of :mod:`.runtimes` (``predict_on_batch`` as a Keras inference model).
        spec: the spec stored in the export.

    Attributes:
        format: 'savedmodel', 'tflite' or 'onnx'.

    The filter is part of the exported graph: a ``score_threshold`` below the export's own, or more detections than
    it gives, give only what it keeps (said once in the log).
    """

    def __init__(self, model, spec: DetectorSpec, notes: Sequence[str] = (), score_threshold: Optional[float] = None,
                 from_file: bool = True, tiles: Optional[TileOptions] = None,
                 input_transform: Optional[InputTransform] = None):  # fmt: skip
        if input_transform is None and model.raw_input:
            input_transform = RawImageTransform()  # the graph preprocesses and resizes by itself
        super().__init__(model, spec, notes, score_threshold, from_file, tiles, input_transform)
        object.__setattr__(self, "format", model.format)
        object.__setattr__(self, "_warned", set())

    def _own_filter(self) -> Optional[Dict[str, Any]]:
        return None

    @property
    def filter_threshold(self) -> float:
        return float((self.spec.filter or {}).get("score_threshold", 0.0))

    @property
    def max_detections(self) -> int:
        return int((self.spec.filter or {}).get("max_detections", 300))

    def with_filter(self, **changes) -> "Detector":
        """This detector: an export's filter is in its graph (a lower threshold or more detections than it keeps
        are said once in the log, as :meth:`model_for` does)."""
        self.model_for(changes.get("score_threshold"), changes.get("max_detections"))
        return self

    def model_for(self, score_threshold: Optional[float] = None, max_detections: Optional[int] = None):
        if score_threshold is not None and score_threshold < self.filter_threshold and "threshold" not in self._warned:
            self._warned.add("threshold")
            logger.warning(
                "the %s export keeps scores above %g only (its filter is in the graph); asked for %g",
                self.format, self.filter_threshold, score_threshold,
            )  # fmt: skip
        if max_detections is not None and max_detections > self.max_detections and "count" not in self._warned:
            self._warned.add("count")
            logger.warning(
                "the %s export gives at most %d detections an image (its filter is in the graph); asked for %d: "
                "export it again with --max-detections",
                self.format, self.max_detections, max_detections,
            )  # fmt: skip
        return self.model
