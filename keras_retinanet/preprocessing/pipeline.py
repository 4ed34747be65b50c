"""Moved to :mod:`keras_retinanet.data.pipeline`; kept so that the old import path still works."""

from ..data.pipeline import batch_order, make_dataset, output_signature  # noqa: F401
