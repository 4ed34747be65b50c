"""Mixed precision: the policy a machine wants, and an existing model rebuilt in another precision.

Under a mixed policy the convolutions compute in bfloat16 (CPUs, TPUs) or float16
(GPUs, where Keras adds loss scaling when the model is compiled) while the weights
stay float32; logits, losses, box decoding and NMS stay float32
(``models.retinanet.FLOAT32_LAYER_NAMES``).

A rebuilt model may keep more of itself in float32, by part (:data:`FLOAT32_PARTS`): 'batchnorm' (the frozen
BatchNormalization layers), 'backbone' (the rest of the trunk), 'pyramid' (the FPN: C*_reduced, P*, their
merges and upsampling), 'heads' (the subnets' hidden convolutions). ``retinanet-evaluate --precision auto``
uses this to find which parts the detections need in float32 (see ``inference.fidelity``).
"""

import re
from typing import Any, Callable, Iterable, Optional

import keras
import tensorflow as tf

from ..config.defaults import PRECISIONS
from ..errors import ModelError
from .retinanet import keeps_float32

FLOAT32_PARTS = ("batchnorm", "backbone", "pyramid", "heads")
_PYRAMID_NAME = re.compile(r"C\d_reduced|P\d(_upsampled|_merged)?|C6_relu")
_FLOAT32 = keras.dtype_policies.get("float32")
_HEAD_NAME = re.compile(r"pyramid_(classification|regression)_\d+|(classification|regression)_submodel")


def mixed_policy_name() -> str:
    """'mixed_float16' when TensorFlow sees a GPU, else 'mixed_bfloat16'."""
    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"


def policy_name(precision: str) -> str:
    """The Keras dtype policy for a precision option ('mixed' picks the machine's mixed policy).

    Raises:
        ValueError: an unknown precision, or 'auto' (which depends on the model and the machine: see
            ``keras_retinanet.inference.auto_precision.resolve_precision``).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision '{precision}'; expected one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        raise ValueError("precision 'auto' must be resolved first (inference.auto_precision.resolve_precision)")
    return mixed_policy_name() if precision == "mixed" else precision


def set_precision(precision: str) -> str:
    """Make models built from now on use ``precision``; returns the policy name."""
    name = policy_name(precision)
    keras.mixed_precision.set_global_policy(name)
    return name


def part_of(class_name: str, layer_name: str) -> Optional[str]:
    """Which of :data:`FLOAT32_PARTS` a layer belongs to (None: the float32 outputs, inputs, nested models).

    Args:
        class_name: the layer's class name as its config stores it (e.g. 'BatchNormalization').
        layer_name: the layer's name.
    """
    if class_name == "InputLayer" or keeps_float32(layer_name):
        return None
    if _HEAD_NAME.fullmatch(layer_name):
        return "heads"
    if _PYRAMID_NAME.fullmatch(layer_name):
        return "pyramid"
    if "BatchNormalization" in class_name:
        return "batchnorm"
    return "backbone"


def _set_dtypes(layer_configs: Iterable[Any], policy: Any, in_float32: Callable[[str, str], bool]) -> None:
    """Set the dtype policy of every layer config in ``layer_configs`` and in the models nested there (in place).

    Only layer entries are touched: the KerasTensors of the call arguments ('__keras_tensor__' entries, whose
    'dtype' is a plain dtype string) keep theirs, so inference models (whose layers take lists of tensors)
    rebuild too.
    """
    for entry in layer_configs:
        if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
            continue
        layer_config = entry["config"]
        class_name, name = str(entry.get("class_name", "")), str(layer_config.get("name", ""))
        if isinstance(layer_config.get("layers"), list):  # a nested model: its layers decide for themselves
            _set_dtypes(layer_config["layers"], policy, in_float32)
            continue
        if "dtype" in layer_config and part_of(class_name, name) is not None:
            # Explicitly float32 where kept: the model may have been loaded in a mixed policy.
            kept = in_float32(class_name, name)
            layer_config["dtype"] = keras.dtype_policies.serialize(_FLOAT32 if kept else policy)


def with_precision(model: keras.Model, precision: str, float32_parts: Iterable[str] = ()) -> keras.Model:
    """A copy of a RetinaNet model (training or inference) that computes in ``precision``, with the same weights.

    Args:
        model: a functional Keras model built by this package (or loaded from its files).
        precision: one of PRECISIONS but 'auto'.
        float32_parts: parts (:data:`FLOAT32_PARTS`) kept in float32 besides the float32 outputs.

    Returns:
        A new model; ``model`` is left as it was.

    Raises:
        ModelError: the model cannot be rebuilt; ValueError: an unknown precision or part.
    """
    name = policy_name(precision)
    parts = set(float32_parts)
    unknown = parts - set(FLOAT32_PARTS)
    if unknown:
        raise ValueError(f"unknown float32 parts {sorted(unknown)}; expected some of {', '.join(FLOAT32_PARTS)}")
    policy = keras.dtype_policies.get(name)

    def in_float32(class_name: str, layer_name: str) -> bool:
        return part_of(class_name, layer_name) in parts

    config = model.get_config()
    _set_dtypes(config.get("layers", []), policy, in_float32)
    try:
        copy = model.__class__.from_config(config)
    except Exception as error:
        raise ModelError(f"cannot rebuild model '{model.name}' in {name}: {error}") from error
    copy.set_weights(model.get_weights())
    return copy
