"""Loading model files with errors that say what went wrong.

Two kinds of files are accepted:

* files written by this package (Keras 3 ``.keras``, or Keras 3 legacy ``.h5``),
  loaded with ``keras.models.load_model``;
* ``.h5`` files written by fizyr's keras-retinanet (Keras 2.x), rebuilt with this
  package's builders by :mod:`keras_retinanet.utils.legacy`.
"""

import json
import os
import re
import zipfile

import h5py
import keras
import numpy as np

from ..errors import ModelFileError
from . import legacy

MODEL_EXTENSIONS = (".keras", ".h5", ".hdf5")

# Layer classes whose configuration carries code to run (Python bytecode or a function to import).
CODE_LAYER_CLASSES = frozenset({"Lambda", "TFOpLambda", "SlicingOpLambda"})

# How the commands let a user load such a file anyway.
UNSAFE_FLAG = "--unsafe-load"


def model_file_kind(filepath):
    """Which loader a model file needs.

    Returns:
        'keras3' (this package's files) or 'keras-retinanet' (Keras 2 ``.h5`` files).

    Raises:
        ModelFileError: unknown extension, unreadable or truncated file, or an HDF5 file
            that neither Keras 3 nor keras-retinanet wrote.
    """
    extension = os.path.splitext(filepath)[1].lower()
    if extension not in MODEL_EXTENSIONS:
        raise ModelFileError(filepath, f"unknown model file type '{extension}'; expected .keras or .h5")
    if extension == ".keras":
        if not zipfile.is_zipfile(filepath):
            raise ModelFileError(filepath, "not a .keras archive (not a zip file); is it truncated or corrupt?")
        return "keras3"
    major = legacy.keras_major_version(filepath)  # raises ModelFileError if not HDF5
    if major is not None and major >= 3:
        return "keras3"
    if legacy.is_keras_retinanet_file(filepath):
        return "keras-retinanet"
    if major is None:
        raise ModelFileError(filepath, "HDF5 file that no Keras version is recorded in and holds no RetinaNet")
    # A Keras 2 file: reading it tells what it holds, and raises an error that says so.
    legacy.read_legacy_file(filepath)
    raise ModelFileError(filepath, f"Keras {major} model that is not a keras-retinanet RetinaNet")


def layer_classes(config):
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


def _read_stored_json(filepath, keras_member, h5_attribute, what):
    """JSON stored in a ``.keras`` zip member or an ``.h5`` root attribute; None when absent.

    Raises:
        ModelFileError: the file cannot be read (``what`` names the content in the message).
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
                text = text.decode("utf-8") if isinstance(text, bytes) else str(text)
        return json.loads(text)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise ModelFileError(filepath, f"cannot read {what} ({error}); is the file truncated?") from None


def read_model_config(filepath):
    """The model configuration a Keras 3 ``.keras`` or ``.h5`` file stores, without building anything.

    Returns:
        the parsed configuration, or None when the file holds none (a weights-only file).

    Raises:
        ModelFileError: the configuration cannot be read.
    """
    return _read_stored_json(filepath, "config.json", "model_config", "the model configuration")


def check_no_code_layers(filepath, config):
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


def load_model_file(filepath, backbone_name="resnet50", compile=True, safe_mode=True):
    """Load a model file of this package or of keras-retinanet.

    Args:
        filepath: ``.keras`` or ``.h5`` file.
        backbone_name: expected backbone; a keras-retinanet file on another one is refused.
        compile: restore (this package) or set up (keras-retinanet) the training compile.
        safe_mode: refuse files that would run code when loaded: any ``Lambda`` layer
            (see :func:`check_no_code_layers`). Unknown layer classes are refused either way.

    Returns:
        the Keras model; a training snapshot comes back with its optimizer state
        (Adam moments, iteration count, learning rate) from ``.keras`` and ``.h5`` alike.

    Raises:
        ModelFileError: the file is not a model file, cannot be read, or is refused; the
            message names it.
    """
    filepath = os.fspath(filepath)
    kind = model_file_kind(filepath)
    if kind == "keras-retinanet":
        return legacy.load_legacy_model(filepath, backbone_name=backbone_name, compile=compile)
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


def read_h5_optimizer_weights(filepath):
    """Optimizer variables a Keras 3 ``.h5`` file stores, by variable path.

    Returns:
        dict path -> numpy array (empty when the file holds no optimizer state).
    """
    values = {}
    with h5py.File(filepath, "r") as handle:
        if "optimizer_weights" not in handle:
            return values
        group = handle["optimizer_weights"]
        names = group.attrs.get("weight_names", [])
        for name in names:
            name = name.decode("utf8") if isinstance(name, bytes) else str(name)
            if name in group:
                values[name] = np.asarray(group[name])
    return values


def _without_owner(path):
    """'adam_1/conv1_kernel_momentum' -> 'conv1_kernel_momentum': optimizer names get suffixes per process."""
    return path.split("/", 1)[-1]


def rebind_optimizer(model, filepath=None):
    """Give a model loaded from a Keras 3 ``.h5`` file an optimizer that trains on exactly as before.

    Keras 3's HDF5 loader stores every optimizer variable (Adam's moments included) but
    restores only the iteration count and learning rate, in an optimizer that ``fit``
    then refuses ("Unknown variable"). A fresh optimizer of the same configuration, built
    on the model's variables, takes every stored value by variable path.

    Args:
        model: the loaded model, compiled by Keras's loader.
        filepath: the ``.h5`` file, to read the stored optimizer variables from.

    Returns:
        number of optimizer variables restored.
    """
    restored = model.optimizer
    optimizer = restored.__class__.from_config(restored.get_config())
    optimizer.build(model.trainable_variables)
    stored = {_without_owner(variable.path): np.asarray(variable) for variable in restored.variables}
    if filepath is not None:
        stored.update({_without_owner(path): value for path, value in read_h5_optimizer_weights(filepath).items()})
    count = 0
    for variable in optimizer.variables:
        value = stored.get(_without_owner(variable.path))
        if value is not None and tuple(value.shape) == tuple(variable.shape):
            variable.assign(value)
            count += 1
    model.compile(optimizer=optimizer, loss=model.loss, jit_compile=False)
    return count


# ----------------------------------------------------------------------------------
# Training state stored inside a snapshot (epoch, callbacks' schedules, seed)
# ----------------------------------------------------------------------------------

TRAINING_STATE_KEY = "keras_retinanet_training_state"


def write_training_state(filepath, state):
    """Store a JSON-serialisable dict in a model file this package wrote.

    In a ``.h5`` file it is an attribute of the root group; in a ``.keras`` archive an
    extra member (Keras ignores both). Call it on the temporary file of
    :func:`keras_retinanet.utils.atomic.save_model_atomically` so that the model and
    its state appear together.
    """
    text = json.dumps(state, sort_keys=True)
    if filepath.lower().endswith(".keras"):
        with zipfile.ZipFile(filepath, "a") as archive:
            archive.writestr(TRAINING_STATE_KEY + ".json", text)
    else:
        with h5py.File(filepath, "a") as handle:
            handle.attrs[TRAINING_STATE_KEY] = text


def read_training_state(filepath):
    """The dict :func:`write_training_state` stored, or None (files of other writers, older snapshots)."""
    return _read_stored_json(filepath, TRAINING_STATE_KEY + ".json", TRAINING_STATE_KEY, "the training state")
