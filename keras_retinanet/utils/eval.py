"""keras-retinanet's ``utils.eval``: Pascal-VOC evaluation, from :mod:`keras_retinanet.evaluation`.

``_compute_ap``, ``_get_detections`` and ``_get_annotations`` keep keras-retinanet's leading underscore: scripts
written for keras-retinanet imported them from here.
"""

from ..evaluation.average_precision import _compute_ap  # noqa: F401 (keras-retinanet's name)
from ..evaluation.detections import _get_annotations, _get_detections  # noqa: F401 (keras-retinanet's names)
from ..evaluation.voc import evaluate

__all__ = ["evaluate"]
