"""DenseNet-121/169/201 backbones, as keras-retinanet built them.

C3-C5 are the outputs of the last three dense blocks (``conv3_block{n}_concat``,
``conv4_block{n}_concat``, ``conv5_block{n}_concat``; strides 8, 16, 32), taken before
the transition layers, and images get 'tf' preprocessing (scaled to [-1, 1]).
"""

import keras

from .applications import ApplicationBackbone

# Dense layers per block, and the keras.applications constructor.
DENSENET_BLOCKS = {
    "densenet121": [6, 12, 24, 16],
    "densenet169": [6, 12, 32, 32],
    "densenet201": [6, 12, 48, 32],
}
DENSENET_APPLICATIONS = {
    "densenet121": keras.applications.DenseNet121,
    "densenet169": keras.applications.DenseNet169,
    "densenet201": keras.applications.DenseNet201,
}


def pyramid_layer_names(depth):
    """Names of the C3, C4 and C5 layers: the concatenation ending each of the last three dense blocks.

    e.g. 'densenet121' -> ['conv3_block12_concat', 'conv4_block24_concat', 'conv5_block16_concat'].
    """
    blocks = DENSENET_BLOCKS[depth]
    return [f"conv{stage + 2}_block{blocks[stage]}_concat" for stage in (1, 2, 3)]


class DenseNetBackbone(ApplicationBackbone):
    """DenseNet-121/169/201 with 'tf' preprocessing."""

    allowed_backbones = sorted(DENSENET_BLOCKS)
    family = "DenseNet"
    preprocessing_mode = "tf"
    # conv1 (pad 3, 'valid' 7x7) and pool1 (pad 1, 'valid' 3x3) round up; the transitions'
    # 2x2 'valid' average pooling rounds down.
    halving_rounding = ("ceil", "ceil", "floor", "floor", "floor")

    def application(self, inputs):
        return DENSENET_APPLICATIONS[self.backbone](input_tensor=inputs, include_top=False, weights=None)

    def pyramid_inputs(self, application):
        return [application.get_layer(name).output for name in pyramid_layer_names(self.backbone)]

    def stored_layer_name(self, name):
        """Keras 2 named the stem 'conv1/conv' and 'conv1/bn'; Keras 3 names them 'conv1_conv' and 'conv1_bn'."""
        return name.replace("/", "_")

    def imagenet_weights_file(self):
        return f"Keras' {self.backbone}_weights_tf_dim_ordering_tf_kernels_notop.h5"
