"""ResNet-50/101/152 backbones, layer for layer as keras-resnet built them for keras-retinanet.

Layer names (``conv1``, ``bn_conv1``, ``res2a_branch2a``, ...), weight shapes, frozen
batch normalisation (eps 1e-5) and the caffe-style stride on the first 1x1 conv of a
stage are kept, so keras-retinanet's weight files load by name.
"""

import numpy as np

import keras

from .. import hub, layers
from ..errors import ModelError, ModelFileError
from ..checkpoint import weights as weight_files
from . import retinanet
from .base import Backbone

RESNET_BLOCKS = {
    "resnet50": [3, 4, 6, 3],
    "resnet101": [3, 4, 23, 3],
    "resnet152": [3, 8, 36, 3],
}
# ResNet-101/152 name the blocks of stages 3 and 4 b1, b2, ... instead of b, c, ...
RESNET_NUMERICAL_NAMES = {
    "resnet50": [False, False, False, False],
    "resnet101": [False, True, True, False],
    "resnet152": [False, True, True, False],
}
BN_EPSILON = 1e-5


def block_name(stage, block, numerical_name):
    """Name of a block in keras-resnet's scheme: stage 0, block 1 -> '2b' (or '2b1')."""
    if block > 0 and numerical_name:
        block_char = f"b{block}"
    else:
        block_char = chr(ord("a") + block)
    return f"{stage + 2}{block_char}"


def bottleneck(x, filters, stage, block, numerical_name=False, freeze_bn=True):
    """A bottleneck block: 1x1, 3x3, 1x1 convs and a shortcut.

    Args:
        x: (B, H, W, C) input.
        filters: width of the 1x1 and 3x3 convs; the block outputs 4 * filters.
        stage, block: position in the network (stage 0 is res2).

    Returns:
        (B, H / s, W / s, 4 * filters), s = 2 for the first block of stages 1-3.
    """
    stride = 2 if block == 0 and stage > 0 else 1
    name = block_name(stage, block, numerical_name)
    conv = {"use_bias": False, "kernel_initializer": "he_normal"}
    norm = {"axis": 3, "epsilon": BN_EPSILON, "freeze": freeze_bn}

    y = keras.layers.Conv2D(filters, (1, 1), strides=stride, name=f"res{name}_branch2a", **conv)(x)
    y = layers.BatchNormalization(name=f"bn{name}_branch2a", **norm)(y)
    y = keras.layers.Activation("relu", name=f"res{name}_branch2a_relu")(y)

    y = keras.layers.ZeroPadding2D(padding=1, name=f"padding{name}_branch2b")(y)
    y = keras.layers.Conv2D(filters, (3, 3), name=f"res{name}_branch2b", **conv)(y)
    y = layers.BatchNormalization(name=f"bn{name}_branch2b", **norm)(y)
    y = keras.layers.Activation("relu", name=f"res{name}_branch2b_relu")(y)

    y = keras.layers.Conv2D(filters * 4, (1, 1), name=f"res{name}_branch2c", **conv)(y)
    y = layers.BatchNormalization(name=f"bn{name}_branch2c", **norm)(y)

    if block == 0:
        shortcut = keras.layers.Conv2D(filters * 4, (1, 1), strides=stride, name=f"res{name}_branch1", **conv)(x)
        shortcut = layers.BatchNormalization(name=f"bn{name}_branch1", **norm)(shortcut)
    else:
        shortcut = x

    y = keras.layers.Add(name=f"res{name}")([y, shortcut])
    return keras.layers.Activation("relu", name=f"res{name}_relu")(y)


def resnet_layers(inputs, depth="resnet50", freeze_bn=True, legacy_padding=False):
    """The ResNet trunk without its classifier.

    Args:
        inputs: (B, H, W, 3) image tensor.
        depth: 'resnet50', 'resnet101' or 'resnet152'.
        freeze_bn: keep batch normalisation in inference mode and untrained.
        legacy_padding: build conv1 as keras-resnet 0.1.0 did (ZeroPadding 3, then a
            'valid' conv), as in snapshots made before mid-2020.

    Returns:
        [C2, C3, C4, C5] feature tensors, strides 4, 8, 16, 32.
    """
    blocks = RESNET_BLOCKS[depth]
    numerical_names = RESNET_NUMERICAL_NAMES[depth]
    if legacy_padding:
        x = keras.layers.ZeroPadding2D(padding=3, name="padding_conv1")(inputs)
        x = keras.layers.Conv2D(64, (7, 7), strides=(2, 2), use_bias=False, name="conv1", kernel_initializer="he_normal")(x)
    else:
        x = keras.layers.Conv2D(
            64, (7, 7), strides=(2, 2), use_bias=False, padding="same", name="conv1", kernel_initializer="he_normal"
        )(inputs)
    x = layers.BatchNormalization(axis=3, epsilon=BN_EPSILON, freeze=freeze_bn, name="bn_conv1")(x)
    x = keras.layers.Activation("relu", name="conv1_relu")(x)
    x = keras.layers.MaxPooling2D((3, 3), strides=(2, 2), padding="same", name="pool1")(x)

    features = 64
    outputs = []
    for stage, iterations in enumerate(blocks):
        for block in range(iterations):
            x = bottleneck(x, features, stage, block, numerical_name=numerical_names[stage], freeze_bn=freeze_bn)
        features *= 2
        outputs.append(x)
    return outputs


def keras_applications_name_map(depth="resnet50"):
    """Map keras.applications ResNet layer names to keras-resnet names.

    Returns:
        dict, e.g. 'conv2_block1_1_conv' -> 'res2a_branch2a', 'conv2_block1_1_bn' -> 'bn2a_branch2a'.
    """
    mapping = {"conv1_conv": "conv1", "conv1_bn": "bn_conv1"}
    branches = {"1": "branch2a", "2": "branch2b", "3": "branch2c", "0": "branch1"}
    for stage, iterations in enumerate(RESNET_BLOCKS[depth]):
        for block in range(iterations):
            name = block_name(stage, block, RESNET_NUMERICAL_NAMES[depth][stage])
            for index, branch in branches.items():
                if index == "0" and block > 0:
                    continue  # only a stage's first block has a projection shortcut
                prefix = f"conv{stage + 2}_block{block + 1}_{index}"
                mapping[f"{prefix}_conv"] = f"res{name}_{branch}"
                mapping[f"{prefix}_bn"] = f"bn{name}_{branch}"
    return mapping


class ResNetBackbone(Backbone):
    """ResNet-50/101/152 with caffe preprocessing (BGR, ImageNet means subtracted)."""

    allowed_backbones = sorted(RESNET_BLOCKS)
    preprocessing_mode = "caffe"
    has_frozen_batch_norm = True

    def validate(self):
        depth = self.backbone.split("_")[0]
        if depth not in RESNET_BLOCKS:
            raise ModelError(
                f"backbone '{self.backbone}' is not a ResNet this package builds; "
                f"choose one of {', '.join(self.allowed_backbones)}"
            )

    @property
    def depth(self):
        return self.backbone.split("_")[0]

    def retinanet(self, num_classes, inputs=None, modifier=None, freeze_bn=True, legacy_padding=False, **kwargs):
        """A RetinaNet on this ResNet; ``kwargs`` go to :func:`models.retinanet.retinanet`."""
        if inputs is None:
            inputs = keras.layers.Input(shape=(None, None, 3), name="input_1")
        c2, c3, c4, c5 = resnet_layers(inputs, self.depth, freeze_bn=freeze_bn, legacy_padding=legacy_padding)
        backbone_layers = {"C2": c2, "C3": c3, "C4": c4, "C5": c5}
        if modifier is not None:
            trunk = keras.Model(inputs=inputs, outputs=[c2, c3, c4, c5], name=self.depth)
            modifier(trunk)
        return retinanet.retinanet(inputs=inputs, num_classes=num_classes, backbone_layers=backbone_layers, **kwargs)

    def backbone_layer_names(self, model):
        """Names of the layers of ``model`` that belong to the ResNet trunk."""
        prefixes = ("conv1", "bn_conv1", "padding_conv1", "pool1", "res", "bn", "padding")
        return [layer.name for layer in model.layers if layer.name.startswith(prefixes)]

    def imagenet_weights_name(self) -> str:
        """'resnet50_imagenet' for 'resnet50' (and for names with a suffix, 'resnet50_x')."""
        return hub.imagenet_weights_name(self.depth)

    def load_imagenet_weights(self, model, path):
        """Load ImageNet weights of the trunk from an ``.h5`` file given by path, weights name or URL.

        Accepts keras-retinanet's ``ResNet-{50,101,152}-model.keras.h5`` (keras-resnet
        names; what the name ``resnet50_imagenet`` downloads) and Keras'
        ``resnet{50,101,152}_weights_tf_dim_ordering_tf_kernels_notop.h5`` (keras.applications
        names; their conv biases and BatchNorm eps 1.001e-5 are folded into the frozen
        BatchNorm so that outputs are unchanged). A name or URL is fetched through
        :func:`keras_retinanet.hub.fetch` (cached, checksummed).

        Returns:
            number of layers loaded.
        """
        if not hub.is_known_source(path):
            raise ModelFileError(
                path,
                f"no such file; pass keras-retinanet's ResNet-{self.depth[len('resnet'):]}-model.keras.h5 or Keras' "
                f"{self.depth}_weights_tf_dim_ordering_tf_kernels_notop.h5, or the name {self.imagenet_weights_name()} "
                "to download it",
            )
        path = hub.fetch(path)
        stored = weight_files.read_layer_weights(path)
        if "res2a_branch2a" in stored:
            layer_weights = {name: values for name, values in stored.items()}
        elif "conv2_block1_1_conv" in stored:
            layer_weights = fold_keras_applications_weights(stored, self.depth, path)
        else:
            raise ModelFileError(
                path,
                "no ResNet layers found (looked for 'res2a_branch2a' or 'conv2_block1_1_conv'); "
                "expected keras-retinanet's ResNet-50-model.keras.h5 or Keras' "
                "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
            )
        return weight_files.assign_layer_weights(model, layer_weights, path, only=self.backbone_layer_names(model))


def fold_keras_applications_weights(stored, depth, source="ImageNet weights"):
    """Turn keras.applications ResNet weights into keras-resnet layer weights.

    keras.applications convs have biases and its BatchNorm uses eps 1.001e-5; keras-resnet
    convs have none and use eps 1e-5. ``BN(conv(x) + b)`` equals ``BN'(conv(x))`` with
    ``mean' = mean - b``, and eps is moved into the variance: ``var' = var + 1e-8``.

    Args:
        stored: dict layer name -> list of arrays, keras.applications names.
        depth: 'resnet50', 'resnet101' or 'resnet152'.

    Returns:
        dict keras-resnet layer name -> list of arrays.
    """
    mapping = keras_applications_name_map(depth)
    converted = {}
    for name, target in mapping.items():
        if name.endswith("_conv") and name in stored:
            kernel, *bias = stored[name]
            converted[target] = [kernel]
            bn_source = name[: -len("_conv")] + "_bn"
            if bn_source in stored:
                gamma, beta, mean, variance = stored[bn_source]
                if bias:
                    mean = mean - bias[0]
                variance = variance + (1.001e-5 - BN_EPSILON)
                converted[mapping[bn_source]] = [gamma, beta, mean, variance]
    missing = [name for name in mapping if name.endswith("_conv") and name not in stored]
    if missing:
        raise ModelFileError(source, f"{depth} layers missing: {missing[:5]}{'...' if len(missing) > 5 else ''}")
    return {k: [np.asarray(v) for v in values] for k, values in converted.items()}
