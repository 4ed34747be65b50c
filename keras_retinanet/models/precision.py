"""Mixed precision: the policy a machine wants, and an existing model rebuilt in another precision.

Under a mixed policy the convolutions compute in bfloat16 (CPUs, TPUs) or float16
(GPUs, where Keras adds loss scaling when the model is compiled) while the weights
stay float32; logits, losses, box decoding and NMS stay float32
(``models.retinanet.FLOAT32_LAYER_NAMES``).
"""

from typing import Any

import keras
import tensorflow as tf

from ..config.defaults import PRECISIONS
from ..errors import ModelError
from .retinanet import keeps_float32


def mixed_policy_name() -> str:
    """'mixed_float16' when TensorFlow sees a GPU, else 'mixed_bfloat16'."""
    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"


def policy_name(precision: str) -> str:
    """The Keras dtype policy for a precision option ('mixed' picks the machine's mixed policy)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision '{precision}'; expected one of {', '.join(PRECISIONS)}")
    return mixed_policy_name() if precision == "mixed" else precision


def set_precision(precision: str) -> str:
    """Make models built from now on use ``precision``; returns the policy name."""
    name = policy_name(precision)
    keras.mixed_precision.set_global_policy(name)
    return name


def _set_dtypes(config: Any, name: str) -> None:
    """Set the dtype policy of every layer config nested in ``config`` (in place)."""
    if isinstance(config, dict):
        layer_config = config.get("config")
        if "class_name" in config and isinstance(layer_config, dict) and "dtype" in layer_config:
            keep = keeps_float32(layer_config.get("name", ""))
            if config["class_name"] != "InputLayer" and not keep:
                layer_config["dtype"] = keras.dtype_policies.serialize(keras.dtype_policies.get(name))
        for value in config.values():
            _set_dtypes(value, name)
    elif isinstance(config, list):
        for value in config:
            _set_dtypes(value, name)


def with_precision(model: keras.Model, precision: str) -> keras.Model:
    """A copy of a RetinaNet model (training or inference) that computes in ``precision``, with the same weights.

    Args:
        model: a functional Keras model built by this package (or loaded from its files).
        precision: one of PRECISIONS.

    Returns:
        A new model; ``model`` is left as it was.
    """
    name = policy_name(precision)
    config = model.get_config()
    _set_dtypes(config.get("layers", []), name)
    try:
        copy = model.__class__.from_config(config)
    except Exception as error:
        raise ModelError(f"cannot rebuild model '{model.name}' in {name}: {error}") from error
    copy.set_weights(model.get_weights())
    return copy
