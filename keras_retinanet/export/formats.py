"""Export formats and options: which format an output name asks for, which option combinations work.

Nothing here imports TensorFlow: the commands check their options with these before any slow step,
and ``--help`` stays fast.
"""

import importlib.util
import os
from typing import Optional

from ..errors import ExportError

FORMATS = ("keras", "h5", "h5-keras2", "savedmodel", "tflite", "onnx")
QUANTIZATIONS = ("float16", "int8")
# The quantizations each format can be written with.
FORMAT_QUANTIZATIONS = {"tflite": ("float16", "int8"), "onnx": ("int8",)}
# The formats whose graph can take raw images (the Keras files keep the Keras model itself).
RAW_INPUT_FORMATS = ("savedmodel", "tflite", "onnx")
INPUT_NAME = "images"
RAW_INPUT_NAME = "image"
OUTPUT_NAMES = ("boxes", "scores", "labels")
DEFAULT_ONNX_OPSET = 17

_FORMAT_OF_EXTENSION = {".keras": "keras", ".h5": "h5", ".tflite": "tflite", ".onnx": "onnx", "": "savedmodel"}
# The packages each format needs beyond TensorFlow, as (module, pip name).
_EXPORT_PACKAGES = {
    "onnx": [("tf2onnx", "tf2onnx"), ("onnx", "onnx")],
    "onnx-int8": [("tf2onnx", "tf2onnx"), ("onnx", "onnx"), ("onnxruntime", "onnxruntime")],  # its quantizer
}


def format_from_path(path: str) -> str:
    """The export format an output path asks for: by extension, a folder for a SavedModel.

    Raises:
        ExportError: the extension names no format.
    """
    extension = os.path.splitext(os.path.normpath(path))[1].lower()
    if extension not in _FORMAT_OF_EXTENSION:
        raise ExportError(
            f"cannot tell the format of '{path}' from its extension; use .keras, .h5, .tflite, .onnx, "
            f"a folder name without extension (SavedModel), or --format {{{','.join(FORMATS)}}}"
        )
    return _FORMAT_OF_EXTENSION[extension]


def resolve_format(path: str, export_format: Optional[str] = None) -> str:
    """The format to write ``path`` in: ``export_format`` if given (checked against the extension), else inferred.

    Raises:
        ExportError: unknown format, or an extension that belongs to another format.
    """
    if export_format is None:
        return format_from_path(path)
    if export_format not in FORMATS:
        raise ExportError(f"unknown format '{export_format}'; expected one of {', '.join(FORMATS)}")
    extension = os.path.splitext(os.path.normpath(path))[1].lower()
    implied = _FORMAT_OF_EXTENSION.get(extension)
    if export_format == "h5-keras2" and extension != ".h5":
        raise ExportError(f"--format h5-keras2 writes a Keras 2 .h5 file; '{path}' does not end in .h5")
    if extension and implied is not None and implied != export_format and export_format != "h5-keras2":
        raise ExportError(f"--format {export_format} does not fit the output name '{path}' (a {implied} extension)")
    if export_format == "keras" and extension != ".keras":
        raise ExportError(f"--format keras writes a .keras file; '{path}' does not end in .keras")
    return export_format


def check_export_options(
    export_format: str, quantize: Optional[str] = None, has_representative_data: bool = False, raw_input: bool = False
) -> None:
    """Refuse option combinations that cannot work, before any slow step.

    Raises:
        ExportError: a quantization the format cannot be written with, int8 without data, data without
            int8, raw input for a Keras file or an int8 TFLite file, a missing package.
    """
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ExportError(f"unknown quantization '{quantize}'; expected one of {', '.join(QUANTIZATIONS)}")
    if quantize is not None and quantize not in FORMAT_QUANTIZATIONS.get(export_format, ()):
        formats = " and ".join(name for name, kinds in FORMAT_QUANTIZATIONS.items() if quantize in kinds)
        noun = "formats" if " and " in formats else "format"
        raise ExportError(f"--quantize {quantize} applies to the {formats} {noun} only, not {export_format}")
    if quantize == "int8" and not has_representative_data:
        raise ExportError(
            "--quantize int8 needs a representative dataset to calibrate on: add one after the options, "
            "as for retinanet-train (e.g. 'csv train.csv classes.csv')"
        )
    if has_representative_data and quantize != "int8":
        raise ExportError("a dataset is only read for --quantize int8 (its images calibrate the quantization)")
    if raw_input and export_format not in RAW_INPUT_FORMATS:
        raise ExportError(
            f"--raw-input applies to the {', '.join(RAW_INPUT_FORMATS)} formats, not {export_format} "
            "(a Keras file keeps the Keras model; load it with load_detector to use raw images)"
        )
    if raw_input and quantize == "int8" and export_format == "tflite":
        # TFLite's calibration also quantizes tensors of the in-graph resize (sizes, positions) and the detections
        # then differ from the float model's; ONNX Runtime's quantizes only the op types it is given (onnx_int8).
        raise ExportError(
            "--raw-input cannot be combined with --quantize int8 for tflite yet; leave out --raw-input, "
            "or export to .onnx, whose int8 graph takes raw images"
        )
    require_packages("onnx-int8" if export_format == "onnx" and quantize == "int8" else export_format)


def require_packages(export_format: str) -> None:
    """Raise ExportError naming the pip packages ``export_format`` needs and lacks."""
    missing = [pip for module, pip in _EXPORT_PACKAGES.get(export_format, []) if importlib.util.find_spec(module) is None]
    if missing:
        raise ExportError(
            f"{export_format} export needs {' and '.join(missing)}: pip install 'keras3-retinanet[export]' "
            f"(or pip install {' '.join(missing)})"
        )
