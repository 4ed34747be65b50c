"""Moved to :mod:`keras_retinanet.models.precision`; re-exported for old imports."""

from ..models.precision import PRECISIONS, mixed_policy_name, policy_name, set_precision, with_precision  # noqa: F401
