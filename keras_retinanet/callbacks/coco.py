"""COCO evaluation at the end of every epoch, as keras-retinanet's ``callbacks.coco.CocoEval``."""

import keras

from ..utils.coco_eval import COCO_STAT_NAMES, evaluate_coco
from .eval import summary_writer, write_scalar


class CocoEval(keras.callbacks.Callback):
    """Run COCOeval after each epoch and put the 12 COCO stats in the logs under :data:`COCO_STAT_NAMES`.

    Works on a COCO dataset and on any other (whose ground truth is then built from its annotations). Wrap it
    in :class:`keras_retinanet.callbacks.RedirectModel` with the inference model when training.

    Args:
        generator: the dataset to evaluate on.
        tensorboard: where to also write the stats each epoch: a ``keras.callbacks.TensorBoard``, a log folder,
            a ``tf.summary`` writer, or None.
        threshold: minimum score of a detection.
        output_dir: folder for the results JSON files (the working directory, as keras-retinanet), or None.
        verbose: progress bar and pycocotools' summary.
    """

    def __init__(self, generator, tensorboard=None, threshold=0.05, output_dir=".", verbose=1):
        super().__init__()
        self.generator = generator
        self.tensorboard = tensorboard
        self.threshold = threshold
        self.output_dir = output_dir
        self.verbose = verbose
        self.stats = None
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        self.stats = evaluate_coco(
            self.generator, self.model, threshold=self.threshold, output_dir=self.output_dir, verbose=self.verbose
        )
        if self.tensorboard is not None:
            if self._writer is None:
                self._writer = summary_writer(self.tensorboard)
            for name, value in zip(COCO_STAT_NAMES, self.stats):
                write_scalar(self._writer, name, value, epoch)
            self._writer.flush()
        for name, value in zip(COCO_STAT_NAMES, self.stats):
            logs[name] = float(value)
