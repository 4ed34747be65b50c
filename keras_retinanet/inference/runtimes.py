"""Exported detectors run by their own runtimes: a SavedModel folder (TensorFlow), a ``.tflite`` file (the TFLite
interpreter, XNNPACK, ``num_threads``) and a ``.onnx`` file (ONNX Runtime, ``intra_op_num_threads``).

Each runner has ``predict_on_batch(batch) -> [boxes (1, D, 4), scores (1, D), labels (1, D)]``, as a Keras
inference model has, so that evaluation and :class:`~.detector.Detector` run them alike:

* a raw-input export (``retinanet-convert-model --raw-input``) takes the image as read: its batch is
  (1, H, W, 3) uint8 BGR and its boxes come back in that image's pixels (:class:`RawImageTransform` hands the
  image over untouched, at scale 1);
* an export of preprocessed batches takes (B, H, W, 3) float32 network input, prepared by the spec's
  :class:`InputTransform`, as the Keras model does.

The spec (class names, image sides, filter) is the one stored in the export (:mod:`keras_retinanet.export.metadata`).
"""

import os
import warnings
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..data.input_transform import InputTransform
from ..errors import ModelError
from ..export.formats import INPUT_NAME, OUTPUT_NAMES, RAW_INPUT_NAME

EXPORTED_FORMATS = ("savedmodel", "tflite", "onnx")


def exported_format(path: str) -> Optional[str]:
    """'savedmodel' for a SavedModel folder, 'tflite' / 'onnx' by extension, None for anything else."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return "savedmodel" if os.path.isfile(os.path.join(path, "saved_model.pb")) else None
    extension = os.path.splitext(path)[1].lower()
    return {".tflite": "tflite", ".onnx": "onnx"}.get(extension)


def default_threads() -> int:
    """The CPU cores this process may use (its affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class RawImageTransform(InputTransform):
    """The 'transform' of a raw-input export: the uint8 image as it is, scale 1 (the graph resizes it itself)."""

    def __init__(self):
        super().__init__("none", resize=False)

    def __call__(self, image: np.ndarray, preprocess_first: bool = False) -> Tuple[np.ndarray, float]:
        return np.ascontiguousarray(image, dtype=np.uint8), 1.0


class _Runner:
    """A runtime's session of one exported graph; subclasses implement :meth:`_run` on one input array."""

    format = ""

    def __init__(self, path: str, raw_input: bool):
        self.path = path
        self.raw_input = raw_input
        self.input_name = RAW_INPUT_NAME if raw_input else INPUT_NAME

    def _run(self, array: np.ndarray) -> Dict[str, np.ndarray]:
        raise NotImplementedError

    def predict_on_batch(self, batch: np.ndarray) -> List[np.ndarray]:
        """[boxes (B, D, 4) float32, scores (B, D) float32, labels (B, D) int32] of a batch, as a Keras model."""
        batch = np.asarray(batch)
        if self.raw_input:
            # The graph takes one image: run it per image and stack.
            results = [self._run(np.ascontiguousarray(image, dtype=np.uint8)) for image in batch]
            outputs = {name: np.stack([result[name] for result in results]) for name in OUTPUT_NAMES}
        else:
            outputs = self._run(np.ascontiguousarray(batch, dtype=np.float32))
        return [
            np.asarray(outputs["boxes"], dtype=np.float32),
            np.asarray(outputs["scores"], dtype=np.float32),
            np.asarray(outputs["labels"]).astype(np.int32),
        ]


class SavedModelRunner(_Runner):
    """A SavedModel folder's ``serving_default`` signature, run by TensorFlow."""

    format = "savedmodel"

    def __init__(self, path: str, raw_input: bool, threads: Optional[int] = None):
        super().__init__(path, raw_input)
        import tensorflow as tf

        self._tf = tf
        self._loaded = tf.saved_model.load(path)  # kept: the signature's variables live in it
        self._signature = self._loaded.signatures["serving_default"]

    def _run(self, array):
        outputs = self._signature(**{self.input_name: self._tf.constant(array)})
        return {name: value.numpy() for name, value in outputs.items()}


def _tflite_interpreter_class():
    """LiteRT's Interpreter (ai-edge-litert) where installed, else TensorFlow's tf.lite.Interpreter."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    return Interpreter


class TFLiteRunner(_Runner):
    """A ``.tflite`` file's ``serving_default`` signature, run by the TFLite interpreter.

    The interpreter applies XNNPACK (its default delegate for float ops) with ``threads`` threads.
    """

    format = "tflite"

    def __init__(self, path: str, raw_input: bool, threads: Optional[int] = None):
        super().__init__(path, raw_input)
        self.threads = threads or default_threads()
        with warnings.catch_warnings():
            # TensorFlow's tf.lite.Interpreter (used without ai-edge-litert) warns at every construction.
            warnings.filterwarnings("ignore", message=r"\s*Warning: tf\.lite\.Interpreter is deprecated")
            interpreter = _tflite_interpreter_class()(model_path=path, num_threads=self.threads)
        self._runner = interpreter.get_signature_runner("serving_default")
        self._interpreter = interpreter  # the runner holds no reference of its own

    def _run(self, array):
        return self._runner(**{self.input_name: array})


class OnnxRunner(_Runner):
    """A ``.onnx`` file run by ONNX Runtime (CPU), ``threads`` intra-op threads."""

    format = "onnx"

    def __init__(self, path: str, raw_input: bool, threads: Optional[int] = None):
        super().__init__(path, raw_input)
        try:
            import onnxruntime
        except ImportError:
            raise ModelError(f"{path}: running an .onnx model needs onnxruntime: pip install onnxruntime") from None
        self.threads = threads or default_threads()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        self._session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self._outputs = [output.name for output in self._session.get_outputs()]

    def _run(self, array):
        return dict(zip(self._outputs, self._session.run(None, {self.input_name: array})))


RUNNERS = {"savedmodel": SavedModelRunner, "tflite": TFLiteRunner, "onnx": OnnxRunner}


def open_runner(path: str, metadata: Dict[str, Any], threads: Optional[int] = None) -> _Runner:
    """The runner of an exported model, its input kind read from the stored spec's ``"input"``.

    Raises:
        ModelError: not an export, or one the runtime cannot open (the runtime's first message line).
    """
    export_format = exported_format(path)
    if export_format is None:
        raise ModelError(f"{path} is not a SavedModel folder, .tflite or .onnx file")
    raw_input = metadata.get("input") == "raw"
    try:
        return RUNNERS[export_format](path, raw_input, threads=threads)
    except ModelError:
        raise
    except Exception as error:  # each runtime raises its own types for a corrupt file
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ModelError(f"{path}: {export_format} runtime cannot open it: {first}") from error
