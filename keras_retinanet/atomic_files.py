"""Writing files and folders so that a crash or kill never leaves a half-written one behind: the package's one writer
of configuration, records, exports and model snapshots, and of the run folders that hold them (claim_new_folder).

Everything is first written under a hidden temporary name in the destination's folder
(the same file system, so the final rename is atomic), then renamed into place.
"""

import glob
import os
import shutil
import tempfile
from typing import TYPE_CHECKING, Callable, List, Optional

if TYPE_CHECKING:  # only for the annotation: export imports this module without loading TensorFlow
    import keras

TEMPORARY_SUFFIX = ".tmp"


def _fsync_file(path: str) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_folder(folder: str) -> None:
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


def temporary_pattern(path: str) -> str:
    """Glob pattern of the temporary files :func:`save_model_atomically` writes for ``path``.

    ``path`` may itself hold glob wildcards (``snapshots/resnet50_csv_*.h5``).
    """
    folder = os.path.dirname(os.path.abspath(path))
    return os.path.join(folder, f".{os.path.basename(path)}.*{TEMPORARY_SUFFIX}*")


def save_model_atomically(model: "keras.Model", path: str, finalize: Optional[Callable[[str], None]] = None) -> str:
    """Save a Keras model to ``path`` (.keras or .h5) through a temporary file and a rename.

    At any instant ``path`` is either the previous complete file or the new complete one.
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


def remove_stale_temporaries(path: str) -> List[str]:
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


def write_bytes_atomically(data: bytes, path: str) -> str:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename; returns ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=TEMPORARY_SUFFIX, dir=folder)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


class temporary_folder_for:
    """A fresh folder next to ``path`` (same file system, so a rename moves it), removed on exit if left.

    Use it as ``with temporary_folder_for(path) as temporary: ...; replace_folder(temporary, path)``.
    """

    def __init__(self, path: str):
        self.path = os.path.abspath(path)

    def __enter__(self) -> str:
        parent = os.path.dirname(self.path)
        os.makedirs(parent, exist_ok=True)
        prefix = f".{os.path.basename(self.path)}."
        self.temporary = tempfile.mkdtemp(prefix=prefix, suffix=TEMPORARY_SUFFIX, dir=parent)
        return self.temporary

    def __exit__(self, *exc_info) -> bool:
        shutil.rmtree(self.temporary, ignore_errors=True)
        return False


def replace_folder(temporary: str, path: str) -> None:
    """Move the complete folder ``temporary`` to ``path``, replacing what is there.

    A folder cannot be renamed over a non-empty one, so an existing ``path`` is first renamed
    aside and removed after the new folder is in place: ``path`` is missing only between two renames.

    Raises:
        NotADirectoryError: ``path`` is a file (a folder never silently replaces a file).
    """
    if os.path.isfile(path):
        raise NotADirectoryError(f"'{path}' is a file, not a folder")
    old = None
    if os.path.exists(path):
        old = f"{temporary}.old"
        os.replace(path, old)
    os.replace(temporary, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def claim_new_folder(root: str, name: str) -> str:
    """Create and return the first of ``root/name``, ``root/name_2``, ``root/name_3``, ... that does not exist.

    ``os.mkdir`` fails on an existing folder, so creating it is what claims the name: two runs started at the
    same moment never share one.
    """
    os.makedirs(root, exist_ok=True)
    number = 1
    while True:
        path = os.path.join(root, name if number == 1 else f"{name}_{number}")
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            number += 1
