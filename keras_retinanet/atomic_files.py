"""Writing files and folders so that a crash or kill never leaves a half-written one behind: the package's one writer
of configuration, records, exports and model snapshots, and of the run folders that hold them (claim_new_folder).

Everything is first written under a hidden temporary name in the destination's folder
(the same file system, so the final rename is atomic), then renamed into place.

The temporaries are created with the mode a plain ``open()`` or ``os.mkdir`` gives (0666 or 0777 less the
umask), not ``tempfile``'s private 0600 and 0700: what a run writes (its record, detections, exports) can be
read by whoever may read the folder it is in, as the model files Keras writes beside them can.
"""

import glob
import os
import secrets
import shutil
from typing import TYPE_CHECKING, Callable, List, Optional, Tuple

if TYPE_CHECKING:  # only for the annotation: export imports this module without loading TensorFlow
    import keras

TEMPORARY_SUFFIX = ".tmp"
# How many random names are tried before giving up (tempfile's own limit).
_NAME_ATTEMPTS = 10000


def _new_temporary(path: str, suffix: str, folder: bool = False) -> Tuple[Optional[int], str]:
    """A new hidden file (or folder) ``.{name}.{random}{suffix}`` beside ``path``, created exclusively.

    Created with the permissions ``open(..., 'w')`` (0666) or ``os.mkdir`` (0777) asks for, which the kernel
    reduces by the process's umask; ``tempfile.mkstemp``/``mkdtemp`` would ask for 0600/0700.

    Returns:
        (an open descriptor for writing, or None for a folder; the temporary's path).
    """
    parent = os.path.dirname(os.path.abspath(path))
    prefix = f".{os.path.basename(path)}."
    for _ in range(_NAME_ATTEMPTS):
        candidate = os.path.join(parent, f"{prefix}{secrets.token_hex(4)}{suffix}")
        try:
            if folder:
                os.mkdir(candidate, 0o777)
                return None, candidate
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
            return os.open(candidate, flags, 0o666), candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside '{path}' after {_NAME_ATTEMPTS} tries")


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
    handle, temporary = _new_temporary(path, f"{TEMPORARY_SUFFIX}{extension}")
    os.close(handle)
    try:
        os.remove(temporary)  # Keras refuses to write over an existing .keras file without asking; it creates its own
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
    handle, temporary = _new_temporary(path, TEMPORARY_SUFFIX)
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
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        _, self.temporary = _new_temporary(self.path, TEMPORARY_SUFFIX, folder=True)
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
