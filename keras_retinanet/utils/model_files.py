"""Loading model files with errors that say what went wrong."""

import os

import keras

from ..errors import ModelFileError


def load_model_file(filepath, backbone_name="resnet50", compile=True, safe_mode=True):
    """Load a ``.keras`` or ``.h5`` model written by this package.

    Raises:
        ModelFileError: the file is not a model file or cannot be read; the message names it.
    """
    extension = os.path.splitext(filepath)[1].lower()
    if extension not in (".keras", ".h5", ".hdf5"):
        raise ModelFileError(filepath, f"unknown model file type '{extension}'; expected .keras or .h5")
    try:
        return keras.models.load_model(filepath, compile=compile, safe_mode=safe_mode)
    except (OSError, ValueError, KeyError, TypeError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelFileError(filepath, f"cannot load model ({message})") from error
