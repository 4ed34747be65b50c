"""The writers of each export format: the detector graph, its weights and its spec, written atomically.

TensorFlow (and tf2onnx) are imported inside the functions: :mod:`keras_retinanet.export` is imported
by the commands, whose ``--help`` and argument errors should not wait for TensorFlow.
"""

import json
import os
from typing import Callable, Iterable, Optional

from ..atomic_files import replace_folder, save_model_atomically, temporary_folder_for, write_bytes_atomically
from ..config.spec import DetectorSpec
from . import metadata
from .float_parts import float_op_names
from .formats import DEFAULT_ONNX_OPSET, INPUT_NAME, OUTPUT_NAMES, RAW_INPUT_NAME, ExportError, check_export_options
from .formats import require_packages, resolve_format
from .raw_input import raw_serving_function


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


def detector_function(model, raw_input: bool = False, spec: Optional[DetectorSpec] = None):
    """:func:`serving_function`, or with ``raw_input`` :func:`raw_serving_function` (which needs ``spec``)."""
    return raw_serving_function(model, spec) if raw_input else serving_function(model)


def frozen_serving_function(model, detect=None):
    """A serving function (default :func:`serving_function`) with the weights folded in as constants.

    The TFLite converter keeps Keras 3's resource variables as VAR_HANDLE/READ_VARIABLE ops without
    their values (a 200 KB file that fails at run time with "gather index out of bounds" in the NMS
    loop); a graph with constants converts correctly.

    Returns:
        concrete function of the serving function's input returning the dict of named outputs.
    """
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    detect = serving_function(model) if detect is None else detect
    concrete = detect.get_concrete_function()
    frozen = convert_variables_to_constants_v2(concrete)

    # The frozen function returns a flat list; this wrapper names the outputs again.
    @tf.function(input_signature=detect.input_signature)
    def frozen_detect(inputs):
        return tf.nest.pack_sequence_as(concrete.structured_outputs, frozen(inputs))

    return frozen_detect.get_concrete_function()


def export_model(
    model,
    path,
    export_format: Optional[str] = None,
    quantize: Optional[str] = None,
    representative_images: Optional[Callable[[], Iterable]] = None,
    opset: Optional[int] = None,
    raw_input: bool = False,
    spec: Optional[DetectorSpec] = None,
):
    """Write an inference model to ``path`` in ``export_format`` (inferred from ``path`` if None).

    Args:
        model: the inference model.
        path: output file, or folder for a SavedModel.
        export_format: one of :data:`FORMATS`, or None.
        quantize: None (float32); TFLite: 'float16' or 'int8'; ONNX: 'int8'.
        representative_images: for int8, a callable returning an iterable of network inputs: (1, H, W, 3)
            float32 preprocessed images, or with ``raw_input`` (H, W, 3) uint8 images (see
            :func:`representative_images`).
        opset: ONNX opset (default :data:`DEFAULT_ONNX_OPSET`).
        raw_input: the graph takes one (H, W, 3) uint8 BGR image of any size; it preprocesses and
            resizes it as the spec says and returns boxes in its pixels (see :mod:`.raw_input`).
        spec: the model's spec (default: the one it carries); stored in the export's metadata.

    Returns:
        ``path``.

    Raises:
        ExportError: bad options, or ``raw_input`` for a model without a spec.
    """
    export_format = resolve_format(path, export_format)
    check_export_options(export_format, quantize, representative_images is not None, raw_input=raw_input)
    _check_filter_exportable(model, export_format)
    if export_format in ("keras", "h5"):
        return save_model_atomically(model, path)
    if export_format == "h5-keras2":
        # A Keras 2 file for tf.keras 2.x and keras-retinanet 1.0.0: that format's home is models.legacy (its
        # reader, builder and writer); imported only when asked for.
        from ..models.legacy.writer import save_keras2_h5

        return save_keras2_h5(model, path)
    if spec is None:
        # Imported here: models loads Keras and TensorFlow, which this package's import avoids.
        from ..models.model_with_spec import spec_of

        spec = spec_of(model)
    if raw_input and spec is None:
        raise ExportError("--raw-input needs the model's spec (preprocessing and image sides); this model has none")
    detect = detector_function(model, raw_input, spec)
    text = metadata.spec_json(spec, raw_input) if spec is not None else None
    if export_format == "savedmodel":
        return save_savedmodel(model, path, detect=detect, spec_text=text)
    if export_format == "tflite":
        return save_tflite(
            model, path, quantize=quantize, representative_images=representative_images, detect=detect, spec_text=text
        )
    return save_onnx(
        model, path, opset=opset, detect=detect, spec_text=text, quantize=quantize, representative_images=representative_images
    )


def _check_filter_exportable(model, export_format: str) -> None:
    """Refuse filter settings a format cannot carry, rather than write a file that silently filters otherwise.

    ONNX has no Soft-NMS (tf2onnx turns TensorFlow's into hard NMS); keras-retinanet 1.0.0's filter (h5-keras2) has
    neither Soft-NMS nor a candidate cap.

    Raises:
        ExportError: naming the setting and what to do.
    """
    from ..layers import FilterDetections

    layer = next((layer for layer in model.layers if isinstance(layer, FilterDetections)), None)
    if layer is None:
        return
    if layer.nms_method == "soft" and export_format in ("onnx", "h5-keras2"):
        raise ExportError(
            f"{export_format} cannot carry Soft-NMS (its filter would run hard NMS); convert with --nms hard for "
            "this format, or export Soft-NMS models as savedmodel, tflite or keras"
        )
    if layer.max_candidates_per_level is not None and export_format == "h5-keras2":
        raise ExportError(
            "h5-keras2 cannot carry --max-candidates-per-level (keras-retinanet 1.0.0's filter has no cap); "
            "convert without it for this format"
        )


def save_savedmodel(model, path, detect=None, spec_text: Optional[str] = None):
    """Write a SavedModel folder whose ``serving_default`` signature detects; returns ``path``.

    Args:
        detect: the serving function (default :func:`serving_function`).
        spec_text: the spec JSON: written to ``assets/keras_retinanet_spec.json`` and returned by a
            ``spec`` signature, or None.
    """
    import tensorflow as tf

    if os.path.isfile(path):
        raise ExportError(f"'{path}' is a file; a SavedModel is written as a folder")
    module = tf.Module()
    module.model = model  # tracked, so that the weights are saved as the signature's variables
    module.detect = serving_function(model) if detect is None else detect
    signatures = {"serving_default": module.detect}
    if spec_text is not None:

        @tf.function(input_signature=[])
        def spec():
            return {"spec": tf.constant(spec_text)}

        module.spec = spec
        signatures["spec"] = spec
    with temporary_folder_for(path) as temporary:
        tf.saved_model.save(module, temporary, signatures=signatures)
        if spec_text is not None:
            # A plain file too: readable without TensorFlow.
            os.makedirs(os.path.join(temporary, "assets"), exist_ok=True)
            with open(os.path.join(temporary, metadata.SAVEDMODEL_SPEC_FILE), "w", encoding="utf-8") as file:
                file.write(json.dumps(json.loads(spec_text), indent=2, sort_keys=True))
        replace_folder(temporary, os.path.abspath(path))
    return path


def save_tflite(model, path, quantize=None, representative_images=None, detect=None, spec_text: Optional[str] = None):
    """Write a TFLite model with the ``serving_default`` signature; returns ``path``.

    Args:
        quantize: None keeps float32; 'float16' stores the weights as float16; 'int8' quantizes weights
            and activations, calibrated on ``representative_images`` (a callable giving an iterable of
            the graph's inputs). Inputs and outputs keep their types, and the heads' last convolutions,
            anchors, box decoding, scores, NMS and the raw input's resizing stay float32
            (:mod:`.float_parts`).
        detect: the serving function (default :func:`serving_function`).
        spec_text: the spec JSON, stored as the metadata entry ``keras_retinanet_spec``, or None.
    """
    import tensorflow as tf

    concrete = frozen_serving_function(model, detect)
    # The empty module only gives the converter somewhere to hang the signature.
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], tf.Module())
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
    if spec_text is not None:
        flatbuffer = metadata.add_tflite_metadata(flatbuffer, spec_text)
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
    """Names of the ops of a TFLite model that stay float32 (:func:`.float_parts.float_op_names`).

    Returns:
        sorted list of op names, each fused name also split into its parts.
    """
    return float_op_names(_op_output_names(flatbuffer))


def _op_output_names(flatbuffer):
    """The name of each op's first output, over every subgraph (NMS runs inside a WHILE loop's body)."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    for subgraph in model.subgraphs:
        for operator in subgraph.operators:
            if len(operator.outputs) and operator.outputs[0] >= 0:
                yield subgraph.tensors[operator.outputs[0]].name.decode()


def save_onnx(
    model, path, opset=None, detect=None, spec_text: Optional[str] = None, quantize=None, representative_images=None
):
    """Write an ONNX model (through tf2onnx) with dynamic input sizes; returns ``path``.

    Args:
        detect: the serving function (default :func:`serving_function`).
        spec_text: the spec JSON, stored as the ``metadata_props`` key ``keras_retinanet_spec``, or None.
        quantize: None keeps float32; 'int8' quantizes with ONNX Runtime's static quantization, calibrated on
            ``representative_images`` (a callable giving an iterable of the graph's inputs), the post-processing
            kept float32 (see :mod:`.onnx_int8`).
    """
    require_packages("onnx-int8" if quantize == "int8" else "onnx")
    import tf2onnx

    opset = DEFAULT_ONNX_OPSET if opset is None else int(opset)
    detect = serving_function(model) if detect is None else detect
    model_proto, _ = tf2onnx.convert.from_function(detect, input_signature=detect.input_signature, opset=opset)
    if quantize == "int8":
        from .onnx_int8 import quantize_onnx_int8

        model_proto = quantize_onnx_int8(model_proto, representative_images, os.path.dirname(os.path.abspath(path)))
    _name_dynamic_dimensions(model_proto)
    if spec_text is not None:
        metadata.add_onnx_metadata(model_proto, spec_text)
    write_bytes_atomically(model_proto.SerializeToString(), path)
    return path


def _name_dynamic_dimensions(model_proto):
    """Give the free dimensions readable names (tf2onnx calls them unk__N)."""
    names = {INPUT_NAME: ("batch", "height", "width", None), RAW_INPUT_NAME: ("height", "width", None)}
    names.update({name: ("batch",) for name in OUTPUT_NAMES})
    for value in list(model_proto.graph.input) + list(model_proto.graph.output):
        for dimension, name in zip(value.type.tensor_type.shape.dim, names.get(value.name, ())):
            if name is not None and not dimension.HasField("dim_value"):
                dimension.dim_param = name


def representative_images(generator, count=100, raw_input=False):
    """Images of a dataset as the exported graph takes them, for int8 calibration.

    ``count`` images evenly spread over the dataset are read and turned into network
    input by the generator's ``input_transform`` (resized, then preprocessed, as training
    does; without augmentation), or with ``raw_input`` given as read.

    Args:
        generator: a :class:`keras_retinanet.readers.generator.Generator`.
        count: how many images (all of them if the dataset is smaller).
        raw_input: give the images as read, (H, W, 3) uint8 BGR, for a graph that takes raw images.

    Returns:
        a callable returning a fresh iterator of (1, H, W, 3) float32 arrays, or (H, W, 3) uint8 ones.
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
            image = generator.load_image(int(index))
            if raw_input:
                yield np.ascontiguousarray(image, dtype=np.uint8)
            else:
                network_input, _ = generator.input_transform(image)
                yield network_input[np.newaxis]
            progress.update(step)

    return images
