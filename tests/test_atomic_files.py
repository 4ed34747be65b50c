"""Files and folders written through keras_retinanet.atomic_files get the mode a plain open() or os.mkdir gives.

The expected modes are worked out from the umask alone (0666 and 0777 less its bits), and compared with what the
operating system gives a file opened and a folder made the ordinary way under the same umask.
"""

import os
import stat

import pytest

from keras_retinanet.atomic_files import (
    replace_folder,
    save_model_atomically,
    temporary_folder_for,
    write_bytes_atomically,
)

# umask -> (file mode, folder mode), by hand: 0o666 & ~umask and 0o777 & ~umask.
UMASKS = {0o022: (0o644, 0o755), 0o077: (0o600, 0o700)}


@pytest.fixture(params=sorted(UMASKS), ids=lambda umask: f"umask{umask:03o}")
def umask(request):
    """The process's umask set for one test, and put back after it."""
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_plain_open_gives_the_modes_worked_out(umask, tmp_path):
    """The baseline the other tests compare with: what open() and os.mkdir give under this umask."""
    with open(tmp_path / "plain.txt", "w") as handle:
        handle.write("x")
    os.mkdir(tmp_path / "plain")
    assert (mode_of(tmp_path / "plain.txt"), mode_of(tmp_path / "plain")) == UMASKS[umask]


def test_written_bytes_get_the_mode_of_a_plain_open(umask, tmp_path):
    path = tmp_path / "run" / "detections.json"
    write_bytes_atomically(b"{}", str(path))
    assert path.read_bytes() == b"{}"
    assert mode_of(path) == UMASKS[umask][0]
    write_bytes_atomically(b"[]", str(path))  # replacing a file gives the new one the same mode
    assert path.read_bytes() == b"[]" and mode_of(path) == UMASKS[umask][0]
    assert sorted(os.listdir(path.parent)) == ["detections.json"]  # no temporary left behind


def test_a_folder_put_in_place_gets_the_mode_of_os_mkdir(umask, tmp_path):
    path = tmp_path / "model_savedmodel"
    with temporary_folder_for(str(path)) as temporary:
        write_bytes_atomically(b"graph", os.path.join(temporary, "saved_model.pb"))
        replace_folder(temporary, str(path))
    assert mode_of(path) == UMASKS[umask][1]
    assert mode_of(path / "saved_model.pb") == UMASKS[umask][0]
    assert sorted(os.listdir(tmp_path)) == ["model_savedmodel"]


def test_a_saved_model_gets_the_mode_of_a_plain_open(umask, tmp_path):
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    for name in ("model.keras", "model.h5"):
        path = tmp_path / name
        save_model_atomically(model, str(path))
        assert mode_of(path) == UMASKS[umask][0], name
    assert sorted(os.listdir(tmp_path)) == ["model.h5", "model.keras"]
