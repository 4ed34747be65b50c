"""Stopping training at the first NaN or infinite loss, before a broken model is saved."""

import math

import keras
import numpy as np

from ..errors import RetinaNetError


class TrainingDivergedError(RetinaNetError):
    """The loss or the weights stopped being finite numbers.

    Args:
        epoch: 1-based epoch.
        step: 1-based step within the epoch, or None when found at the end of the epoch.
        what: what was found ('loss nan', 'weights of layer P3 hold inf', ...).
    """

    def __init__(self, epoch, step, what, steps=None):
        self.epoch = epoch
        self.step = step
        self.what = what
        where = f"epoch {epoch}" + (f", step {step}" + (f" of {steps}" if steps else "") if step is not None else " end")
        super().__init__(
            f"training diverged at {where}: {what}. Likely causes: a learning rate too high (try --lr 10 times "
            "smaller), or bad boxes (check the annotations with retinanet-debug). The last snapshot saved "
            "before this point is intact; resume from it with --snapshot."
        )


def _first_non_finite(values):
    """(key, value) of the first log value that is not a finite number, or None."""
    for key, value in values.items():
        try:
            number = float(np.asarray(value))
        except (TypeError, ValueError):
            continue
        if not math.isfinite(number):
            return key, number
    return None


class NonFiniteGuard(keras.callbacks.Callback):
    """Raise :class:`TrainingDivergedError` at the first non-finite loss.

    Raising (rather than Keras's ``TerminateOnNaN``, which lets the epoch end) stops
    ``fit`` before any later callback sees the epoch end, so no snapshot of the broken
    model is written. At the end of each epoch the weights are checked too: the last
    update of an epoch can turn them to NaN while its own loss was still finite.
    Put it before the snapshot callback.

    Args:
        keys: log keys to check every step (default: every loss in the logs).
        check_weights: check every weight at the end of each epoch.
    """

    def __init__(self, keys=None, check_weights=True):
        super().__init__()
        self.keys = keys
        self.check_weights = check_weights
        self.epoch = 0
        self.steps = None

    def on_train_begin(self, logs=None):
        self.steps = (self.params or {}).get("steps")

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        values = {key: logs[key] for key in (self.keys or logs) if key in logs and "loss" in key}
        found = _first_non_finite(values)
        if found is not None:
            key, value = found
            raise TrainingDivergedError(self.epoch + 1, batch + 1, f"{key} is {value}", steps=self.steps)

    def on_epoch_end(self, epoch, logs=None):
        found = _first_non_finite({key: value for key, value in (logs or {}).items() if "loss" in key})
        if found is not None:
            raise TrainingDivergedError(epoch + 1, None, f"{found[0]} is {found[1]}")
        if self.check_weights and self.model is not None:
            for variable in self.model.weights:
                values = np.asarray(variable)
                if not np.all(np.isfinite(values)):
                    raise TrainingDivergedError(epoch + 1, None, f"weight {variable.path} holds NaN or inf")
