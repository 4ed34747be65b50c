"""Writing files so that a crash or kill never leaves a half-written one behind."""

import glob
import os
import tempfile

TEMPORARY_SUFFIX = ".tmp"


def _fsync_file(path):
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_folder(folder):
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def temporary_pattern(path):
    """Glob pattern of the temporary files :func:`save_model_atomically` writes for ``path``.

    ``path`` may itself hold glob wildcards (``snapshots/resnet50_csv_*.h5``).
    """
    folder = os.path.dirname(os.path.abspath(path))
    return os.path.join(folder, f".{os.path.basename(path)}.*{TEMPORARY_SUFFIX}*")


def save_model_atomically(model, path, finalize=None):
    """Save a Keras model to ``path`` (.keras or .h5) through a temporary file and a rename.

    The temporary file lives in the same folder, so the rename is atomic: at any
    instant ``path`` is either the previous complete file or the new complete one.
    A killed process leaves at most a hidden ``.{name}.*.tmp{ext}`` file behind.

    Args:
        model: the Keras model.
        path: destination; its extension picks the format.
        finalize: ``(temporary_path) -> None`` called after the model is written and
            before the rename, to add more to the same file (e.g. training state);
            what it writes becomes visible together with the model, or not at all.

    Returns:
        path.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    extension = os.path.splitext(path)[1]
    handle, temporary = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=f"{TEMPORARY_SUFFIX}{extension}", dir=folder
    )
    os.close(handle)
    try:
        os.remove(temporary)  # Keras refuses to write over an existing .keras file without asking
        model.save(temporary)
        if finalize is not None:
            finalize(temporary)
        _fsync_file(temporary)
        os.replace(temporary, path)
        _fsync_folder(folder)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


def remove_stale_temporaries(path):
    """Delete temporary files a killed :func:`save_model_atomically` left for ``path``.

    Returns:
        list of removed paths.
    """
    removed = []
    for stale in glob.glob(temporary_pattern(path)):
        try:
            os.remove(stale)
            removed.append(stale)
        except OSError:
            pass
    return removed
