"""The training model's optimizer as model files need it: restored from Keras 3 ``.h5`` files.

The optimizer itself (``GlobalBatchAdam``, its schedule and averages, ``compile_training_model``) lives in
:mod:`keras_retinanet.optimizers`; ``compile_training_model`` stays importable from here.
"""

from typing import Optional

import keras

from ..optimizers import compile_training_model, rebuild_optimizer
from .training_state import read_h5_optimizer_weights

__all__ = ["compile_training_model", "rebind_optimizer"]


def rebind_optimizer(model: keras.Model, filepath: Optional[str] = None) -> int:
    """Give a model loaded from a Keras 3 ``.h5`` file an optimizer that trains on exactly as before.

    Keras 3's HDF5 loader stores every optimizer variable (Adam's moments included) but
    restores only the iteration count and learning rate, in an optimizer that ``fit``
    then refuses ("Unknown variable"). A fresh optimizer of the same configuration, built
    on the model's variables, takes every stored value by variable path
    (:func:`keras_retinanet.optimizers.rebuild_optimizer`).

    Args:
        model: the loaded model, compiled by Keras's loader.
        filepath: the ``.h5`` file, to read the stored optimizer variables from.

    Returns:
        number of optimizer variables restored.
    """
    stored = read_h5_optimizer_weights(filepath) if filepath is not None else None
    return rebuild_optimizer(model, stored_values=stored)
