"""keras-retinanet's ``utils.transform``: affine matrices now live in :mod:`keras_retinanet.data.affine`."""

from ..data.affine import *  # noqa: F401,F403
from ..data.affine import DEFAULT_PRNG, _random_vector  # noqa: F401
