"""Saving training snapshots every epoch, atomically, with what a resumed run needs.

A snapshot holds the model, its optimizer (Adam's moments, iteration count and learning
rate, in ``.h5`` and ``.keras`` alike) and a small training state: the epoch, the seed
and the state of the learning-rate schedule and early stopping. A resumed run
(``retinanet-train --snapshot``) restores all of it and continues as if never stopped.
"""

import os

import keras

from ..atomic_files import remove_stale_temporaries, save_model_atomically
from ..checkpoint.training_state import write_training_state
from ..config.defaults import KEEP_SNAPSHOTS as KEEP_CHOICES

# Attributes that make up a Keras callback's state between epochs (reset by on_train_begin).
_CALLBACK_STATE_ATTRIBUTES = {
    "ReduceLROnPlateau": ("wait", "best", "cooldown_counter"),
    "EarlyStopping": ("wait", "best", "best_epoch"),
}


def _plain(value):
    """A number as JSON can hold it (inf and nan included, as Python's json writes them)."""
    try:
        return float(value) if not isinstance(value, int) else value
    except (TypeError, ValueError):
        return None


def callback_state(callback):
    """The state of a stateful Keras callback (see ``_CALLBACK_STATE_ATTRIBUTES``), or None.

    Returns:
        dict attribute -> number.
    """
    names = _state_attributes(callback)
    if names is None:
        return None
    return {name: _plain(getattr(callback, name)) for name in names if hasattr(callback, name)}


def _state_attributes(callback):
    """The state attributes of the callback's class or the nearest Keras class it extends, or None."""
    for cls in type(callback).__mro__:
        if cls.__name__ in _CALLBACK_STATE_ATTRIBUTES:
            return _CALLBACK_STATE_ATTRIBUTES[cls.__name__]
    return None


def restore_callback_state(callback, state):
    """Set the attributes :func:`callback_state` returned, after the callback's own ``on_train_begin``."""
    for name, value in (state or {}).items():
        if name in (_state_attributes(callback) or ()):
            setattr(callback, name, value)


class Snapshot(keras.callbacks.Callback):
    """Save the model after every epoch as ``{template}.h5`` (and ``.keras`` on request).

    Put it after the callbacks whose state it records (and after evaluation, for
    ``best_monitor``): Keras calls callbacks in list order, so the schedule has already
    reacted to the epoch when the snapshot records it, and on a resumed run the states
    are restored after those callbacks reset themselves in ``on_train_begin``.

    Args:
        path_template: path without extension, formatted with ``epoch`` (1-based),
            e.g. ``snapshots/resnet50_csv_{epoch:02d}``.
        save_keras: also write the ``.keras`` format.
        best_monitor: a log key (e.g. 'mAP'); when it improves, the model is also
            saved with the epoch replaced by 'best'.
        model: save this model instead of the one being trained.
        stateful_callbacks: dict name -> callback whose state (:func:`callback_state`)
            goes into every snapshot.
        extra_state: dict of JSON values stored as they are (e.g. the seed, the stream position and
            ``run_dir``, the run folder a resumed run continues the record of).
        resume_state: a training state read from the snapshot being resumed
            (:func:`keras_retinanet.checkpoint.training_state.read_training_state`); restored
            into ``stateful_callbacks`` when training begins.
        keep: which epochs' files stay: 'all' (keras-retinanet's), 'best' (the best, and the last epoch's: each epoch's
            file goes once the next is written) or 'last' (the last epoch's only; no best file).
    """

    def __init__(
        self,
        path_template,
        save_keras=False,
        best_monitor=None,
        model=None,
        stateful_callbacks=None,
        extra_state=None,
        resume_state=None,
        keep="all",
    ):
        super().__init__()
        if keep not in KEEP_CHOICES:
            raise ValueError(f"keep must be one of {', '.join(KEEP_CHOICES)}, got {keep!r}")
        self.keep = keep
        self.path_template = path_template
        self.save_keras = save_keras
        self.best_monitor = best_monitor
        self.snapshot_model = model
        self.stateful_callbacks = dict(stateful_callbacks or {})
        self.extra_state = dict(extra_state or {})
        self.resume_state = resume_state
        self.best = None
        self.saved = []

    def training_state(self, epoch):
        """What a resumed run needs besides the model: a JSON-serialisable dict.

        Args:
            epoch: number of epochs completed.
        """
        return {
            "epoch": epoch,
            "best": _plain(self.best) if self.best is not None else None,
            "callbacks": {name: callback_state(callback) for name, callback in self.stateful_callbacks.items()},
            **self.extra_state,
        }

    def on_train_begin(self, logs=None):
        # A run killed while saving leaves a hidden temporary file; it is never a snapshot.
        for extension in (".h5", ".keras"):
            remove_stale_temporaries(self.path_template.replace("{epoch:02d}", "*") + extension)
        if self.resume_state:
            for name, callback in self.stateful_callbacks.items():
                restore_callback_state(callback, (self.resume_state.get("callbacks") or {}).get(name))
            if self.resume_state.get("best") is not None:
                self.best = self.resume_state["best"]

    def _save(self, name, state):
        model = self.snapshot_model if self.snapshot_model is not None else self.model
        paths = [name + ".h5"] + ([name + ".keras"] if self.save_keras else [])
        for path in paths:
            save_model_atomically(model, path, finalize=lambda temporary: write_training_state(temporary, state))
            self.saved.append(path)
        return paths

    def _remove_epoch(self, epoch):
        """Delete the files of an earlier epoch (1-based), also one written before a resume."""
        name = self.path_template.format(epoch=epoch)
        for path in (name + ".h5", name + ".keras"):
            if os.path.exists(path):
                os.remove(path)
            if path in self.saved:
                self.saved.remove(path)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        value = logs.get(self.best_monitor) if self.best_monitor is not None else None
        improved = value is not None and (self.best is None or value > self.best)
        if improved:
            self.best = value
        state = self.training_state(epoch + 1)
        self._save(self.path_template.format(epoch=epoch + 1), state)
        if improved and self.keep != "last":
            best_name = self.path_template.replace("{epoch:02d}", "best").format(epoch=epoch + 1)
            self._save(best_name, state)
        if self.keep != "all" and epoch > 0:
            self._remove_epoch(epoch)  # the previous epoch's, now that this one is on disk

