"""keras-retinanet's ``utils.tf_version``: is the installed TensorFlow one this package runs on?"""

import re
import sys
from typing import Sequence, Tuple

import tensorflow as tf

# The "tensorflow>=2.16" of pyproject.toml: TensorFlow 2.16 is the first to come with Keras 3.
MINIMUM_TF_VERSION = (2, 16, 0)
BLACKLISTED_TF_VERSIONS: Sequence[Tuple[int, int, int]] = ()

__all__ = [
    "BLACKLISTED_TF_VERSIONS", "MINIMUM_TF_VERSION", "assert_tf_version", "check_tf_version", "tf_version",
    "tf_version_ok",
]


def tf_version() -> Tuple[int, int, int]:
    """TensorFlow's version as (major, minor, patch); suffixes such as ``-rc0`` or ``.dev2024`` are dropped."""
    parts = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", tf.version.VERSION)
    if parts is None:
        raise ValueError(f"tf_version: cannot read TensorFlow's version {tf.version.VERSION!r}")
    major, minor, patch = parts.groups()
    return int(major), int(minor), int(patch or 0)


def tf_version_ok(minimum_tf_version=MINIMUM_TF_VERSION, blacklisted=BLACKLISTED_TF_VERSIONS) -> bool:
    """Whether TensorFlow is at least ``minimum_tf_version`` and not one of ``blacklisted``."""
    version = tf_version()
    return version >= tuple(minimum_tf_version) and version not in [tuple(v) for v in blacklisted]


def assert_tf_version(minimum_tf_version=MINIMUM_TF_VERSION, blacklisted=BLACKLISTED_TF_VERSIONS) -> None:
    """Raise AssertionError, as keras-retinanet did, when TensorFlow is too old or blacklisted."""
    if not tf_version_ok(minimum_tf_version, blacklisted):
        required = ".".join(map(str, minimum_tf_version))
        raise AssertionError(
            f"You are using TensorFlow {tf.version.VERSION}; this package needs {required} or newer"
            + (f" and none of {list(blacklisted)}" if blacklisted else "")
        )


def check_tf_version() -> None:
    """Exit with status 1 and the reason on stderr when TensorFlow is too old (keras-retinanet's scripts called it)."""
    try:
        assert_tf_version()
    except AssertionError as error:
        print(error, file=sys.stderr)
        sys.exit(1)
