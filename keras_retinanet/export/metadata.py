"""The detector spec inside exported files, and reading it back.

Every export of a model that carries a :class:`DetectorSpec` stores it as JSON (``spec.to_dict()``
plus ``"input"``: ``"raw"`` for a graph that takes one uint8 image, ``"preprocessed"`` for one that
takes resized, preprocessed float batches):

    savedmodel  the file ``assets/keras_retinanet_spec.json``, and a ``spec`` signature without inputs
                that returns it as a string (``tf.saved_model.load(path).signatures['spec']()['spec']``).
    tflite      a metadata entry ``keras_retinanet_spec`` of the flatbuffer (its buffer holds the JSON).
    onnx        the ``metadata_props`` key ``keras_retinanet_spec``
                (``onnxruntime.InferenceSession(path).get_modelmeta().custom_metadata_map``).

TensorFlow and onnx are imported inside the functions, so that importing the export package stays fast.
"""

import json
import os
from typing import Any, Dict, Optional

from ..config.spec import DetectorSpec
from .formats import ExportError

METADATA_KEY = "keras_retinanet_spec"
SAVEDMODEL_SPEC_FILE = os.path.join("assets", METADATA_KEY + ".json")


def spec_json(spec: DetectorSpec, raw_input: bool) -> str:
    """The JSON stored in an export: the spec's settings and what the graph's input is."""
    return json.dumps({**spec.to_dict(), "input": "raw" if raw_input else "preprocessed"}, sort_keys=True)


def add_tflite_metadata(flatbuffer: bytes, text: str) -> bytes:
    """``flatbuffer`` with a metadata entry :data:`METADATA_KEY` whose buffer holds ``text`` (UTF-8)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    buffer = schema.BufferT()
    buffer.data = list(text.encode("utf-8"))
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_KEY
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name != METADATA_KEY.encode()] + [entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def read_tflite_metadata(flatbuffer: bytes) -> Optional[str]:
    """The text of the :data:`METADATA_KEY` entry of a TFLite flatbuffer, or None."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    for entry in model.metadata or []:
        name = entry.name.decode() if isinstance(entry.name, bytes) else entry.name
        if name == METADATA_KEY:
            return bytes(bytearray(model.buffers[entry.buffer].data)).decode("utf-8")
    return None


def add_onnx_metadata(model_proto, text: str) -> None:
    """Set the ``metadata_props`` entry :data:`METADATA_KEY` of an ONNX ModelProto to ``text``, in place."""
    for prop in list(model_proto.metadata_props):
        if prop.key == METADATA_KEY:
            model_proto.metadata_props.remove(prop)
    prop = model_proto.metadata_props.add()
    prop.key, prop.value = METADATA_KEY, text


def read_exported_metadata(path: str) -> Optional[Dict[str, Any]]:
    """The stored JSON of an exported SavedModel folder, ``.tflite`` or ``.onnx`` file, or None if it has none.

    Raises:
        ExportError: not an export of one of these formats.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        spec_file = os.path.join(path, SAVEDMODEL_SPEC_FILE)
        if not os.path.isfile(spec_file):
            return None
        with open(spec_file, encoding="utf-8") as file:
            return json.load(file)
    extension = os.path.splitext(path)[1].lower()
    if extension == ".tflite":
        with open(path, "rb") as file:
            text = read_tflite_metadata(file.read())
    elif extension == ".onnx":
        import onnx

        # The weights are not needed to read the properties.
        props = onnx.load(path, load_external_data=False).metadata_props
        text = next((prop.value for prop in props if prop.key == METADATA_KEY), None)
    else:
        raise ExportError(f"'{path}' is not an exported SavedModel folder, .tflite or .onnx file")
    return json.loads(text) if text is not None else None


def read_exported_spec(path: str) -> Optional[DetectorSpec]:
    """The :class:`DetectorSpec` stored in an export (see :func:`read_exported_metadata`), or None."""
    values = read_exported_metadata(path)
    return DetectorSpec.from_dict(values) if values is not None else None
