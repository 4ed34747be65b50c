"""MobileNet backbones: keras-retinanet's MobileNet (v1), plus MobileNetV2 and MobileNetV3.

MobileNet names are ``mobilenet{128,160,192,224}_{alpha}`` as in keras-retinanet; the
size only names the ImageNet file the weights came from (the network itself accepts any
input size), alpha is the width multiplier. C3-C5 are ``conv_pw_5_relu``,
``conv_pw_11_relu`` and ``conv_pw_13_relu``, as keras-retinanet took them.

MobileNetV2 (``mobilenetv2``, ``mobilenetv2_{alpha}``) and MobileNetV3
(``mobilenetv3small``, ``mobilenetv3large``, optionally ``_{alpha}``) follow the same
rule: C3-C5 are the last layers at strides 8, 16 and 32, i.e. the expansion activations
feeding the next stride-2 depthwise conv and the trunk's final activation.

All of them take 'tf' preprocessing (pixels scaled to [-1, 1]) outside the model;
MobileNetV3 is therefore built with ``include_preprocessing=False``, so that its own
rescaling layer does not scale a second time.
"""

import contextlib

import keras

from .applications import ApplicationBackbone

MOBILENET_SIZES = (128, 160, 192, 224)
MOBILENET_ALPHAS = ("0.25", "0.5", "0.75", "1.0")
# Every MobileNet (v1) name this package builds: the sizes and widths of Keras' ImageNet files.
MOBILENET_NAMES = tuple(f"mobilenet{size}_{alpha}" for size in MOBILENET_SIZES for alpha in MOBILENET_ALPHAS)
MOBILENETV2_ALPHAS = ("0.35", "0.5", "0.75", "1.0", "1.3", "1.4")
MOBILENETV3_ALPHAS = ("0.75", "1.0")


def name_alpha(name, default="1.0"):
    """The width multiplier written after the '_' of a backbone name, e.g. 'mobilenet224_0.5' -> 0.5."""
    _, _, alpha = name.partition("_")
    return float(alpha or default)


class _MobileNetFamilyBackbone(ApplicationBackbone):
    """What every MobileNet shares: 'tf' preprocessing, the width multiplier in the name, and a stem that
    rounds up ('same' conv) before stride-2 steps that pad (0, 1) or (k//2 - 1, k//2) and round down."""

    preprocessing_mode = "tf"
    halving_rounding = ("ceil", "floor", "floor", "floor", "floor")

    @property
    def alpha(self):
        return name_alpha(self.backbone)


class MobileNetBackbone(_MobileNetFamilyBackbone):
    """keras-retinanet's MobileNet (v1), 'tf' preprocessing.

    ``allowed_backbones`` is keras-retinanet 1.0.0's list of size prefixes, to which its callers
    (and its tests) append ``_{alpha}``; the full names are :meth:`names` (``MOBILENET_NAMES``).
    1.0.0 validated only the part before the '_'; the whole name is validated here, so that a
    width without Keras ImageNet weights, or none at all ('mobilenet224', which 1.0.0 let
    through to fail while building), is an unknown backbone.
    """

    allowed_backbones = [f"mobilenet{size}" for size in MOBILENET_SIZES]
    family = "MobileNet"

    @classmethod
    def names(cls) -> list:
        """Every full name built, ``mobilenet{size}_{alpha}``."""
        return list(MOBILENET_NAMES)

    @property
    def weights_size(self):
        return int(self.backbone.split("_")[0][len("mobilenet"):])

    def application(self, inputs):
        return keras.applications.MobileNet(input_tensor=inputs, alpha=self.alpha, include_top=False, weights=None)

    def pyramid_inputs(self, application):
        return [application.get_layer(f"conv_pw_{block}_relu").output for block in (5, 11, 13)]

    def imagenet_weights_file(self):
        alpha_text = {1.0: "1_0", 0.75: "7_5", 0.5: "5_0", 0.25: "2_5"}[self.alpha]
        return f"Keras' mobilenet_{alpha_text}_{self.weights_size}_tf_no_top.h5"


class MobileNetV2Backbone(_MobileNetFamilyBackbone):
    """MobileNetV2, 'tf' preprocessing; 'mobilenetv2' is width 1.0."""

    allowed_backbones = ["mobilenetv2"] + [f"mobilenetv2_{alpha}" for alpha in MOBILENETV2_ALPHAS]
    family = "MobileNetV2"

    def application(self, inputs):
        return keras.applications.MobileNetV2(input_tensor=inputs, alpha=self.alpha, include_top=False, weights=None)

    def pyramid_inputs(self, application):
        return [application.get_layer(name).output for name in ("block_6_expand_relu", "block_13_expand_relu", "out_relu")]

    def imagenet_weights_file(self):
        return f"Keras' mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{self.alpha}_224_no_top.h5"


# The stride-2 depthwise convs that start strides 16 and 32; C3 and C4 are their inputs.
MOBILENETV3_STRIDE_BLOCKS = {
    "small": ("expanded_conv_3_depthwise_pad", "expanded_conv_8_depthwise_pad"),
    "large": ("expanded_conv_6_depthwise_pad", "expanded_conv_12_depthwise_pad"),
}


def hard_sigmoid_layer(x):
    """relu6(x + 3) / 6 as one Activation layer."""
    return keras.layers.Activation("hard_sigmoid")(x)


@contextlib.contextmanager
def savable_hard_sigmoid():
    """Build keras.applications MobileNetV3 with a savable hard sigmoid.

    Its squeeze-excite blocks compute ``ReLU(6)(x + 3.0) * (1 / 6)``: bare tensor ops,
    which Keras 3 cannot read back from a legacy ``.h5`` model file ("Only input tensors
    may be passed as positional arguments"). Keras' 'hard_sigmoid' activation is the same
    function (relu6(x + 3) / 6) in one layer without weights, so ImageNet weights and
    outputs are unchanged.
    """
    from keras.src.applications import mobilenet_v3

    original = getattr(mobilenet_v3, "hard_sigmoid", None)
    if original is None:  # a Keras without this helper: build as Keras does
        yield
        return
    mobilenet_v3.hard_sigmoid = hard_sigmoid_layer
    try:
        yield
    finally:
        mobilenet_v3.hard_sigmoid = original


class MobileNetV3Backbone(_MobileNetFamilyBackbone):
    """MobileNetV3 small/large, 'tf' preprocessing outside the model (built without its rescaling)."""

    allowed_backbones = [
        f"mobilenetv3{size}{suffix}" for size in ("small", "large") for suffix in [""] + [f"_{a}" for a in MOBILENETV3_ALPHAS]
    ]
    family = "MobileNetV3"

    @property
    def size(self):
        return "small" if self.backbone.startswith("mobilenetv3small") else "large"

    def application(self, inputs):
        constructor = keras.applications.MobileNetV3Small if self.size == "small" else keras.applications.MobileNetV3Large
        with savable_hard_sigmoid():
            return constructor(
                input_tensor=inputs, alpha=self.alpha, include_top=False, weights=None, include_preprocessing=False
            )

    def pyramid_inputs(self, application):
        # The expansion activations are auto-named ('activation_3', 're_lu_7'), so they are
        # found as the inputs of the explicitly named padding layers that follow them.
        c3_next, c4_next = MOBILENETV3_STRIDE_BLOCKS[self.size]
        return [application.get_layer(c3_next).input, application.get_layer(c4_next).input, application.outputs[0]]

    def stored_layer_name(self, name):
        """Keras 2 named MobileNetV3 layers 'expanded_conv_1/project/BatchNorm', Keras 3 'expanded_conv_1_project_bn'."""
        return name.replace("/BatchNorm", "_bn").replace("/", "_").lower()

    def imagenet_weights_file(self):
        return f"Keras' weights_mobilenet_v3_{self.size}_224_{self.alpha}_float_no_top_v2.h5"
