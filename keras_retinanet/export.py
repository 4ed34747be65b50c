"""Export an inference model, box decoding and NMS included, to deployment formats.

Formats:
    keras, h5    the Keras model file (``.keras`` / ``.h5``), as ``model.save`` writes it.
    savedmodel   a TensorFlow SavedModel folder; its ``serving_default`` signature is the detector.
    tflite       a TensorFlow Lite flatbuffer (float32, or float16 / int8 quantized weights).
    onnx         an ONNX model, through tf2onnx.

Every exported graph has one input and three outputs, named alike in every format:

    images  (B, H, W, 3) float32  BGR images resized and preprocessed as for the Keras model
                                  (``backbone.preprocess_image``: caffe means or [-1, 1] scaling).
    boxes   (B, D, 4) float32     (x1, y1, x2, y2) in input pixels, rows past the detections are -1.
    scores  (B, D) float32        best first, -1 padding.
    labels  (B, D) int32          class ids, -1 padding.

D is the model's ``max_detections``. H and W may change from call to call in every format.
Files are written atomically: to a temporary name next to the output, then renamed.
"""

import os

from .checkpoint.atomic import replace_folder, save_model_atomically, temporary_folder_for, write_bytes_atomically
from .errors import RetinaNetError

FORMATS = ("keras", "h5", "savedmodel", "tflite", "onnx")
QUANTIZATIONS = ("float16", "int8")
INPUT_NAME = "images"
OUTPUT_NAMES = ("boxes", "scores", "labels")
DEFAULT_ONNX_OPSET = 17

# The names these writers had here before they moved to checkpoint.atomic.
_write_bytes_atomically = write_bytes_atomically
_temporary_folder_for = temporary_folder_for
_replace_folder = replace_folder

_FORMAT_OF_EXTENSION = {".keras": "keras", ".h5": "h5", ".tflite": "tflite", ".onnx": "onnx", "": "savedmodel"}
# The packages each format needs beyond TensorFlow, as (module, pip name).
_EXPORT_PACKAGES = {"onnx": [("tf2onnx", "tf2onnx"), ("onnx", "onnx")]}


class ExportError(RetinaNetError, ValueError):
    """An export that cannot be done as asked: a bad format, option or missing package."""


def format_from_path(path):
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


def resolve_format(path, export_format=None):
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
    if extension and implied is not None and implied != export_format:
        raise ExportError(f"--format {export_format} does not fit the output name '{path}' (a {implied} extension)")
    if export_format == "keras" and extension != ".keras":
        raise ExportError(f"--format keras writes a .keras file; '{path}' does not end in .keras")
    return export_format


def check_export_options(export_format, quantize=None, has_representative_data=False):
    """Refuse option combinations that cannot work, before any slow step.

    Raises:
        ExportError: quantization outside TFLite, int8 without data, data without int8, a missing package.
    """
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ExportError(f"unknown quantization '{quantize}'; expected one of {', '.join(QUANTIZATIONS)}")
    if quantize is not None and export_format != "tflite":
        raise ExportError(f"--quantize applies to the tflite format only, not {export_format}")
    if quantize == "int8" and not has_representative_data:
        raise ExportError(
            "--quantize int8 needs a representative dataset to calibrate on: add one after the options, "
            "as for retinanet-train (e.g. 'csv train.csv classes.csv')"
        )
    if has_representative_data and quantize != "int8":
        raise ExportError("a dataset is only read for --quantize int8 (its images calibrate the quantization)")
    require_packages(export_format)


def require_packages(export_format):
    """Raise ExportError naming the pip packages ``export_format`` needs and lacks."""
    import importlib.util

    missing = [pip for module, pip in _EXPORT_PACKAGES.get(export_format, []) if importlib.util.find_spec(module) is None]
    if missing:
        raise ExportError(
            f"{export_format} export needs {' and '.join(missing)}: pip install 'keras-retinanet[export]' "
            f"(or pip install {' '.join(missing)})"
        )


def serving_function(model):
    """The inference model as a ``tf.function`` from ``images`` to named ``boxes``, ``scores``, ``labels``.

    Args:
        model: an inference model (outputs boxes, scores, labels first, as :func:`models.convert_model` gives).

    Returns:
        ``tf.function`` with input signature ``images`` (None, None, None, 3) float32, returning a dict.
    """
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32, name=INPUT_NAME)])
    def detect(images):
        boxes, scores, labels = model(images, training=False)[:3]
        return {"boxes": boxes, "scores": scores, "labels": labels}

    return detect


def frozen_serving_function(model):
    """:func:`serving_function` with the weights folded in as constants.

    The TFLite converter keeps Keras 3's resource variables as VAR_HANDLE/READ_VARIABLE ops without
    their values (a 200 KB file that fails at run time with "gather index out of bounds" in the NMS
    loop); a graph with constants converts correctly.

    Returns:
        concrete function of ``images`` returning the dict of named outputs.
    """
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    detect = serving_function(model).get_concrete_function()
    frozen = convert_variables_to_constants_v2(detect)

    # The frozen function returns a flat list; this wrapper names the outputs again.
    @tf.function(input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32, name=INPUT_NAME)])
    def frozen_detect(images):
        return tf.nest.pack_sequence_as(detect.structured_outputs, frozen(images))

    return frozen_detect.get_concrete_function()


def export_model(model, path, export_format=None, quantize=None, representative_images=None, opset=None):
    """Write an inference model to ``path`` in ``export_format`` (inferred from ``path`` if None).

    Args:
        model: the inference model.
        path: output file, or folder for a SavedModel.
        export_format: one of :data:`FORMATS`, or None.
        quantize: TFLite only: None (float32), 'float16' or 'int8'.
        representative_images: for int8, a callable returning an iterable of (1, H, W, 3) float32
            preprocessed images (see :func:`representative_images`).
        opset: ONNX opset (default :data:`DEFAULT_ONNX_OPSET`).

    Returns:
        ``path``.
    """
    export_format = resolve_format(path, export_format)
    check_export_options(export_format, quantize, representative_images is not None)
    if export_format in ("keras", "h5"):
        return save_model_atomically(model, path)
    if export_format == "savedmodel":
        return save_savedmodel(model, path)
    if export_format == "tflite":
        return save_tflite(model, path, quantize=quantize, representative_images=representative_images)
    return save_onnx(model, path, opset=opset)


def save_savedmodel(model, path):
    """Write a SavedModel folder whose ``serving_default`` signature detects; returns ``path``."""
    import tensorflow as tf

    if os.path.isfile(path):
        raise ExportError(f"'{path}' is a file; a SavedModel is written as a folder")
    module = tf.Module()
    module.model = model  # tracked, so that the weights are saved as the signature's variables
    module.detect = serving_function(model)
    with temporary_folder_for(path) as temporary:
        tf.saved_model.save(module, temporary, signatures={"serving_default": module.detect})
        replace_folder(temporary, os.path.abspath(path))
    return path


def save_tflite(model, path, quantize=None, representative_images=None):
    """Write a TFLite model with the ``serving_default`` signature; returns ``path``.

    Args:
        quantize: None keeps float32; 'float16' stores the weights as float16; 'int8' quantizes weights
            and activations, calibrated on ``representative_images`` (a callable giving an iterable of
            (1, H, W, 3) float32 images). Inputs and outputs stay float32, and so do the heads' last
            convolutions, anchors, box decoding, scores and NMS (``FLOAT32_LAYER_NAMES``).
    """
    import tensorflow as tf

    detect = frozen_serving_function(model)
    # The empty module only gives the converter somewhere to hang the signature.
    converter = tf.lite.TFLiteConverter.from_concrete_functions([detect], tf.Module())
    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([image] for image in representative_images())
    try:
        flatbuffer = _convert_int8_keeping_float_layers(converter) if quantize == "int8" else converter.convert()
    except ExportError:
        raise
    except Exception as error:  # the converter raises its own ConverterError with the failing op
        raise ExportError(f"TFLite conversion failed: {str(error).strip().splitlines()[0]}") from error
    return write_bytes_atomically(flatbuffer, path)


def _convert_int8_keeping_float_layers(converter):
    """int8 TFLite flatbuffer in which the layers :func:`models.retinanet.keeps_float32` names stay float32.

    Quantizing the whole graph also quantizes the anchors, box decoding, clipping and scores
    (256 levels over an 800 px image), which breaks NMS. So the model is first only calibrated, then
    quantized with TFLite's selective quantization, every op of those layers on its denylist (as
    ``tf.lite.experimental.QuantizationDebugger`` does; its own constructor cannot be used here, it also
    builds a numeric-verify model that fails on the padding inside FilterDetections' loop).
    """
    import tensorflow as tf

    try:
        from tensorflow.lite.python.convert import mlir_quantize
    except ImportError as error:  # the entry point TFLite's QuantizationDebugger uses
        raise ExportError(f"int8 export needs TFLite's selective quantization, missing in TensorFlow {tf.__version__}") from error
    converter._experimental_calibrate_only = True
    calibrated = converter.convert()
    return mlir_quantize(calibrated, denylisted_nodes=float_node_names(calibrated))


def float_node_names(flatbuffer):
    """Names of the ops of a TFLite model that belong to layers :func:`models.retinanet.keeps_float32` names.

    TFLite names an op by the TensorFlow name scopes of its output, e.g.
    ``retinanet-bbox_1/clipped_boxes_1/Minimum`` (layer ``clipped_boxes``) or, for fused ops, several such
    names joined by ``;``. A scope is a layer name, possibly followed by one Keras call suffix
    (``pyramid_classification_4`` is the head's last conv, ``pyramid_classification_0_1`` its first hidden one,
    ``anchors_3_1`` the anchors of level 3).

    Returns:
        sorted list of op names, each fused name also split into its parts.
    """
    import re

    from .models.retinanet import keeps_float32

    def in_float_layer(scope):
        return keeps_float32(scope) or keeps_float32(re.sub(r"_\d+$", "", scope))

    names = set()
    for name in _op_output_names(flatbuffer):
        parts = name.split(";")
        if any(in_float_layer(scope) for part in parts for scope in part.split("/")):
            names.update([name, *parts])
    return sorted(names)


def _op_output_names(flatbuffer):
    """The name of each op's first output, over every subgraph (NMS runs inside a WHILE loop's body)."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    for subgraph in model.subgraphs:
        for operator in subgraph.operators:
            if len(operator.outputs) and operator.outputs[0] >= 0:
                yield subgraph.tensors[operator.outputs[0]].name.decode()


def save_onnx(model, path, opset=None):
    """Write an ONNX model (through tf2onnx) with dynamic batch, height and width; returns ``path``."""
    require_packages("onnx")
    import tf2onnx

    opset = DEFAULT_ONNX_OPSET if opset is None else int(opset)
    detect = serving_function(model)
    model_proto, _ = tf2onnx.convert.from_function(detect, input_signature=detect.input_signature, opset=opset)
    _name_dynamic_dimensions(model_proto)
    write_bytes_atomically(model_proto.SerializeToString(), path)
    return path


def _name_dynamic_dimensions(model_proto):
    """Give the free dimensions readable names (tf2onnx calls them unk__N)."""
    names = {INPUT_NAME: ("batch", "height", "width", None)}
    names.update({name: ("batch",) for name in OUTPUT_NAMES})
    for value in list(model_proto.graph.input) + list(model_proto.graph.output):
        for dimension, name in zip(value.type.tensor_type.shape.dim, names.get(value.name, ())):
            if name is not None and not dimension.HasField("dim_value"):
                dimension.dim_param = name


def representative_images(generator, count=100):
    """Images of a dataset as the model sees them, for int8 calibration.

    ``count`` images evenly spread over the dataset are read and turned into network
    input by the generator's ``input_transform`` (resized, then preprocessed, as training
    does; without augmentation).

    Args:
        generator: a :class:`keras_retinanet.preprocessing.generator.Generator`.
        count: how many images (all of them if the dataset is smaller).

    Returns:
        a callable returning a fresh iterator of (1, H, W, 3) float32 arrays.
    """
    import keras
    import numpy as np

    size = generator.size()
    if size == 0:
        raise ExportError("the representative dataset has no images")
    indices = np.unique(np.linspace(0, size - 1, num=min(int(count), size)).round().astype(int))

    def images():
        progress = keras.utils.Progbar(len(indices), unit_name="image")
        for step, index in enumerate(indices, start=1):
            network_input, _ = generator.input_transform(generator.load_image(int(index)))
            yield network_input[np.newaxis]
            progress.update(step)

    return images
