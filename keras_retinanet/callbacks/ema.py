"""The weights' moving average (``--ema``) in the model while the epoch's evaluation and snapshots run.

The optimizer keeps the average (:class:`keras_retinanet.optimizers.GlobalBatchAdam` with ``use_ema``). At the end
of each epoch :class:`AverageWeightsIn` (put before evaluation) exchanges the model's weights with the averages;
evaluation, the best-model choice and the snapshots then see the averaged weights, and :class:`AverageWeightsOut`
(put last) exchanges them back, so training goes on from its own weights. A snapshot therefore holds the averaged
weights as the model's (what loading, converting, exporting and predicting use) and the training weights in the
optimizer's slots; a resumed run exchanges them back once (``SNAPSHOT_STATE_KEY`` in its training state says so).
"""

import keras

from ..optimizers import swap_average_weights

# The key of the snapshots' training state that says their model weights are the averages.
SNAPSHOT_STATE_KEY = "average_weights_in_model"


class AverageWeightsIn(keras.callbacks.Callback):
    """At each epoch's end: the optimizer's averaged weights into the model (put before evaluation)."""

    def on_epoch_end(self, epoch, logs=None):
        swap_average_weights(self.model)


class AverageWeightsOut(keras.callbacks.Callback):
    """At each epoch's end: the model's own weights back (put after the snapshots and the record)."""

    def on_epoch_end(self, epoch, logs=None):
        swap_average_weights(self.model)
