"""RetinaNetModel, the Keras model class of every RetinaNet this package builds: a functional model that carries its
spec (``spec_of`` reads it). Saved files name the class by its registered name, keras_retinanet>RetinaNetModel, so
files written when this module was models/retinanet_model.py load as before."""

from typing import Optional

import keras

from ..config.spec import DetectorSpec

PACKAGE = "keras_retinanet"


@keras.saving.register_keras_serializable(package=PACKAGE)
class RetinaNetModel(keras.Model):
    """A functional Keras model with a :class:`DetectorSpec` that travels with its configuration.

    Built like any functional model, ``RetinaNetModel(inputs, outputs, name=..., spec=...)``.
    The spec is part of ``get_config``, so it is saved in ``.keras`` and ``.h5`` files, read
    back by ``keras.models.load_model``, and kept by anything that rebuilds the model from
    its configuration (mixed precision, cloning under a distribution strategy).

    Attributes:
        spec: the model's :class:`DetectorSpec`, or None (a model built without one).
    """

    def __init__(self, *args, spec: Optional[DetectorSpec] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.spec = spec

    def get_config(self):
        config = super().get_config()
        if self.spec is not None:
            config["spec"] = self.spec.to_dict()
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        spec = config.pop("spec", None)
        model = super().from_config(config, custom_objects=custom_objects)
        model.spec = DetectorSpec.from_dict(spec) if spec is not None else None
        return model


# Keras' HDF5 loader looks a model's class up by its bare name; the registration above files it under
# 'keras_retinanet>RetinaNetModel'. Both names, so that plain keras.models.load_model reads .h5 files too.
keras.saving.get_custom_objects()["RetinaNetModel"] = RetinaNetModel


def spec_of(model) -> Optional[DetectorSpec]:
    """The spec a model carries, or None (keras-retinanet's files, models built without one)."""
    return getattr(model, "spec", None) if isinstance(model, RetinaNetModel) else None
