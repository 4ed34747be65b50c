"""What model files store, read at the lowest level: HDF5 texts and groups, and JSON kept beside the model.

Every reader of :mod:`keras_retinanet.checkpoint` goes through these, so that an
unreadable or truncated file always ends in a :class:`ModelFileError` naming it.
"""

import json
import re
import zipfile
from typing import Any, Iterable, List, Optional

import h5py

from ..errors import ModelFileError


def decode_text(value: Any) -> str:
    """An HDF5 attribute value as text (h5py gives bytes or str, depending on how it was written)."""
    if isinstance(value, bytes):
        return value.decode("utf8")
    return str(value)


def decode_texts(values: Iterable[Any]) -> List[str]:
    """:func:`decode_text` of every value, e.g. of a ``layer_names`` or ``weight_names`` attribute."""
    return [decode_text(value) for value in values]


def open_hdf5(path: str) -> h5py.File:
    """``path`` opened read-only as HDF5.

    Raises:
        ModelFileError: the file is not HDF5 (or is truncated).
    """
    try:
        return h5py.File(path, "r")
    except (OSError, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelFileError(path, f"not a readable HDF5 file; is it truncated or corrupt? ({reason})") from None


def weights_group(handle: h5py.Group) -> h5py.Group:
    """The group holding the per-layer weights: ``model_weights`` in a model file, the root in a weights file."""
    if "model_weights" in handle:
        return handle["model_weights"]
    return handle


def read_stored_json(filepath: str, keras_member: str, h5_attribute: str, what: str) -> Optional[Any]:
    """JSON stored in a ``.keras`` zip member or an ``.h5`` root attribute; None when absent.

    Args:
        filepath: the model file; its extension says which of the two places to read.
        keras_member: name of the member in a ``.keras`` archive.
        h5_attribute: name of the root attribute in an ``.h5`` file.
        what: the content, named in error messages ('the model configuration').

    Raises:
        ModelFileError: the file cannot be read.
    """
    try:
        if filepath.lower().endswith(".keras"):
            with zipfile.ZipFile(filepath) as archive:
                if keras_member not in archive.namelist():
                    return None
                text = archive.read(keras_member).decode("utf-8")
        else:
            with h5py.File(filepath, "r") as handle:
                text = handle.attrs.get(h5_attribute)
                if text is None:
                    return None
                text = decode_text(text)
        return json.loads(text)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise ModelFileError(filepath, f"cannot read {what} ({error}); is the file truncated?") from None


def keras_major_version(path):
    """The major Keras version that wrote an HDF5 model file (2 for keras-retinanet files).

    Returns:
        int, or None when the file does not say (weights-only files).

    Raises:
        ModelFileError: the file cannot be opened as HDF5.
    """
    with open_hdf5(path) as handle:
        version = handle.attrs.get("keras_version")
        if version is None and "model_weights" in handle:
            version = handle["model_weights"].attrs.get("keras_version")
    if version is None:
        return None
    match = re.match(r"\s*(\d+)", decode_text(version))
    return int(match.group(1)) if match else None
