"""The training model's optimizer: compiled once the same way everywhere, and restored from ``.h5`` files."""

from typing import Optional

import keras

from .. import distribute, losses
from .training_state import read_h5_optimizer_weights


def compile_training_model(model: keras.Model, learning_rate: float, clipnorm: Optional[float]) -> keras.Model:
    """Compile a RetinaNet training model for training: focal and smooth L1 losses, :class:`GlobalBatchAdam`.

    The one compile of a training model, for new models (``retinanet-train``) and for
    keras-retinanet snapshots alike. ``GlobalBatchAdam`` clips the gradient of the whole
    global batch, so ``clipnorm`` means the same on one device and on several; on one
    device it is exactly ``keras.optimizers.Adam``.

    Args:
        model: a training model (outputs 'regression' (B, N, 4) and 'classification' (B, N, C)).
        learning_rate: Adam's learning rate.
        clipnorm: gradient norm clipping, or None for none.

    Returns:
        the model, compiled without XLA: batches are padded to their largest image, so
        shapes change from batch to batch and XLA would compile again for each.
    """
    model.compile(
        loss={"regression": losses.smooth_l1(), "classification": losses.focal()},
        optimizer=distribute.GlobalBatchAdam(learning_rate=learning_rate, clipnorm=clipnorm),
        jit_compile=False,
    )
    return model


def rebind_optimizer(model: keras.Model, filepath: Optional[str] = None) -> int:
    """Give a model loaded from a Keras 3 ``.h5`` file an optimizer that trains on exactly as before.

    Keras 3's HDF5 loader stores every optimizer variable (Adam's moments included) but
    restores only the iteration count and learning rate, in an optimizer that ``fit``
    then refuses ("Unknown variable"). A fresh optimizer of the same configuration, built
    on the model's variables, takes every stored value by variable path
    (:func:`keras_retinanet.distribute.rebuild_optimizer`).

    Args:
        model: the loaded model, compiled by Keras's loader.
        filepath: the ``.h5`` file, to read the stored optimizer variables from.

    Returns:
        number of optimizer variables restored.
    """
    stored = read_h5_optimizer_weights(filepath) if filepath is not None else None
    return distribute.rebuild_optimizer(model, stored_values=stored)
