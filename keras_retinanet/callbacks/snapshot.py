"""Saving training snapshots every epoch, atomically, and keeping the best one."""

import keras

from ..utils.atomic import save_model_atomically


class Snapshot(keras.callbacks.Callback):
    """Save the model after every epoch as ``{template}.h5`` (and ``.keras`` on request).

    Args:
        path_template: path without extension, formatted with ``epoch`` (1-based),
            e.g. ``snapshots/resnet50_csv_{epoch:02d}``.
        save_keras: also write the ``.keras`` format.
        best_monitor: a log key (e.g. 'mAP'); when it improves, the model is also
            saved with the epoch replaced by 'best'.
        model: save this model instead of the one being trained.
    """

    def __init__(self, path_template, save_keras=False, best_monitor=None, model=None):
        super().__init__()
        self.path_template = path_template
        self.save_keras = save_keras
        self.best_monitor = best_monitor
        self.snapshot_model = model
        self.best = None
        self.saved = []

    def _save(self, name):
        model = self.snapshot_model if self.snapshot_model is not None else self.model
        paths = [name + ".h5"] + ([name + ".keras"] if self.save_keras else [])
        for path in paths:
            save_model_atomically(model, path)
            self.saved.append(path)
        return paths

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self._save(self.path_template.format(epoch=epoch + 1))
        if self.best_monitor is None:
            return
        value = logs.get(self.best_monitor)
        if value is not None and (self.best is None or value > self.best):
            self.best = value
            best_name = self.path_template.replace("{epoch:02d}", "best").format(epoch=epoch + 1)
            self._save(best_name)
