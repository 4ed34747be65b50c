"""Model-file I/O: saving and loading models of this package, weights, training state.

Every public name below can be imported from the package (``from keras_retinanet.checkpoint
import load_model_file``); it loads its module on first use. Modules, lowest first:

    storage          HDF5 texts and groups, JSON stored beside a model
    weights          HDF5 weights by layer name (read_layer_weights, assign_layer_weights)
    training_state   what a snapshot stores besides the model (write_training_state,
                     read_training_state, read_h5_optimizer_weights)
    optimizer        compile_training_model, the one compile of a training model; rebind_optimizer
    files            this package's model files, loaded safely (load_model_file); which kind a file is
                     (model_file_kind)

keras-retinanet's files (Keras 2 ``.h5``) are read, rebuilt and written by :mod:`keras_retinanet.models.legacy`,
which builds with the models; ``models.load_model`` opens either kind.
"""

import importlib

# Public name -> the module that defines it. Each is loaded on first use (PEP 562), so that importing
# the package does not load TensorFlow (which files and optimizer need) before it is used.
_PUBLIC = {
    "CODE_LAYER_CLASSES": "files",
    "MODEL_EXTENSIONS": "files",
    "UNSAFE_FLAG": "files",
    "check_no_code_layers": "files",
    "layer_classes": "files",
    "load_model_file": "files",
    "model_file_kind": "files",
    "read_model_config": "files",
    "read_spec": "files",
    "compile_training_model": "optimizer",
    "rebind_optimizer": "optimizer",
    "read_h5_optimizer_weights": "training_state",
    "read_training_state": "training_state",
    "write_training_state": "training_state",
    "assign_layer_weights": "weights",
    "read_layer_weights": "weights",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
