import logging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Runs that name no weights start from random ones: the suite never downloads (subprocesses inherit it).
os.environ["KERAS_RETINANET_IMAGENET_WEIGHTS"] = "none"

import keras  # noqa: E402
import pytest  # noqa: E402
from helpers.datasets import write_square_dataset  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts with a clean Keras session and a fixed seed.

    Without the full garbage collection ``clear_session`` runs by default: once module fixtures hold
    a few models it took up to 7 s per test, minutes over the suite; Python's own collector still runs.
    """
    keras.utils.clear_session(free_memory=False)
    keras.utils.set_random_seed(1234)
    yield


@pytest.fixture(autouse=True)
def _package_logger_propagates():
    """The commands stop the package's messages at their console handler (``propagate = False``); a test that
    runs a command's main() must not hide later tests' messages from pytest's caplog, which listens at the root."""
    yield
    logging.getLogger("keras_retinanet").propagate = True


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Four 64x64 PNGs with one white 32 px square each, as keras-retinanet CSV files: (annotations, classes) paths.

    One copy per test module, so that what a module's tests write beside the data stays in that module.
    """
    return write_square_dataset(tmp_path_factory.mktemp("data"))
