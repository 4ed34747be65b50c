"""Batch normalisation that can be frozen, as keras-resnet's was."""

import keras

PACKAGE = "keras_retinanet"


@keras.saving.register_keras_serializable(package=PACKAGE)
class BatchNormalization(keras.layers.BatchNormalization):
    """BatchNormalization whose ``freeze=True`` fixes it in inference mode.

    A frozen layer uses its moving statistics in training too and its weights are not
    trained: with the small batches of detection training, batch statistics are too
    noisy to learn from, so pretrained ResNets are used this way.
    """

    def __init__(self, freeze=True, **kwargs):
        super().__init__(**kwargs)
        self.freeze = bool(freeze)
        if self.freeze:
            self.trainable = False

    def call(self, inputs, training=None, mask=None):
        if self.freeze:
            training = False
        return super().call(inputs, training=training, mask=mask)

    def get_config(self):
        config = super().get_config()
        config["freeze"] = self.freeze
        return config
