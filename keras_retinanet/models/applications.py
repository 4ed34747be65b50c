"""The base class of every backbone built from ``keras.applications``.

:class:`ApplicationBackbone` holds what the VGG, MobileNet, DenseNet and EfficientNet
backbones share: the trunk is a ``keras.applications`` model built with ``weights=None`` on
the RetinaNet input, so that its layers keep Keras' names and keras-retinanet snapshots
load by name; ImageNet weights come from Keras' ``*_notop.h5`` files, given by path or fetched by
name (see :mod:`keras_retinanet.hub`).
"""

import numpy as np

import keras

from .. import hub
from ..anchors import DEFAULT_PYRAMID_LEVELS
from ..errors import ModelError, ModelFileError
from ..checkpoint import weights as weight_files
from . import retinanet
from .base import Backbone

# Layers of the feature pyramid that read the trunk's C3, C4 and C5 (see models.retinanet).
PYRAMID_INPUT_LAYERS = ("C3_reduced", "C4_reduced", "C5_reduced")


def strided_feature_shapes(image_shape, pyramid_levels, rounding):
    """Feature map sizes of a trunk whose stride-2 steps round as given.

    keras.applications trunks halve their input five times, each step rounding down
    ('valid' pooling, a (0, 1) zero padding before a 'valid' conv) or up ('same' convs,
    symmetric padding); P6 and P7 are 3x3 'same' convs of stride 2 and round up.

    Args:
        image_shape: (height, width, ...) of the network input.
        pyramid_levels: levels, e.g. [3, 4, 5, 6, 7].
        rounding: five entries, 'floor' or 'ceil': how the steps to strides 2, 4, 8, 16
            and 32 round.

    Returns:
        list of (height, width) int arrays, one per level.
    """
    size = np.array(image_shape[:2], dtype=np.int64)
    sizes = {}
    for level in range(1, max(pyramid_levels) + 1):
        step = rounding[level - 1] if level <= len(rounding) else "ceil"
        size = size // 2 if step == "floor" else (size + 1) // 2
        sizes[level] = size
    return [sizes[level] for level in pyramid_levels]


class ApplicationBackbone(Backbone):
    """A backbone whose trunk is a ``keras.applications`` model.

    Subclasses set ``allowed_backbones``, ``preprocessing_mode`` and ``halving_rounding``
    and implement :meth:`application` and :meth:`pyramid_inputs`; a family whose
    ``allowed_backbones`` are not its full names (MobileNet) overrides :meth:`names`.
    """

    allowed_backbones = []
    family = "backbone"
    # How each of the trunk's five stride-2 steps rounds odd sizes (see strided_feature_shapes).
    halving_rounding = ("floor",) * 5

    @classmethod
    def names(cls) -> list:
        """Every backbone name this class builds (default: its ``allowed_backbones``)."""
        return list(cls.allowed_backbones)

    def validate(self):
        if self.backbone not in self.names():
            self.raise_unknown()

    def raise_unknown(self):
        """Raise the ModelError for a name this class does not build, listing its valid names.

        A ModelError, like ResNetBackbone's, so that :func:`keras_retinanet.models.backbone`
        turns it into its one-line "unknown backbone" error and the commands print it
        without a traceback.
        """
        raise ModelError(
            f"backbone '{self.backbone}' is not a {self.family} this package builds; "
            f"choose one of {', '.join(self.names())}"
        )

    def application(self, inputs):
        """The keras.applications model (no classifier, ``weights=None``) built on ``inputs``."""
        raise NotImplementedError("application method not implemented.")

    def pyramid_inputs(self, application):
        """[C3, C4, C5] tensors of ``application``, strides 8, 16 and 32."""
        raise NotImplementedError("pyramid_inputs method not implemented.")

    def imagenet_weights_file(self):
        """Name of Keras' ImageNet weight file for this backbone, for messages."""
        return "the Keras *_notop.h5 ImageNet weights"

    def stored_layer_name(self, name):
        """The name a layer of a Keras 2 weight file has in the Keras 3 model (default: the same)."""
        return name

    def retinanet(self, num_classes, inputs=None, modifier=None, **kwargs):
        """A RetinaNet on this backbone.

        Args:
            num_classes: number of classes.
            inputs: image input tensor (B, H, W, 3); a new ``input_1`` Input by default.
            modifier: called with the trunk model (inputs to [C3, C4, C5]) before the
                heads are added, e.g. :func:`keras_retinanet.models.base.freeze`.
            kwargs: passed to :func:`models.retinanet.retinanet`.

        Returns:
            the training model, outputs ``regression`` (B, N, 4) and ``classification`` (B, N, C).
        """
        if inputs is None:
            inputs = keras.layers.Input(shape=(None, None, 3), name="input_1")
        application = self.application(inputs)
        c3, c4, c5 = self.pyramid_inputs(application)
        if modifier is not None:
            trunk = keras.Model(inputs=inputs, outputs=[c3, c4, c5], name=application.name)
            modifier(trunk)
        backbone_layers = {"C3": c3, "C4": c4, "C5": c5}
        return retinanet.retinanet(inputs=inputs, num_classes=num_classes, backbone_layers=backbone_layers, **kwargs)

    def feature_shapes(self, image_shape, pyramid_levels=None):
        """Pyramid feature sizes for an input size; a ``shapes_callback`` for anchors_for_shape.

        Returns:
            list of (height, width) int arrays, one per level (default P3-P7).
        """
        if pyramid_levels is None:
            pyramid_levels = list(DEFAULT_PYRAMID_LEVELS)
        return strided_feature_shapes(image_shape, pyramid_levels, self.halving_rounding)

    def follow_model_padding(self, model) -> bool:
        """Count feature-map sizes as ``model`` computes them; returns whether the rounding changed.

        A Keras 2.2-era file (keras-retinanet 1.0.0's MobileNets) pads conv1 with a ((0, 1), (0, 1))
        'conv1_pad' before a 'valid' conv1, which halves odd sides rounding down where this package's 'same'
        conv1 rounds them up; the legacy loader rebuilds that padding, and the anchor targets of a resumed
        run must count the anchors such a model outputs.
        """
        if self.halving_rounding[0] == "floor" or "conv1_pad" not in {layer.name for layer in model.layers}:
            return False
        self.halving_rounding = ("floor",) + tuple(self.halving_rounding[1:])
        return True

    def backbone_layer_names(self, model):
        """Names of the layers of a RetinaNet ``model`` that belong to the trunk.

        The trunk is everything between the input and the pyramid's C3-C5 inputs, found
        from the graph so that auto-named layers (activations, rescaling) are included.
        """
        try:
            features = [model.get_layer(name).input for name in PYRAMID_INPUT_LAYERS]
        except ValueError as error:
            raise ValueError(f"model '{model.name}' is not a RetinaNet: {error}") from None
        trunk = keras.Model(inputs=model.inputs, outputs=features)
        return [layer.name for layer in trunk.layers if not isinstance(layer, keras.layers.InputLayer)]

    def constant_layer_names(self, model):
        """Trunk layers whose weights the backbone sets itself, never read from a file (default: none)."""
        return []

    def imagenet_layer_names(self, model):
        """Trunk layers whose weights come from the ImageNet file: those with weights, less the constant ones."""
        constant = set(self.constant_layer_names(model))
        return [
            name for name in self.backbone_layer_names(model) if model.get_layer(name).weights and name not in constant
        ]

    def load_imagenet_weights(self, model, path):
        """Load ImageNet weights of the trunk from Keras' ``*_notop.h5`` file: a path, a weights name or a URL.

        A name or URL is fetched through :func:`keras_retinanet.hub.fetch` (cached, checksummed).
        Layers are matched by name (Keras 2 names are translated by
        :meth:`stored_layer_name`); the heads are left untouched.

        Returns:
            number of layers loaded.

        Raises:
            ModelFileError: the file cannot be read, lacks layers of this backbone or has
                weights of other shapes (e.g. another depth or width).
        """
        if not hub.is_known_source(path):
            raise ModelFileError(
                path, f"no such file; expected {self.imagenet_weights_file()}, or the name {self.imagenet_weights_name()} "
                "to download it",
            )
        path = hub.fetch(path)
        stored = {self.stored_layer_name(name): values for name, values in weight_files.read_layer_weights(path).items()}
        expected = self.imagenet_layer_names(model)
        missing = [name for name in expected if name not in stored]
        if missing:
            shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
            raise ModelFileError(
                path,
                f"{len(missing)} of the {len(expected)} {self.backbone} layers with weights are not in the file "
                f"({shown}); expected {self.imagenet_weights_file()}",
            )
        return weight_files.assign_layer_weights(model, stored, path, only=set(expected))
