"""Writing files so that a crash or kill never leaves a half-written one behind."""

import os
import tempfile


def _fsync_file(path):
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def save_model_atomically(model, path):
    """Save a Keras model to ``path`` (.keras or .h5) through a temporary file and a rename.

    The temporary file lives in the same folder, so the rename is atomic: at any
    instant ``path`` is either the previous complete file or the new complete one.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    extension = os.path.splitext(path)[1]
    handle, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=f".tmp{extension}", dir=folder)
    os.close(handle)
    try:
        os.remove(temporary)  # Keras refuses to write over an existing .keras file without asking
        model.save(temporary)
        _fsync_file(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path
