"""keras-retinanet's ``utils.transform``: random affine matrices, from :mod:`keras_retinanet.data.affine`.

``_random_vector`` keeps keras-retinanet's leading underscore: it was importable from here.
"""

from ..data.affine import _random_vector  # noqa: F401 (keras-retinanet's name)
from ..data.affine import (
    DEFAULT_PRNG,
    change_transform_origin,
    colvec,
    random_flip,
    random_rotation,
    random_scaling,
    random_shear,
    random_transform,
    random_transform_generator,
    random_translation,
    rotation,
    scaling,
    shear,
    transform_aabb,
    translation,
)

__all__ = [
    "DEFAULT_PRNG",
    "change_transform_origin",
    "colvec",
    "random_flip",
    "random_rotation",
    "random_scaling",
    "random_shear",
    "random_transform",
    "random_transform_generator",
    "random_translation",
    "rotation",
    "scaling",
    "shear",
    "transform_aabb",
    "translation",
]
