"""Initialisers of RetinaNet's heads."""

import math

import keras
import numpy as np


@keras.saving.register_keras_serializable(package="keras_retinanet")
class PriorProbability(keras.initializers.Initializer):
    """Constant bias ``-log((1 - p) / p)``, so every anchor starts with foreground score p.

    With p = 0.01 the loss of the many background anchors does not swamp the first
    iterations of training (the paper, section 4.1).
    """

    def __init__(self, probability=0.01):
        if not 0.0 < probability < 1.0:
            raise ValueError(f"prior probability must lie strictly between 0 and 1, got {probability}")
        self.probability = float(probability)

    def __call__(self, shape, dtype=None):
        value = -math.log((1.0 - self.probability) / self.probability)
        return keras.ops.convert_to_tensor(np.full(shape, value, dtype=np.float32), dtype=dtype or "float32")

    def get_config(self):
        return {"probability": self.probability}
