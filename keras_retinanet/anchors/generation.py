"""Anchor generation: reference anchors, their placement over feature maps, all anchors of an image.

Everything follows keras-retinanet 1.0.0 exactly:

* anchors are corner boxes ``(x1, y1, x2, y2)`` centred on ``((j + 0.5) * stride, (i + 0.5) * stride)``;
* within a position the order is ratio-major (for each ratio, every scale);
* positions are row-major (y outer, x inner), which is the order in which the heads'
  ``Reshape((-1, C))`` lays out their outputs.
"""

from typing import Callable, List, Optional, Sequence

import numpy as np

DEFAULT_PYRAMID_LEVELS = (3, 4, 5, 6, 7)


class AnchorParameters:
    """The anchor settings of every pyramid level.

    Args:
        sizes: base size of the anchors, one per pyramid level.
        strides: stride of each pyramid level in pixels of the input image.
        ratios: aspect ratios (height / width) used at every position.
        scales: scales applied to the base size at every position.
    """

    def __init__(self, sizes, strides, ratios, scales):
        self.sizes = [int(s) for s in sizes]
        self.strides = [int(s) for s in strides]
        self.ratios = np.asarray(ratios, dtype=np.float32)
        self.scales = np.asarray(scales, dtype=np.float32)
        if len(self.sizes) != len(self.strides):
            raise ValueError(
                f"anchor parameters: {len(self.sizes)} sizes but {len(self.strides)} strides; "
                "give one size per stride (one per pyramid level)"
            )

    def num_anchors(self):
        """Number of anchors at each position of each level."""
        return len(self.ratios) * len(self.scales)

    def get_config(self):
        return {
            "sizes": list(self.sizes),
            "strides": list(self.strides),
            "ratios": [float(r) for r in self.ratios],
            "scales": [float(s) for s in self.scales],
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return isinstance(other, AnchorParameters) and self.get_config() == other.get_config()

    def __repr__(self):
        return "AnchorParameters({sizes}, {strides}, {ratios}, {scales})".format(**self.get_config())


AnchorParameters.default = AnchorParameters(
    sizes=[32, 64, 128, 256, 512],
    strides=[8, 16, 32, 64, 128],
    ratios=np.array([0.5, 1, 2], np.float32),
    scales=np.array([2 ** 0, 2 ** (1.0 / 3.0), 2 ** (2.0 / 3.0)], np.float32),
)


def generate_anchors(base_size=16, ratios=None, scales=None):
    """Reference anchors centred on the origin.

    Args:
        base_size: side of the square anchor at ratio 1, scale 1.
        ratios: (R,) aspect ratios, height / width.
        scales: (S,) scales.

    Returns:
        (R * S, 4) float64 anchors ``(x1, y1, x2, y2)``, ratio-major.
    """
    if ratios is None:
        ratios = AnchorParameters.default.ratios
    if scales is None:
        scales = AnchorParameters.default.scales
    ratios = np.asarray(ratios, dtype=np.float64)
    scales = np.asarray(scales, dtype=np.float64)

    side = base_size * np.tile(scales, len(ratios))  # square side for each (ratio, scale)
    areas = side * side
    ratio_per_anchor = np.repeat(ratios, len(scales))
    widths = np.sqrt(areas / ratio_per_anchor)
    heights = widths * ratio_per_anchor
    return np.stack([-0.5 * widths, -0.5 * heights, 0.5 * widths, 0.5 * heights], axis=1)


def shift(shape, stride, anchors):
    """Place the reference anchors at every position of a feature map.

    Args:
        shape: (height, width) of the feature map.
        stride: its stride in input pixels.
        anchors: (A, 4) reference anchors from :func:`generate_anchors`.

    Returns:
        (height * width * A, 4) anchors, positions row-major, anchors innermost.
    """
    shift_x = (np.arange(0, shape[1]) + 0.5) * stride
    shift_y = (np.arange(0, shape[0]) + 0.5) * stride
    shift_x, shift_y = np.meshgrid(shift_x, shift_y)
    shifts = np.stack([shift_x.ravel(), shift_y.ravel(), shift_x.ravel(), shift_y.ravel()], axis=1)
    all_anchors = anchors[np.newaxis, :, :] + shifts[:, np.newaxis, :]
    return all_anchors.reshape((-1, 4))


def guess_shapes(image_shape, pyramid_levels):
    """Feature map sizes of a ResNet-style backbone: ``(side + 2^l - 1) // 2^l``.

    Args:
        image_shape: (height, width, ...) of the input.
        pyramid_levels: levels, e.g. ``[3, 4, 5, 6, 7]``.

    Returns:
        list of (height, width) arrays, one per level.
    """
    image_shape = np.array(image_shape[:2])
    return [(image_shape + 2 ** level - 1) // (2 ** level) for level in pyramid_levels]


def anchors_for_shape(
    image_shape: Sequence[int],
    pyramid_levels: Optional[Sequence[int]] = None,
    anchor_params: Optional[AnchorParameters] = None,
    shapes_callback: Optional[Callable[[Sequence[int], Sequence[int]], List[np.ndarray]]] = None,
) -> np.ndarray:
    """All anchors of an image of the given shape.

    The anchors are float64, as keras-retinanet 1.0.0 returned them, so that training targets
    are computed from the same coordinates as there (float32 anchors round their corners, which
    can move an anchor across an IoU threshold). Against float32 anchors, ``anchor_targets_bbox``
    for one image (the cases of ``benchmarks/bench_anchor_targets.py``, float32 and float64 calls
    interleaved on one core, medians of 30-40 calls) took +4 to +15 % at 800x1067 (1-3 ms on
    23-55 ms) and -4 to +7 % at 512x512: too little to depart from 1.0.0. The matching itself
    runs in float64 for either input. The graph-side :class:`keras_retinanet.layers.Anchors`
    stays float32.

    Args:
        image_shape: (height, width, ...) of the network input.
        pyramid_levels: levels to generate anchors for (default P3-P7).
        anchor_params: :class:`AnchorParameters` (default: the paper's).
        shapes_callback: function ``(image_shape, pyramid_levels) -> feature shapes``.

    Returns:
        (N, 4) float64 anchors ``(x1, y1, x2, y2)``, level by level.
    """
    if pyramid_levels is None:
        pyramid_levels = list(DEFAULT_PYRAMID_LEVELS)
    if anchor_params is None:
        anchor_params = AnchorParameters.default
    if shapes_callback is None:
        shapes_callback = guess_shapes
    if len(pyramid_levels) != len(anchor_params.sizes):
        raise ValueError(
            f"{len(pyramid_levels)} pyramid levels {list(pyramid_levels)} but anchor parameters "
            f"for {len(anchor_params.sizes)} levels"
        )
    feature_shapes = shapes_callback(image_shape, pyramid_levels)

    all_anchors = [np.zeros((0, 4), dtype=np.float64)]
    for index in range(len(pyramid_levels)):
        anchors = generate_anchors(anchor_params.sizes[index], anchor_params.ratios, anchor_params.scales)
        all_anchors.append(shift(feature_shapes[index], anchor_params.strides[index], anchors))
    return np.concatenate(all_anchors, axis=0)
