"""Pascal-VOC mAP evaluation at the end of every epoch, as keras-retinanet's ``callbacks.eval.Evaluate``."""

import keras
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from ..evaluation.evaluator import HEADLINE_KEY, VOCEvaluator


def summary_writer(tensorboard):
    """A ``tf.summary`` writer for what a callback was given as ``tensorboard``.

    Args:
        tensorboard: None, a ``keras.callbacks.TensorBoard`` (its ``log_dir`` is used, as keras-retinanet did),
            a log folder path, or a ready ``tf.summary`` writer.

    Returns:
        A writer, or None when ``tensorboard`` is None.
    """
    if tensorboard is None:
        return None
    if hasattr(tensorboard, "as_default") and hasattr(tensorboard, "flush"):
        return tensorboard
    log_dir = getattr(tensorboard, "log_dir", tensorboard)
    if not isinstance(log_dir, (str, bytes)) and not hasattr(log_dir, "__fspath__"):
        raise TypeError(
            "tensorboard must be a keras.callbacks.TensorBoard, a log folder or a tf.summary writer, "
            f"not {type(tensorboard).__name__}"
        )
    return tf.summary.create_file_writer(str(log_dir))


def write_scalar(writer, name, value, step):
    """Write one scalar that TensorBoard shows under 'Scalars'.

    Uses ``tf.summary.write`` with the scalars plugin's metadata, which is what ``tf.summary.scalar`` does
    but without needing the ``tensorboard`` package installed.

    Args:
        writer: a ``tf.summary`` writer.
        name: the tag (any text).
        value: a number.
        step: the epoch.
    """
    metadata = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
    with writer.as_default():
        tf.summary.write(name, tf.constant(float(value), dtype=tf.float32), step=int(step), metadata=metadata)


class Evaluate(keras.callbacks.Callback):
    """Evaluate the model on a dataset after each epoch and put the mAP in the logs as ``logs['mAP']``.

    Wrap it in :class:`keras_retinanet.callbacks.RedirectModel` with the inference model when training,
    so that ``self.model`` is a model whose predict returns [boxes, scores, labels].

    Args:
        generator: the dataset to evaluate on.
        iou_threshold: minimum IoU of a true positive.
        score_threshold: minimum score (exclusive) of a detection.
        max_detections: detections kept per image.
        save_path: folder for images with annotations and detections drawn, or None.
        tensorboard: where to also write 'mAP' (and per-class 'AP_{name}' when verbose) each epoch: a
            ``keras.callbacks.TensorBoard``, a log folder, a ``tf.summary`` writer, or None.
        weighted_average: weight each class's AP by its number of annotations instead of a plain mean.
        verbose: 1 prints each class's AP and the mAP and shows a progress bar; 0 is silent.

    Attributes (after each epoch):
        mean_ap: the mAP logged.
        average_precisions: {label: (AP, number of annotations)}.
        class_average_precisions: {class name: AP}, in label order (the run record's ``AP/<name>`` columns).
    """

    def __init__(
        self,
        generator,
        iou_threshold=0.5,
        score_threshold=0.05,
        max_detections=100,
        save_path=None,
        tensorboard=None,
        weighted_average=False,
        verbose=1,
    ):
        super().__init__()
        self.generator = generator
        self.iou_threshold = iou_threshold
        self.score_threshold = score_threshold
        self.max_detections = max_detections
        self.save_path = save_path
        self.tensorboard = tensorboard
        self.weighted_average = weighted_average
        self.verbose = verbose
        self.mean_ap = None
        self.average_precisions = None
        self.class_average_precisions = None
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        # Built from the attributes each epoch, so that changing one between epochs takes effect.
        evaluator = VOCEvaluator(
            iou_threshold=self.iou_threshold,
            score_threshold=self.score_threshold,
            max_detections=self.max_detections,
            save_path=self.save_path,
            weighted_average=self.weighted_average,
            verbose=self.verbose,
        )
        results = evaluator.evaluate(self.generator, self.model)
        average_precisions = results["average_precisions"]
        self.average_precisions = average_precisions
        self.class_average_precisions = {
            str(self.generator.label_to_name(label)): float(average_precision)
            for label, (average_precision, _) in sorted(average_precisions.items())
        }

        if self.verbose == 1:
            for label, (average_precision, num_annotations) in average_precisions.items():
                print(
                    "{:.0f} instances of class {} with average precision: {:.4f}".format(
                        num_annotations, self.generator.label_to_name(label), average_precision
                    )
                )
        self.mean_ap = results[HEADLINE_KEY]

        if self.tensorboard is not None:
            self._write_summaries(epoch, average_precisions)

        logs[HEADLINE_KEY] = self.mean_ap
        if self.verbose == 1:
            print("mAP: {:.4f}".format(self.mean_ap))

    def _write_summaries(self, epoch, average_precisions):
        if self._writer is None:
            # One writer for the whole training: one event file, not one per epoch.
            self._writer = summary_writer(self.tensorboard)
        write_scalar(self._writer, "mAP", self.mean_ap, epoch)
        if self.verbose == 1:
            for label, (average_precision, _) in average_precisions.items():
                write_scalar(self._writer, "AP_" + str(self.generator.label_to_name(label)), average_precision, epoch)
        self._writer.flush()
