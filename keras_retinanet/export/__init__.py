"""Export an inference model, box decoding and NMS included, to deployment formats.

Formats:
    keras, h5    the Keras model file (``.keras`` / ``.h5``), as ``model.save`` writes it.
    h5-keras2    a Keras 2.4 style ``.h5`` that tf.keras 2.x and keras-retinanet 1.0.0 load
                 (:mod:`keras_retinanet.models.legacy.writer`).
    savedmodel   a TensorFlow SavedModel folder; its ``serving_default`` signature is the detector.
    tflite       a TensorFlow Lite flatbuffer (float32, or float16 / int8 quantized weights).
    onnx         an ONNX model, through tf2onnx (float32, or int8 by ONNX Runtime's static quantization).

Every exported graph has one input and three outputs, named alike in every format. By default:

    images  (B, H, W, 3) float32  BGR images resized and preprocessed as for the Keras model
                                  (``backbone.preprocess_image``: caffe means or [-1, 1] scaling).
    boxes   (B, D, 4) float32     (x1, y1, x2, y2) in input pixels, rows past the detections are -1.
    scores  (B, D) float32        best first, -1 padding.
    labels  (B, D) int32          class ids, -1 padding.

With ``raw_input`` (``retinanet-convert-model --raw-input``) the graph takes one image as read:

    image   (H, W, 3) uint8       one BGR image of any size (no batch dimension).
    boxes   (D, 4) float32        in that image's own pixels, -1 padding.
    scores  (D,) float32, labels (D,) int32.

and preprocesses and resizes it inside, as the model's spec says (see :mod:`.raw_input`).

D is the model's ``max_detections``. H and W may change from call to call in every format.
A model that carries a spec has it stored in the export (see :mod:`.metadata`; read it back with
:func:`read_exported_spec`). Files are written atomically: to a temporary name next to the output,
then renamed.

Nothing here imports TensorFlow at import time (the commands import this package, and their
``--help`` should not wait for TensorFlow); the writers import it when they run.
"""

from .formats import (
    DEFAULT_ONNX_OPSET,
    FORMATS,
    INPUT_NAME,
    OUTPUT_NAMES,
    QUANTIZATIONS,
    RAW_INPUT_FORMATS,
    RAW_INPUT_NAME,
    ExportError,
    check_export_options,
    format_from_path,
    require_packages,
    resolve_format,
)
from .metadata import METADATA_KEY, read_exported_metadata, read_exported_spec
from .raw_input import raw_serving_function
from .writers import (
    export_model,
    float_node_names,
    frozen_serving_function,
    representative_images,
    save_onnx,
    save_savedmodel,
    save_tflite,
    serving_function,
)

__all__ = [
    "DEFAULT_ONNX_OPSET",
    "FORMATS",
    "INPUT_NAME",
    "METADATA_KEY",
    "OUTPUT_NAMES",
    "QUANTIZATIONS",
    "RAW_INPUT_FORMATS",
    "RAW_INPUT_NAME",
    "ExportError",
    "check_export_options",
    "export_model",
    "float_node_names",
    "format_from_path",
    "frozen_serving_function",
    "raw_serving_function",
    "read_exported_metadata",
    "read_exported_spec",
    "representative_images",
    "require_packages",
    "resolve_format",
    "save_onnx",
    "save_savedmodel",
    "save_tflite",
    "serving_function",
]
