"""Model-file I/O: saving and loading models, keras-retinanet's files, weights, training state.

Every public name below can be imported from the package (``from keras_retinanet.checkpoint
import load_model_file``); it loads its module on first use. Modules, lowest first:

    storage          HDF5 texts and groups, JSON stored beside a model
    weights          HDF5 weights by layer name (read_layer_weights, assign_layer_weights)
    training_state   what a snapshot stores besides the model (write_training_state,
                     read_training_state, read_h5_optimizer_weights)
    optimizer        compile_training_model, the one compile of a training model; rebind_optimizer
    legacy_reader    what a keras-retinanet (Keras 2) file holds (read_legacy_file, LegacyModelInfo)
    legacy_builder   the Keras 3 model rebuilt from it (load_legacy_model)
    files            model files of either kind, loaded safely (load_model_file, model_file_kind)

Nothing here imports :mod:`keras_retinanet.models`: the loaders take the Backbone (and
``convert_model``) they build with as arguments, and ``models.load_model`` hands them in.
"""

import importlib

# Public name -> the module that defines it. Each is loaded on first use (PEP 562), so that importing
# the package does not load TensorFlow (which files, optimizer and the legacy modules need) before it is used.
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
    "load_legacy_model": "legacy_builder",
    "LegacyModelInfo": "legacy_reader",
    "is_keras_retinanet_file": "legacy_reader",
    "read_legacy_file": "legacy_reader",
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
