"""COCO evaluation at the end of every epoch, as keras-retinanet's ``callbacks.coco.CocoEval``."""

import keras
import numpy as np

from ..evaluation.coco import COCO_STAT_NAMES
from ..evaluation.evaluator import HEADLINE_KEY, COCOEvaluator
from .eval import summary_writer, write_scalar


class CocoEval(keras.callbacks.Callback):
    """Run COCOeval after each epoch and put the 12 COCO stats in the logs under :data:`COCO_STAT_NAMES`.

    The logs also get ``mAP`` = AP@[.5:.95] (the first stat), the key the best-model snapshot and early
    stopping follow, as with :class:`keras_retinanet.callbacks.eval.Evaluate`.

    Works on a COCO dataset and on any other (whose ground truth is then built from its annotations). Wrap it
    in :class:`keras_retinanet.callbacks.RedirectModel` with the inference model when training.

    Args:
        generator: the dataset to evaluate on.
        tensorboard: where to also write the stats each epoch: a ``keras.callbacks.TensorBoard``, a log folder,
            a ``tf.summary`` writer, or None.
        threshold: minimum score of a detection.
        output_dir: folder for the results JSON files (the working directory, as keras-retinanet), or None.
        verbose: progress bar and pycocotools' summary.

    Attributes (after each epoch):
        stats: the 12 COCO stats, (12,) float64.
        class_average_precisions: {class name: AP} when the evaluator reports per-class APs (results key
            ``average_precisions``, {label: (AP, annotations)} as :class:`VOCEvaluator`'s), else None. The run
            record writes them as ``AP/<name>`` columns.
    """

    def __init__(self, generator, tensorboard=None, threshold=0.05, output_dir=".", verbose=1):
        super().__init__()
        self.generator = generator
        self.tensorboard = tensorboard
        self.threshold = threshold
        self.output_dir = output_dir
        self.verbose = verbose
        self.stats = None
        self.class_average_precisions = None
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        evaluator = COCOEvaluator(threshold=self.threshold, output_dir=self.output_dir, verbose=self.verbose)
        results = evaluator.evaluate(self.generator, self.model)
        self.stats = np.asarray([results[name] for name in COCO_STAT_NAMES], dtype=np.float64)
        per_class = results.get("average_precisions")
        self.class_average_precisions = (
            {
                str(self.generator.label_to_name(label)): float(np.asarray(value).ravel()[0])
                for label, value in sorted(per_class.items())
            }
            if per_class
            else None
        )
        if self.tensorboard is not None:
            if self._writer is None:
                self._writer = summary_writer(self.tensorboard)
            for name in COCO_STAT_NAMES:
                write_scalar(self._writer, name, results[name], epoch)
            self._writer.flush()
        for name in COCO_STAT_NAMES:
            logs[name] = results[name]
        logs[HEADLINE_KEY] = results[HEADLINE_KEY]
