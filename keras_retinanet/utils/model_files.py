"""Loading model files with errors that say what went wrong.

Two kinds of files are accepted:

* files written by this package (Keras 3 ``.keras``, or Keras 3 legacy ``.h5``),
  loaded with ``keras.models.load_model``;
* ``.h5`` files written by fizyr's keras-retinanet (Keras 2.x), rebuilt with this
  package's builders by :mod:`keras_retinanet.utils.legacy`.
"""

import os
import zipfile

import keras

from ..errors import ModelFileError
from . import legacy

MODEL_EXTENSIONS = (".keras", ".h5", ".hdf5")


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


def load_model_file(filepath, backbone_name="resnet50", compile=True, safe_mode=True):
    """Load a model file of this package or of keras-retinanet.

    Args:
        filepath: ``.keras`` or ``.h5`` file.
        backbone_name: expected backbone; a keras-retinanet file on another one is refused.
        compile: restore (this package) or set up (keras-retinanet) the training compile.
        safe_mode: refuse Keras 3 files that would run code when loaded.

    Returns:
        the Keras model.

    Raises:
        ModelFileError: the file is not a model file or cannot be read; the message names it.
    """
    kind = model_file_kind(filepath)
    if kind == "keras-retinanet":
        return legacy.load_legacy_model(filepath, backbone_name=backbone_name, compile=compile)
    try:
        model = keras.models.load_model(filepath, compile=compile, safe_mode=safe_mode)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelFileError(filepath, f"cannot load model ({message})") from error
    if compile and getattr(model, "optimizer", None) is not None and filepath.lower().endswith((".h5", ".hdf5")):
        rebind_optimizer(model)
    return model


def rebind_optimizer(model):
    """Give a model loaded from a Keras 3 ``.h5`` file an optimizer that can train it again.

    Keras 3's HDF5 loader restores only the optimizer's iteration count and learning
    rate, in an optimizer that ``fit`` then refuses ("Unknown variable"). A fresh
    optimizer of the same configuration, built on the model's variables, takes over
    whatever was restored; its moment estimates start anew (``.keras`` files keep them).
    """
    restored = model.optimizer
    optimizer = restored.__class__.from_config(restored.get_config())
    optimizer.build(model.trainable_variables)
    restored_values = {variable.path: variable for variable in restored.variables}
    for variable in optimizer.variables:
        source = restored_values.get(variable.path)
        if source is not None and tuple(source.shape) == tuple(variable.shape):
            variable.assign(source)
    model.compile(optimizer=optimizer, loss=model.loss, jit_compile=False)
