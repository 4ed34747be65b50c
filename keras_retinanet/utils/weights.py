"""Reading HDF5 weight files by layer name and assigning them to a model.

Both Keras 2 files (keras-retinanet snapshots, ImageNet weight files) and Keras 3
legacy ``.h5`` files store, per layer, a group whose ``weight_names`` attribute lists
the layer's weights in order; a nested model (the subnets) is one such group.
"""

import h5py
import numpy as np

from ..errors import ModelFileError


def _decode(values):
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def weights_group(handle):
    """The group that holds the per-layer weights of an open HDF5 file."""
    if "model_weights" in handle:
        return handle["model_weights"]
    return handle


def read_layer_weights(path):
    """Every layer's weights in an HDF5 weight or model file.

    Args:
        path: the ``.h5`` file.

    Returns:
        dict layer name -> list of numpy arrays, in the layer's weight order
        (layers without weights are left out).

    Raises:
        ModelFileError: the file is not a readable HDF5 Keras file.
    """
    try:
        handle = h5py.File(path, "r")
    except (OSError, ValueError) as error:
        raise ModelFileError(path, f"not a readable HDF5 file ({error})") from None
    with handle:
        group = weights_group(handle)
        if "layer_names" not in group.attrs:
            raise ModelFileError(path, "HDF5 file without Keras weights (no 'layer_names' attribute)")
        result = {}
        for layer_name in _decode(group.attrs["layer_names"]):
            layer_group = group[layer_name]
            names = _decode(layer_group.attrs.get("weight_names", []))
            if names:
                try:
                    result[layer_name] = [np.asarray(layer_group[name]) for name in names]
                except (KeyError, OSError) as error:
                    raise ModelFileError(path, f"layer '{layer_name}' cannot be read ({error}); is the file truncated?") from None
        return result


def read_layer_weight_names(path):
    """dict layer name -> list of weight names (as stored) of an HDF5 Keras file."""
    with h5py.File(path, "r") as handle:
        group = weights_group(handle)
        return {
            name: _decode(group[name].attrs.get("weight_names", []))
            for name in _decode(group.attrs["layer_names"])
        }


def assign_layer_weights(model, layer_weights, source, only=None):
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
        values = layer_weights[layer.name]
        current = layer.weights
        if len(values) != len(current):
            raise ModelFileError(
                source, f"layer '{layer.name}' has {len(values)} stored weights, the model's has {len(current)}"
            )
        for variable, value in zip(current, values):
            if tuple(variable.shape) != tuple(value.shape):
                raise ModelFileError(
                    source,
                    f"layer '{layer.name}' weight '{variable.name}' has shape {tuple(value.shape)} in the file, "
                    f"{tuple(variable.shape)} in the model",
                )
        layer.set_weights(values)
        assigned += 1
    return assigned
