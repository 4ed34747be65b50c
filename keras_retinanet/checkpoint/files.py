"""Loading this package's model files with errors that say what went wrong.

:func:`model_file_kind` tells the two kinds of model files apart without loading either:

* files written by this package (Keras 3 ``.keras``, or Keras 3 legacy ``.h5``), loaded here with
  ``keras.models.load_model`` (:func:`load_model_file`);
* ``.h5`` files of Keras 2, the format of fizyr's keras-retinanet, which :mod:`keras_retinanet.models.legacy`
  reads and rebuilds with the package's builders (``models.load_model`` sends them there).
"""

import os
import re
import zipfile
from typing import Any, Optional, Set

import keras

from ..config.spec import DetectorSpec
from ..errors import ModelFileError
from .optimizer import rebind_optimizer
from .storage import keras_major_version, read_stored_json

MODEL_EXTENSIONS = (".keras", ".h5", ".hdf5")

# Layer classes whose configuration carries code to run (Python bytecode or a function to import).
CODE_LAYER_CLASSES = frozenset({"Lambda", "TFOpLambda", "SlicingOpLambda"})

# How the commands let a user load such a file anyway.
UNSAFE_FLAG = "--unsafe-load"


def model_file_kind(filepath: str) -> str:
    """Which loader a model file needs.

    Returns:
        'keras3' (this package's files) or 'keras2' (an HDF5 file that Keras 2 wrote, or that records no
        Keras version: keras-retinanet's format, which :mod:`keras_retinanet.models.legacy` reads).

    Raises:
        ModelFileError: unknown extension, a ``.keras`` file that is no zip archive, or a file that cannot be
            opened as HDF5 (unreadable or truncated).
    """
    extension = os.path.splitext(filepath)[1].lower()
    if extension not in MODEL_EXTENSIONS:
        raise ModelFileError(filepath, f"unknown model file type '{extension}'; expected .keras or .h5")
    if extension == ".keras":
        if not zipfile.is_zipfile(filepath):
            raise ModelFileError(filepath, "not a .keras archive (not a zip file); is it truncated or corrupt?")
        return "keras3"
    major = keras_major_version(filepath)  # raises ModelFileError if not HDF5
    return "keras3" if major is not None and major >= 3 else "keras2"


def layer_classes(config: Any) -> Set[str]:
    """Every ``class_name`` in a (nested) Keras model configuration.

    Args:
        config: the parsed JSON configuration (dicts and lists).

    Returns:
        set of class names.
    """
    found = set()
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("class_name"), str):
                found.add(node["class_name"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def read_model_config(filepath: str) -> Optional[Any]:
    """The model configuration a Keras 3 ``.keras`` or ``.h5`` file stores, without building anything.

    Returns:
        the parsed configuration, or None when the file holds none (a weights-only file).

    Raises:
        ModelFileError: the configuration cannot be read.
    """
    return read_stored_json(filepath, "config.json", "model_config", "the model configuration")


def read_spec(filepath: str) -> Optional[DetectorSpec]:
    """The :class:`DetectorSpec` a model file of this package stores, without building the model.

    Returns:
        the spec, or None for files without one (Keras 2 files such as keras-retinanet's, weights-only files,
        models saved before specs were stored).

    Raises:
        ModelFileError: the file cannot be read.
    """
    filepath = os.fspath(filepath)
    if model_file_kind(filepath) != "keras3":
        return None
    config = read_model_config(filepath)
    spec = ((config or {}).get("config") or {}).get("spec") if isinstance(config, dict) else None
    if spec is None:
        return None
    try:
        return DetectorSpec.from_dict(spec)
    except (TypeError, ValueError) as error:
        raise ModelFileError(filepath, f"holds an unreadable detector spec ({error})") from None


def check_no_code_layers(filepath: str, config: Any) -> None:
    """Refuse a model whose configuration holds layers that run code stored in the file.

    This package's models need no ``Lambda``: every layer is a registered class. Keras's
    safe mode refuses Lambdas that hold Python bytecode; this refuses every Lambda, also
    one naming a function of some module, which Keras would import and call.

    Raises:
        ModelFileError: naming the file, the layer class and how to load it anyway.
    """
    code_layers = sorted(layer_classes(config) & CODE_LAYER_CLASSES)
    if code_layers:
        raise ModelFileError(
            filepath,
            f"refused: the model holds a {', '.join(code_layers)} layer, which runs code stored in the file; "
            f"RetinaNet models need none. Load it only if you trust the file, with {UNSAFE_FLAG} "
            "(safe_mode=False in Python)",
        )


def _load_error(filepath, error, safe_mode):
    """A ModelFileError that says why Keras could not load a file."""
    text = str(error).strip()
    first_line = text.splitlines()[0] if text else type(error).__name__
    unknown = re.search(r"Could not locate (?:class|function) '([^']+)'", text) or re.search(
        r"Unknown (?:layer|object)[^'\"]*['\"]([^'\"]+)['\"]", text
    )
    if unknown:
        return ModelFileError(
            filepath,
            f"unknown layer or object '{unknown.group(1)}': not a layer of Keras or of keras_retinanet "
            "(a model from another package, or custom code that is not imported)",
        )
    if "Lambda" in text and safe_mode:
        return ModelFileError(
            filepath,
            f"refused: the model holds a Lambda layer with Python code; load it only if you trust the file, "
            f"with {UNSAFE_FLAG} (safe_mode=False in Python)",
        )
    return ModelFileError(filepath, f"cannot load model ({first_line})")


def load_model_file(filepath: str, compile: bool = True, safe_mode: bool = True) -> keras.Model:
    """Load a model file of this package (Keras 3); ``models.load_model`` also opens keras-retinanet's.

    Args:
        filepath: ``.keras`` or ``.h5`` file.
        compile: restore the training compile.
        safe_mode: refuse files that would run code when loaded: any ``Lambda`` layer
            (see :func:`check_no_code_layers`). Unknown layer classes are refused either way.

    Returns:
        the Keras model; a training snapshot comes back with its optimizer state
        (Adam moments, iteration count, learning rate) from ``.keras`` and ``.h5`` alike.

    Raises:
        ModelFileError: the file is not a model file of this package, cannot be read, or is refused; the
            message names it.
    """
    filepath = os.fspath(filepath)
    if model_file_kind(filepath) != "keras3":
        raise ModelFileError(filepath, "a Keras 2 file (keras-retinanet's format): load it with models.load_model")
    config = read_model_config(filepath)
    if config is None:
        raise ModelFileError(filepath, "holds no model configuration (a weights-only file?); use --weights for those")
    if safe_mode:
        check_no_code_layers(filepath, config)
    try:
        model = keras.models.load_model(filepath, compile=compile, safe_mode=safe_mode)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, zipfile.BadZipFile) as error:
        raise _load_error(filepath, error, safe_mode) from error
    if compile and getattr(model, "optimizer", None) is not None and filepath.lower().endswith((".h5", ".hdf5")):
        rebind_optimizer(model, filepath)
    return model
