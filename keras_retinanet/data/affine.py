"""Random affine transforms for data augmentation, as 3x3 homogeneous matrices.

A transform maps a point ``(x, y)`` of the source image to ``T @ (x, y, 1)`` in the
augmented image. The functions and defaults follow keras-retinanet 1.0.0, so a
``random_transform_generator`` seeded the same way draws the same transforms.
"""

import numpy as np

DEFAULT_PRNG = np.random


def colvec(*args):
    """A column vector: ``colvec(1, 2)`` is the (2, 1) array ``[[1], [2]]``."""
    return np.array([args]).T


def transform_aabb(transform, aabb):
    """Axis-aligned bounding box of a transformed axis-aligned box.

    The four corners are transformed and the box around them is returned, so a
    rotated box grows to contain the rotated object.

    Args:
        transform: (3, 3) affine matrix.
        aabb: (x1, y1, x2, y2).

    Returns:
        [x1, y1, x2, y2] of the transformed box.
    """
    x1, y1, x2, y2 = aabb
    corners = np.array([
        [x1, x2, x1, x2],
        [y1, y2, y2, y1],
        [1, 1, 1, 1],
    ], dtype=np.float64)
    points = np.asarray(transform, dtype=np.float64).dot(corners)
    min_corner = points.min(axis=1)
    max_corner = points.max(axis=1)
    return [min_corner[0], min_corner[1], max_corner[0], max_corner[1]]


def _random_vector(min, max, prng=DEFAULT_PRNG):
    """A vector drawn uniformly between two vectors of the same shape."""
    min = np.array(min)
    max = np.array(max)
    if min.shape != max.shape or min.ndim != 1:
        raise ValueError(f"random vector bounds must be 1-D of the same length, got {min!r} and {max!r}")
    return prng.uniform(min, max)


def rotation(angle):
    """Rotation by ``angle`` radians (counter-clockwise in a y-up frame)."""
    return np.array([
        [np.cos(angle), -np.sin(angle), 0],
        [np.sin(angle), np.cos(angle), 0],
        [0, 0, 1],
    ])


def random_rotation(min, max, prng=DEFAULT_PRNG):
    """Rotation by an angle drawn uniformly from [min, max] radians."""
    return rotation(prng.uniform(min, max))


def translation(translation):
    """Translation by the 2-vector ``translation``."""
    return np.array([
        [1, 0, translation[0]],
        [0, 1, translation[1]],
        [0, 0, 1],
    ])


def random_translation(min, max, prng=DEFAULT_PRNG):
    """Translation by a 2-vector drawn uniformly between ``min`` and ``max``."""
    return translation(_random_vector(min, max, prng))


def shear(angle):
    """Shear along x by ``angle`` radians."""
    return np.array([
        [1, -np.sin(angle), 0],
        [0, np.cos(angle), 0],
        [0, 0, 1],
    ])


def random_shear(min, max, prng=DEFAULT_PRNG):
    """Shear by an angle drawn uniformly from [min, max] radians."""
    return shear(prng.uniform(min, max))


def scaling(factor):
    """Scaling by the 2-vector ``factor`` (x, y)."""
    return np.array([
        [factor[0], 0, 0],
        [0, factor[1], 0],
        [0, 0, 1],
    ])


def random_scaling(min, max, prng=DEFAULT_PRNG):
    """Scaling by a 2-vector drawn uniformly between ``min`` and ``max``."""
    return scaling(_random_vector(min, max, prng))


def random_flip(flip_x_chance, flip_y_chance, prng=DEFAULT_PRNG):
    """Mirror in x and/or y, each with its own probability."""
    flip_x = prng.uniform(0, 1) < flip_x_chance
    flip_y = prng.uniform(0, 1) < flip_y_chance
    # 1 - 2 * flag is 1 without the flip and -1 with it.
    return scaling((1 - 2 * flip_x, 1 - 2 * flip_y))


def change_transform_origin(transform, center):
    """The same transform about another origin: ``T(center) @ transform @ T(-center)``."""
    center = np.array(center)
    return np.linalg.multi_dot([translation(center), transform, translation(-center)])


def random_transform(
    min_rotation=0,
    max_rotation=0,
    min_translation=(0, 0),
    max_translation=(0, 0),
    min_shear=0,
    max_shear=0,
    min_scaling=(1, 1),
    max_scaling=(1, 1),
    flip_x_chance=0,
    flip_y_chance=0,
    prng=DEFAULT_PRNG,
):
    """One random transform: rotation @ translation @ shear @ scaling @ flip.

    The result is about the origin (0, 0); use ``change_transform_origin`` (or
    ``utils.image.adjust_transform_for_image``) to apply it about the image centre.
    Translations are in whatever unit the caller uses (keras-retinanet uses a
    fraction of the image size, see ``TransformParameters.relative_translation``).

    Returns:
        (3, 3) float64 matrix.
    """
    return np.linalg.multi_dot([
        random_rotation(min_rotation, max_rotation, prng),
        random_translation(min_translation, max_translation, prng),
        random_shear(min_shear, max_shear, prng),
        random_scaling(min_scaling, max_scaling, prng),
        random_flip(flip_x_chance, flip_y_chance, prng),
    ])


def random_transform_generator(
    prng=None,
    min_rotation=0,
    max_rotation=0,
    min_translation=(0, 0),
    max_translation=(0, 0),
    min_shear=0,
    max_shear=0,
    min_scaling=(1, 1),
    max_scaling=(1, 1),
    flip_x_chance=0,
    flip_y_chance=0,
):
    """Endless generator of random transforms (see :func:`random_transform` for the ranges).

    Args:
        prng: a ``np.random.RandomState`` (or anything with ``uniform``); a fresh
            unseeded one when None. Pass ``np.random.RandomState(seed)`` to repeat a run.

    Yields:
        (3, 3) float64 matrices.
    """
    if prng is None:
        # A private state, so that other users of np.random do not change the draws.
        prng = np.random.RandomState()
    while True:
        yield random_transform(
            min_rotation=min_rotation,
            max_rotation=max_rotation,
            min_translation=min_translation,
            max_translation=max_translation,
            min_shear=min_shear,
            max_shear=max_shear,
            min_scaling=min_scaling,
            max_scaling=max_scaling,
            flip_x_chance=flip_x_chance,
            flip_y_chance=flip_y_chance,
            prng=prng,
        )
