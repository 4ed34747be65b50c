"""Keras callbacks for training RetinaNet: every callback of a training run.

    RedirectModel   (here) a callback run against another model than the one being trained
    eval, coco      Evaluate (Pascal VOC mAP), CocoEval: evaluation after each epoch
    guard           NonFiniteGuard: stops a run whose loss is no longer finite
    snapshot        Snapshot: model files written atomically with their training state (--keep-snapshots)
    ema             AverageWeightsIn/Out: the weights' moving average (--ema) in the model for evaluation and snapshots
    run_record      the run folder and RunRecord (config.json, metrics.csv), curves: curves.png
    training_run    create_callbacks, the callbacks a configuration asks for (ExplainedEarlyStopping among them)
"""

import keras


class RedirectModel(keras.callbacks.Callback):
    """Run a callback against another model than the one being trained.

    Lets an evaluation or snapshot callback use the inference (or template) model
    while ``fit`` runs on the training model.
    """

    def __init__(self, callback, model):
        super().__init__()
        self.callback = callback
        self.redirect_model = model

    def on_epoch_begin(self, epoch, logs=None):
        self.callback.on_epoch_begin(epoch, logs=logs)

    def on_epoch_end(self, epoch, logs=None):
        self.callback.on_epoch_end(epoch, logs=logs)

    def on_batch_begin(self, batch, logs=None):
        self.callback.on_batch_begin(batch, logs=logs)

    def on_batch_end(self, batch, logs=None):
        self.callback.on_batch_end(batch, logs=logs)

    def on_train_begin(self, logs=None):
        self.callback.set_model(self.redirect_model)
        self.callback.on_train_begin(logs=logs)

    def on_train_end(self, logs=None):
        self.callback.on_train_end(logs=logs)
