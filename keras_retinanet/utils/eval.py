"""Pascal-VOC evaluation, keras-retinanet's ``utils.eval``: re-exported from :mod:`keras_retinanet.evaluation`."""

from ..evaluation.average_precision import (  # noqa: F401
    PrecisionRecall,
    _compute_ap,
    evaluate_class,
    evaluate_detections,
    match_detections,
    mean_average_precision,
)
from ..evaluation.detections import (  # noqa: F401
    _get_annotations,
    _get_detections,
    _model_outputs,
    _progbar,
    _select_detections,
    predict_image,
)
from ..evaluation.report import _safe_file_name, print_evaluation, save_precision_recall_plots  # noqa: F401
from ..evaluation.voc import evaluate  # noqa: F401
