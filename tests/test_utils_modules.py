"""keras_retinanet.utils holds keras-retinanet 1.0.0's module names, with its names, and nothing else."""

import importlib
import inspect
import logging
import os
import re
import subprocess
import sys
import tomllib

import numpy as np
import pytest
import tensorflow as tf
from helpers.keras_retinanet_names import KERAS_RETINANET_UTILS, NOT_PROVIDED, allowed_names

import keras_retinanet.utils

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
UTILS = os.path.dirname(keras_retinanet.utils.__file__)


def _utils_module(name):
    return importlib.import_module(f"keras_retinanet.utils.{name}")


def test_utils_has_only_keras_retinanet_module_names():
    modules = {name[: -len(".py")] for name in os.listdir(UTILS) if name.endswith(".py") and name != "__init__.py"}
    assert modules <= set(KERAS_RETINANET_UTILS), sorted(modules - set(KERAS_RETINANET_UTILS))


@pytest.mark.parametrize("module_name", sorted(KERAS_RETINANET_UTILS))
def test_keras_retinanet_names_import_from_utils(module_name):
    module = _utils_module(module_name)
    expected = KERAS_RETINANET_UTILS[module_name] - NOT_PROVIDED.get(module_name, set())
    assert not [name for name in sorted(expected) if not hasattr(module, name)]


@pytest.mark.parametrize("module_name", sorted(KERAS_RETINANET_UTILS))
def test_utils_exports_no_name_keras_retinanet_did_not_have(module_name):
    """A module's ``__all__``, or else the functions and classes it defines itself."""
    module = _utils_module(module_name)
    exported = getattr(module, "__all__", None)
    if exported is None:
        exported = [
            name for name, value in vars(module).items()
            if not name.startswith("_") and (inspect.isfunction(value) or inspect.isclass(value))
            and value.__module__ == module.__name__
        ]  # fmt: skip
    assert set(exported) <= allowed_names(module_name), sorted(set(exported) - allowed_names(module_name))


def test_compute_overlap_is_the_iou_of_every_pair():
    from keras_retinanet.utils.compute_overlap import compute_overlap

    overlaps = compute_overlap(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]]))
    np.testing.assert_allclose(overlaps, [[1.0, 50 / 150, 0.0]])


def test_setup_gpu_cpu_hides_every_gpu():
    """In a process of its own: TensorFlow's visible devices can be set only before it starts."""
    script = (
        "import tensorflow as tf\n"
        "from keras_retinanet.utils.gpu import setup_gpu\n"
        "setup_gpu('cpu')\n"
        "assert tf.config.get_visible_devices('GPU') == [], tf.config.get_visible_devices('GPU')\n"
        "assert tf.config.get_visible_devices('CPU')\n"
        "print(float(tf.reduce_sum(tf.ones(3))))\n"
    )
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environment, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3.0"


def test_setup_gpu_refuses_what_is_no_gpu(caplog):
    from keras_retinanet.utils.gpu import setup_gpu

    with pytest.raises(ValueError, match="'first' is neither 'cpu' nor a GPU index"):
        setup_gpu("first")
    if tf.config.list_physical_devices("GPU"):
        with pytest.raises(ValueError, match="there is no GPU 99"):
            setup_gpu(99)
    else:
        with caplog.at_level(logging.WARNING):
            setup_gpu(99)
        assert "this machine has no GPU" in caplog.text


def test_tf_version_reads_tensorflow_and_checks_the_package_minimum():
    from keras_retinanet.utils import tf_version

    major, minor, patch = (int(part) for part in re.match(r"(\d+)\.(\d+)\.(\d+)", tf.version.VERSION).groups())
    assert tf_version.tf_version() == (major, minor, patch)
    assert tf_version.tf_version_ok()
    assert not tf_version.tf_version_ok((major + 1, 0, 0))
    assert not tf_version.tf_version_ok(blacklisted=[(major, minor, patch)])
    with pytest.raises(AssertionError, match=f"needs {major + 1}.0.0 or newer"):
        tf_version.assert_tf_version((major + 1, 0, 0))
    tf_version.check_tf_version()  # the installed TensorFlow passes: no exit
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as file:
        requirements = tomllib.load(file)["project"]["dependencies"]
    minimum = next(re.fullmatch(r"tensorflow>=([\d.]+)", req).group(1) for req in requirements
                   if req.startswith("tensorflow>="))  # fmt: skip
    assert tf_version.MINIMUM_TF_VERSION == tuple(int(part) for part in (minimum + ".0.0").split(".")[:3])
