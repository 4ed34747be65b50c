"""VGG-16/19 backbones.

keras-retinanet took the pyramid inputs of VGG from the outputs of its pooling layers
``block3_pool``, ``block4_pool`` and ``block5_pool`` (strides 8, 16, 32) and fed it caffe
preprocessed (BGR, ImageNet means subtracted) images; both are kept here.
"""

import keras

from .applications import ApplicationBackbone


VGG_APPLICATIONS = {
    "vgg16": keras.applications.VGG16,
    "vgg19": keras.applications.VGG19,
}


class VGGBackbone(ApplicationBackbone):
    """VGG-16/19 with caffe preprocessing; C3-C5 are the outputs of block3-5 pooling."""

    allowed_backbones = sorted(VGG_APPLICATIONS)
    family = "VGG"
    preprocessing_mode = "caffe"
    # 2x2 'valid' max pooling drops an odd last row and column.
    halving_rounding = ("floor",) * 5

    def application(self, inputs):
        return VGG_APPLICATIONS[self.backbone](input_tensor=inputs, include_top=False, weights=None)

    def pyramid_inputs(self, application):
        return [application.get_layer(f"block{block}_pool").output for block in (3, 4, 5)]

    def imagenet_weights_file(self):
        return f"Keras' {self.backbone}_weights_tf_dim_ordering_tf_kernels_notop.h5"
