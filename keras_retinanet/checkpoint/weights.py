"""Reading HDF5 weight files by layer name and assigning them to a model.

Both Keras 2 files (keras-retinanet snapshots, ImageNet weight files) and Keras 3
legacy ``.h5`` files store, per layer, a group whose ``weight_names`` attribute lists
the layer's weights in order; a nested model (the subnets) is one such group.
"""

from typing import Collection, Dict, List, Optional

import h5py
import keras
import numpy as np

from ..errors import ModelFileError
from .storage import decode_texts, open_hdf5, weights_group


def read_layer_weights(path: str) -> Dict[str, List[np.ndarray]]:
    """Every layer's weights in an HDF5 weight or model file.

    Args:
        path: the ``.h5`` file.

    Returns:
        dict layer name -> list of numpy arrays, in the layer's weight order
        (layers without weights are left out).

    Raises:
        ModelFileError: the file is not a readable HDF5 Keras file.
    """
    with open_hdf5(path) as handle:
        group = weights_group(handle)
        if "layer_names" not in group.attrs:
            raise ModelFileError(path, "HDF5 file without Keras weights (no 'layer_names' attribute)")
        result = {}
        for layer_name in decode_texts(group.attrs["layer_names"]):
            layer_group = group[layer_name]
            names = decode_texts(layer_group.attrs.get("weight_names", []))
            if names:
                try:
                    result[layer_name] = [np.asarray(layer_group[name]) for name in names]
                except (KeyError, OSError) as error:
                    raise ModelFileError(path, f"layer '{layer_name}' cannot be read ({error}); is the file truncated?") from None
        return result


def read_layer_weight_names(path: str) -> Dict[str, List[str]]:
    """dict layer name -> list of weight names (as stored) of an HDF5 Keras file."""
    with h5py.File(path, "r") as handle:
        group = weights_group(handle)
        return {
            name: decode_texts(group[name].attrs.get("weight_names", []))
            for name in decode_texts(group.attrs["layer_names"])
        }


def assign_layer_weights(
    model: keras.Model,
    layer_weights: Dict[str, List[np.ndarray]],
    source: str,
    only: Optional[Collection[str]] = None,
) -> int:
    """Set the weights of ``model``'s layers from arrays keyed by layer name.

    Args:
        model: Keras model; nested models count as one layer.
        layer_weights: dict layer name -> list of arrays.
        source: file name, for error messages.
        only: if given, only these layer names are assigned.

    Returns:
        number of layers assigned.

    Raises:
        ModelFileError: a layer's stored weights do not fit it (count or shapes).
    """
    assigned = 0
    for layer in model.layers:
        if only is not None and layer.name not in only:
            continue
        if layer.name not in layer_weights:
            continue
        set_layer_weights(layer, layer_weights[layer.name], source)
        assigned += 1
    return assigned


def set_layer_weights(
    layer: keras.layers.Layer, values: List[np.ndarray], source: str, label: Optional[str] = None
) -> None:
    """Set one layer's weights, after checking that the stored arrays fit it.

    Args:
        layer: the Keras layer.
        values: its arrays, in the layer's weight order.
        source: file name, for error messages.
        label: the layer as the messages name it (default its name; 'submodel/layer' for nested ones).

    Raises:
        ModelFileError: the count or a shape differs.
    """
    label = layer.name if label is None else label
    current = layer.weights
    if len(values) != len(current):
        raise ModelFileError(source, f"layer '{label}' has {len(values)} stored weights, the model's has {len(current)}")
    for variable, value in zip(current, values):
        if tuple(variable.shape) != tuple(value.shape):
            raise ModelFileError(
                source,
                f"layer '{label}' weight '{variable.name}' has shape {tuple(value.shape)} in the file, "
                f"{tuple(variable.shape)} in the model",
            )
    layer.set_weights(values)
