"""EfficientNet-B0..B7 backbones.

keras-retinanet took C3-C5 from ``block4a_expand_activation``, ``block6a_expand_activation``
and ``top_activation`` (the last layers at strides 8, 16 and 32) and preprocessed images
in 'torch' mode: ``(x / 255 - mean) / std`` with the ImageNet RGB mean (0.485, 0.456, 0.406)
and std (0.229, 0.224, 0.225), applied to the BGR channels as they come.

keras.applications EfficientNet carries that normalisation inside the model (a Rescaling
by 1/255 and a Normalization layer). Here the Normalization layer is given exactly those
statistics when the model is built, and :meth:`EfficientNetBackbone.preprocess_image`
only casts to float32: raw BGR pixels in [0, 255] go in, and the trunk sees what
keras-retinanet's trunk saw. (Keras' own ImageNet file stores the std where the variance
belongs, which is why Keras adds a correcting Rescaling when it loads it; the statistics
are set here instead, and the file's Normalization weights are not used.)
"""

import numpy as np

import keras

from .applications import ApplicationBackbone

EFFICIENTNET_APPLICATIONS = {
    "EfficientNetB0": keras.applications.EfficientNetB0,
    "EfficientNetB1": keras.applications.EfficientNetB1,
    "EfficientNetB2": keras.applications.EfficientNetB2,
    "EfficientNetB3": keras.applications.EfficientNetB3,
    "EfficientNetB4": keras.applications.EfficientNetB4,
    "EfficientNetB5": keras.applications.EfficientNetB5,
    "EfficientNetB6": keras.applications.EfficientNetB6,
    "EfficientNetB7": keras.applications.EfficientNetB7,
}
PYRAMID_LAYERS = ("block4a_expand_activation", "block6a_expand_activation", "top_activation")
IMAGENET_MEAN_RGB = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD_RGB = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def set_input_normalization(application):
    """Give the model's Normalization layer the ImageNet statistics (after its 1/255 rescaling).

    Returns:
        the Normalization layer.
    """
    normalization = [layer for layer in application.layers if isinstance(layer, keras.layers.Normalization)]
    if len(normalization) != 1:
        raise ValueError(f"expected one Normalization layer in {application.name}, found {len(normalization)}")
    layer = normalization[0]
    mean, variance, count = layer.get_weights()
    layer.set_weights([IMAGENET_MEAN_RGB.reshape(mean.shape), (IMAGENET_STD_RGB**2).reshape(variance.shape), count])
    # The layer caches its statistics as tensors; refresh them from the new weights.
    layer.finalize_state()
    return layer


class EfficientNetBackbone(ApplicationBackbone):
    """EfficientNet-B0..B7; raw BGR pixels in, normalised inside the model.

    Names are 'EfficientNetB0' ... 'EfficientNetB7' as in keras-retinanet (any letter case).
    """

    allowed_backbones = list(EFFICIENTNET_APPLICATIONS)
    family = "EfficientNet"
    # The model rescales and normalises its input itself (see the module docstring).
    preprocessing_mode = "none"
    # Every stride-2 conv follows a zero padding of (k//2 - 1, k//2) and rounds down.
    halving_rounding = ("floor",) * 5

    @property
    def depth(self):
        """The canonical name, e.g. 'efficientnetb3' -> 'EfficientNetB3'."""
        by_lower = {name.lower(): name for name in self.allowed_backbones}
        return by_lower.get(self.backbone.lower())

    def validate(self):
        if self.depth is None:
            self.raise_unknown()

    def application(self, inputs):
        application = EFFICIENTNET_APPLICATIONS[self.depth](input_tensor=inputs, include_top=False, weights=None)
        set_input_normalization(application)
        return application

    def pyramid_inputs(self, application):
        return [application.get_layer(name).output for name in PYRAMID_LAYERS]

    def preprocess_image(self, inputs):
        """Cast an image (or batch) to float32; scaling and normalisation happen inside the model.

        Args:
            inputs: (..., 3) BGR image(s), pixel values in [0, 255].

        Returns:
            float32 array of the same shape and values.
        """
        return np.asarray(inputs).astype(np.float32)

    def constant_layer_names(self, model):
        """The input Normalization: its statistics are fixed, and keras-retinanet snapshots do not have it."""
        return [layer.name for layer in model.layers if isinstance(layer, keras.layers.Normalization)]

    def imagenet_weights_file(self):
        return f"Keras' {self.depth.lower()}_notop.h5"
