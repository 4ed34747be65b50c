"""Score thresholding, non-maximum suppression and top-k selection of detections."""

import keras
import tensorflow as tf

PACKAGE = "keras_retinanet"


def _candidates_above(classification, class_specific_filter, score_threshold):
    """Every (anchor, class) pair above the threshold, as keras-retinanet selected them.

    Args:
        classification: (N, C) class scores.

    Returns:
        anchor_indices (K,) int32, labels (K,) int32, scores (K,) float32.
    """
    if class_specific_filter:
        flat_scores = tf.reshape(classification, [-1])
        flat_indices = tf.cast(tf.where(flat_scores > score_threshold)[:, 0], tf.int32)
        num_classes = tf.shape(classification)[1]
        return flat_indices // num_classes, flat_indices % num_classes, tf.gather(flat_scores, flat_indices)
    best_scores = tf.reduce_max(classification, axis=1)
    anchor_indices = tf.cast(tf.where(best_scores > score_threshold)[:, 0], tf.int32)
    labels = tf.gather(tf.argmax(classification, axis=1, output_type=tf.int32), anchor_indices)
    return anchor_indices, labels, tf.gather(best_scores, anchor_indices)


def _best_candidates(classification, class_specific_filter, score_threshold, limit):
    """At most ``limit`` of the best (anchor, class) pairs above the threshold.

    The best pairs lie on the anchors with the best top scores (an anchor holding one
    of the ``limit`` best pairs has a top score at least that high, and at most
    ``limit`` anchors do), so only those anchors' rows are searched, not all N x C scores.

    Args:
        classification: (N, C) class scores.
        limit: python int.

    Returns:
        anchor_indices (K,) int32, labels (K,) int32, scores (K,) float32; K <= limit.
    """
    best_scores = tf.reduce_max(classification, axis=1)
    top_anchors = tf.math.top_k(best_scores, k=tf.minimum(tf.shape(best_scores)[0], limit), sorted=False)
    if class_specific_filter:
        rows = tf.gather(classification, top_anchors.indices)
        num_classes = tf.shape(rows)[1]
        flat_rows = tf.reshape(rows, [-1])
        top = tf.math.top_k(flat_rows, k=tf.minimum(tf.shape(flat_rows)[0], limit), sorted=False)
        anchor_indices = tf.gather(top_anchors.indices, top.indices // num_classes)
        labels, scores = top.indices % num_classes, top.values
    else:
        anchor_indices, scores = top_anchors.indices, top_anchors.values
        labels = tf.gather(tf.argmax(classification, axis=1, output_type=tf.int32), anchor_indices)
    keep = scores > score_threshold
    return tf.boolean_mask(anchor_indices, keep), tf.boolean_mask(labels, keep), tf.boolean_mask(scores, keep)


def _select_candidates(
    classification, class_specific_filter, score_threshold, max_candidates, level_sizes=None, candidates_per_level=None
):
    """Pick the (anchor, class) pairs worth keeping for one image.

    As in the paper, each pyramid level contributes at most ``candidates_per_level``
    of its best scores above the threshold, which bounds the work of NMS however many
    scores pass the threshold.

    Args:
        classification: (N, C) class scores.
        class_specific_filter: keep every class above the threshold (True), or only
            each anchor's best class (False).
        score_threshold: keep scores strictly above this.
        max_candidates: keep at most this many of the highest-scoring candidates
            over all levels (None: no limit).
        level_sizes: list of scalar int32 tensors, the anchors of each pyramid level in
            the order of ``classification`` (None: one level).
        candidates_per_level: at most this many candidates per level (None: no limit).

    Returns:
        anchor_indices: (K,) int32 anchors of the candidates.
        labels: (K,) int32 classes.
        scores: (K,) float32 scores.
    """
    if level_sizes is None or candidates_per_level is None:
        anchor_indices, labels, scores = _candidates_above(classification, class_specific_filter, score_threshold)
    else:
        per_level, start = [], tf.constant(0, tf.int32)
        for size in level_sizes:
            level_anchors, level_labels, level_scores = _best_candidates(
                classification[start : start + size], class_specific_filter, score_threshold, candidates_per_level
            )
            per_level.append((start + level_anchors, level_labels, level_scores))
            start += size
        anchor_indices, labels, scores = (tf.concat(parts, axis=0) for parts in zip(*per_level))

    if max_candidates is not None:
        count = tf.minimum(tf.shape(scores)[0], max_candidates)
        top = tf.math.top_k(scores, k=count, sorted=False).indices
        scores = tf.gather(scores, top)
        labels = tf.gather(labels, top)
        anchor_indices = tf.gather(anchor_indices, top)
    return anchor_indices, labels, scores


def _separate_classes(boxes, labels):
    """Move each class's boxes into its own region of the plane.

    One NMS over the moved boxes then equals one NMS per class (boxes of different
    classes can no longer overlap), without a loop over classes.

    Args:
        boxes: (K, 4) boxes.
        labels: (K,) int32 class of each box.

    Returns:
        (K, 4) moved boxes, only for computing overlaps.
    """
    lowest = tf.reduce_min(boxes)
    span = tf.reduce_max(boxes) - lowest + 1.0
    offsets = tf.cast(labels, boxes.dtype) * span
    return boxes - lowest + offsets[:, tf.newaxis]


def filter_detections(
    boxes,
    classification,
    other=(),
    nms=True,
    class_specific_filter=True,
    score_threshold=0.05,
    max_detections=300,
    nms_threshold=0.5,
    max_candidates=None,
    level_sizes=None,
    candidates_per_level=None,
):
    """Detections of one image.

    Per class (or over all classes with ``class_specific_filter=False``): scores above
    ``score_threshold``, non-maximum suppression at ``nms_threshold``, then the
    ``max_detections`` best over all classes, padded with -1.

    Args:
        boxes: (N, 4) decoded boxes.
        classification: (N, C) class scores.
        other: list of (N, ...) tensors gathered alongside the boxes.
        max_candidates: at most this many candidates enter NMS (None: all).
        level_sizes: list of scalar int32 tensors, the anchors of each pyramid level
            (None: candidates are not selected per level).
        candidates_per_level: at most this many candidates per level (None: all).

    Returns:
        [boxes (D, 4) float32, scores (D,) float32, labels (D,) int32, *other (D, ...)],
        D = max_detections, rows past the number of detections filled with -1.
    """
    boxes = tf.cast(boxes, tf.float32)
    classification = tf.cast(classification, tf.float32)
    anchor_indices, labels, scores = _select_candidates(
        classification, class_specific_filter, score_threshold, max_candidates, level_sizes, candidates_per_level
    )
    candidate_boxes = tf.gather(boxes, anchor_indices)

    if nms:
        nms_boxes = _separate_classes(candidate_boxes, labels) if class_specific_filter else candidate_boxes
        # The padded op with an explicit count: TFLite's converter turns the plain one into an NMS that always
        # returns max_detections indices and loses how many are real (tensorflow/tensorflow#51629).
        keep, count = tf.raw_ops.NonMaxSuppressionV4(
            boxes=nms_boxes,
            scores=scores,
            max_output_size=max_detections,
            iou_threshold=nms_threshold,
            score_threshold=float("-inf"),
            pad_to_max_output_size=True,
        )
        keep = keep[:count]
    else:
        keep = tf.math.top_k(scores, k=tf.minimum(max_detections, tf.shape(scores)[0])).indices

    # non_max_suppression and top_k both return the kept candidates best first.
    anchor_indices = tf.gather(anchor_indices, keep)
    outputs = [
        tf.gather(candidate_boxes, keep),
        tf.gather(scores, keep),
        tf.gather(labels, keep),
    ] + [tf.gather(tf.convert_to_tensor(o), anchor_indices) for o in other]

    padding = max_detections - tf.shape(keep)[0]
    padded = []
    for tensor in outputs:
        rank = len(tensor.shape)
        pad = [[0, padding]] + [[0, 0]] * (rank - 1)
        tensor = tf.pad(tensor, pad, constant_values=tf.cast(-1, tensor.dtype))
        tensor.set_shape([max_detections] + tensor.shape[1:].as_list())
        padded.append(tensor)
    return padded


@keras.saving.register_keras_serializable(package=PACKAGE)
class FilterDetections(keras.layers.Layer):
    """Turn per-anchor boxes and scores into a fixed number of detections per image.

    Inputs: [boxes (B, N, 4), classification (B, N, C), *other (B, N, ...)], and as the
    keyword ``level_anchors`` the anchors of each pyramid level [(B, N_l, 4), ...] (only
    their lengths are used), which enables ``candidates_per_level``.
    Outputs: [boxes (B, D, 4) float32, scores (B, D) float32, labels (B, D) int32,
    *other (B, D, ...)], D = max_detections, padded with -1.
    """

    def __init__(
        self,
        nms=True,
        class_specific_filter=True,
        nms_threshold=0.5,
        score_threshold=0.05,
        max_detections=300,
        parallel_iterations=32,
        max_candidates=None,
        candidates_per_level=1000,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.nms = bool(nms)
        self.class_specific_filter = bool(class_specific_filter)
        self.nms_threshold = float(nms_threshold)
        self.score_threshold = float(score_threshold)
        self.max_detections = int(max_detections)
        self.parallel_iterations = int(parallel_iterations)
        self.max_candidates = None if max_candidates is None else int(max_candidates)
        self.candidates_per_level = None if candidates_per_level is None else int(candidates_per_level)

    def call(self, inputs, level_anchors=None):
        boxes, classification, *other = inputs
        other = [tf.convert_to_tensor(o) for o in other]
        level_sizes = None if level_anchors is None else [tf.shape(anchors)[1] for anchors in level_anchors]

        def per_image(args):
            image_boxes, image_classification, *image_other = args
            return filter_detections(
                image_boxes,
                image_classification,
                image_other,
                nms=self.nms,
                class_specific_filter=self.class_specific_filter,
                score_threshold=self.score_threshold,
                max_detections=self.max_detections,
                nms_threshold=self.nms_threshold,
                max_candidates=self.max_candidates,
                level_sizes=level_sizes,
                candidates_per_level=self.candidates_per_level,
            )

        signature = [
            tf.TensorSpec((self.max_detections, 4), tf.float32),
            tf.TensorSpec((self.max_detections,), tf.float32),
            tf.TensorSpec((self.max_detections,), tf.int32),
        ] + [tf.TensorSpec((self.max_detections,) + tuple(o.shape[2:]), o.dtype) for o in other]
        return tf.map_fn(
            per_image,
            elems=[tf.cast(boxes, tf.float32), tf.cast(classification, tf.float32)] + other,
            fn_output_signature=signature,
            parallel_iterations=self.parallel_iterations,
        )

    def compute_output_spec(self, inputs, level_anchors=None):
        boxes, classification, *other = inputs
        batch = boxes.shape[0]
        detections = self.max_detections
        specs = [
            keras.KerasTensor((batch, detections, 4), dtype="float32"),
            keras.KerasTensor((batch, detections), dtype="float32"),
            keras.KerasTensor((batch, detections), dtype="int32"),
        ]
        specs += [keras.KerasTensor((batch, detections) + tuple(o.shape[2:]), dtype=o.dtype) for o in other]
        return specs

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "nms": self.nms,
                "class_specific_filter": self.class_specific_filter,
                "nms_threshold": self.nms_threshold,
                "score_threshold": self.score_threshold,
                "max_detections": self.max_detections,
                "parallel_iterations": self.parallel_iterations,
                "max_candidates": self.max_candidates,
                "candidates_per_level": self.candidates_per_level,
            }
        )
        return config
