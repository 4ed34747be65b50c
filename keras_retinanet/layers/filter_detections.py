"""Score thresholding, non-maximum suppression and top-k selection of detections."""

import keras
import tensorflow as tf

PACKAGE = "keras_retinanet"
# 'hard': keras-retinanet's NMS; 'soft': Gaussian Soft-NMS (TensorFlow's NonMaxSuppressionV5).
NMS_METHODS = ("hard", "soft")


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
    classification, class_specific_filter, score_threshold, max_candidates, level_sizes=None,
    max_candidates_per_level=None,
):
    """The (anchor, class) pairs a candidate cap lets through, for one image.

    With ``max_candidates_per_level`` each pyramid level contributes at most that many of its best scores
    above the threshold (the paper's and torchvision's 1,000), which bounds the work of NMS however many
    scores pass the threshold, at the price of dropping objects from crowded levels.

    Args:
        classification: (N, C) class scores.
        class_specific_filter: keep every class above the threshold (True), or only
            each anchor's best class (False).
        score_threshold: keep scores strictly above this.
        max_candidates: keep at most this many of the highest-scoring candidates
            over all levels (None: no limit).
        level_sizes: list of scalar int32 tensors, the anchors of each pyramid level in
            the order of ``classification`` (None: one level).
        max_candidates_per_level: at most this many candidates per level (None: no limit).

    Returns:
        anchor_indices: (K,) int32 anchors of the candidates.
        labels: (K,) int32 classes.
        scores: (K,) float32 scores.
    """
    if level_sizes is None or max_candidates_per_level is None:
        anchor_indices, labels, scores = _candidates_above(classification, class_specific_filter, score_threshold)
    else:
        per_level, start = [], tf.constant(0, tf.int32)
        for size in level_sizes:
            level_anchors, level_labels, level_scores = _best_candidates(
                classification[start : start + size], class_specific_filter, score_threshold, max_candidates_per_level
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


def _nms(boxes, scores, max_detections, nms_threshold, score_threshold=float("-inf"), soft_nms_sigma=0.0):
    """Greedy non-maximum suppression of the boxes scoring strictly above ``score_threshold``.

    Args:
        boxes: (K, 4) boxes; scores: (K,) their scores.
        soft_nms_sigma: 0 for hard NMS (a box overlapping a kept one by IoU > ``nms_threshold`` is dropped);
            above 0, Gaussian Soft-NMS (Bodla et al., 2017) as TensorFlow computes it: each kept box multiplies
            the others' scores by exp(-IoU^2 / (2 sigma)), and boxes whose score falls to the threshold drop out.

    Returns:
        indices (M,) int32 into ``boxes`` and their scores (M,) (decayed, with Soft-NMS), best first (equal
        scores: lower index first), M <= max_detections.
    """
    if soft_nms_sigma > 0:
        keep, kept_scores, count = tf.raw_ops.NonMaxSuppressionV5(
            boxes=boxes,
            scores=scores,
            max_output_size=max_detections,
            iou_threshold=nms_threshold,
            score_threshold=score_threshold,
            soft_nms_sigma=soft_nms_sigma,
            pad_to_max_output_size=True,
        )
        return keep[:count], kept_scores[:count]
    # The padded op with an explicit count: TFLite's converter turns the plain one into an NMS that always
    # returns max_detections indices and loses how many are real (tensorflow/tensorflow#51629).
    keep, count = tf.raw_ops.NonMaxSuppressionV4(
        boxes=boxes,
        scores=scores,
        max_output_size=max_detections,
        iou_threshold=nms_threshold,
        score_threshold=score_threshold,
        pad_to_max_output_size=True,
    )
    keep = keep[:count]
    return keep, tf.gather(scores, keep)


def _per_class_detections(
    boxes, classification, nms, score_threshold, max_detections, nms_threshold, soft_nms_sigma=0.0
):
    """keras-retinanet's class-specific filter over every score: per class, the scores above the threshold and
    their NMS (or all of them without NMS), in label order.

    Only the anchors with some score above the threshold are looked at (a few thousand in an ordinary image
    instead of every anchor), and the NMS op thresholds each class's scores itself, so no (anchor, class) list
    as long as the scores above the threshold is ever gathered.

    Returns:
        a list of (anchor_indices (K_c,) int32, labels (K_c,) int32, scores (K_c,) float32), one per class.
    """
    num_classes = classification.shape[-1]
    if num_classes is None:
        raise ValueError("FilterDetections needs a static number of classes for class-specific filtering")
    rows = tf.cast(tf.where(tf.reduce_max(classification, axis=1) > score_threshold)[:, 0], tf.int32)
    row_boxes = tf.gather(boxes, rows)
    columns = tf.transpose(tf.gather(classification, rows))  # (C, R): one contiguous row per class
    groups = []
    for label in range(num_classes):
        column = columns[label]
        if nms:
            kept, scores = _nms(row_boxes, column, max_detections, nms_threshold, score_threshold, soft_nms_sigma)
        else:
            kept = tf.cast(tf.where(column > score_threshold)[:, 0], tf.int32)
            scores = tf.gather(column, kept)
        label_of = tf.fill(tf.shape(kept), tf.constant(label, tf.int32))
        groups.append((tf.gather(rows, kept), label_of, scores))
    return groups


def _grouped_candidates(
    boxes, candidates, class_specific_filter, num_classes, nms, max_detections, nms_threshold, score_threshold,
    soft_nms_sigma=0.0,
):
    """Per class (or all together), the NMS of candidates a cap selected (or all of them without NMS).

    Args:
        candidates: (anchor_indices (K,), labels (K,), scores (K,)) from :func:`_select_candidates`.

    Returns:
        a list of (anchor_indices, labels, scores), one per class in label order, or one.
    """
    anchor_indices, labels, scores = candidates
    if class_specific_filter:
        groups = []
        for label in range(num_classes):
            mine = tf.where(tf.equal(labels, label))[:, 0]
            groups.append(tuple(tf.gather(t, mine) for t in (anchor_indices, labels, scores)))
    else:
        groups = [(anchor_indices, labels, scores)]
    if not nms:
        return groups
    kept = []
    for group_anchors, group_labels, group_scores in groups:
        keep, kept_scores = _nms(
            tf.gather(boxes, group_anchors), group_scores, max_detections, nms_threshold, score_threshold,
            soft_nms_sigma,
        )  # fmt: skip
        kept.append((tf.gather(group_anchors, keep), tf.gather(group_labels, keep), kept_scores))
    return kept


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
    max_candidates_per_level=None,
    soft_nms_sigma=0.0,
):
    """Detections of one image, by keras-retinanet 1.0.0's algorithm.

    Per class (or over each anchor's best class with ``class_specific_filter=False``): every score above
    ``score_threshold``, non-maximum suppression at ``nms_threshold`` keeping at most ``max_detections``,
    then the ``max_detections`` best over all classes, padded with -1. The candidate caps
    (``max_candidates``, ``max_candidates_per_level``) are opt-in approximations that bound the work on
    images where very many scores pass the threshold; they may drop real objects from crowded images.

    Args:
        boxes: (N, 4) decoded boxes.
        classification: (N, C) class scores.
        other: list of (N, ...) tensors gathered alongside the boxes.
        max_candidates: at most this many candidates enter NMS (None: all).
        level_sizes: list of scalar int32 tensors, the anchors of each pyramid level
            (None: candidates are not selected per level).
        max_candidates_per_level: at most this many candidates per level (None: all).
        soft_nms_sigma: 0 for keras-retinanet's hard NMS; above 0, Gaussian Soft-NMS with this sigma (see
            :func:`_nms`), whose decayed scores are the detections' scores.

    Returns:
        [boxes (D, 4) float32, scores (D,) float32, labels (D,) int32, *other (D, ...)],
        D = max_detections, rows past the number of detections filled with -1.
    """
    boxes = tf.cast(boxes, tf.float32)
    classification = tf.cast(classification, tf.float32)
    capped = max_candidates is not None or (level_sizes is not None and max_candidates_per_level is not None)
    if class_specific_filter and not capped:
        groups = _per_class_detections(
            boxes, classification, nms, score_threshold, max_detections, nms_threshold, soft_nms_sigma
        )
    else:
        candidates = _select_candidates(
            classification, class_specific_filter, score_threshold, max_candidates, level_sizes,
            max_candidates_per_level,
        )  # fmt: skip
        groups = _grouped_candidates(
            boxes, candidates, class_specific_filter, classification.shape[-1], nms, max_detections, nms_threshold,
            score_threshold, soft_nms_sigma,
        )  # fmt: skip
    anchor_indices, labels, scores = (tf.concat(parts, axis=0) for parts in zip(*groups))

    # The best over all classes, best first; equal scores in class order, then NMS order (top_k is stable),
    # as keras-retinanet's top_k over its per-class concatenation.
    top = tf.math.top_k(scores, k=tf.minimum(max_detections, tf.shape(scores)[0]))
    anchor_indices = tf.gather(anchor_indices, top.indices)
    outputs = [
        tf.gather(boxes, anchor_indices),
        top.values,
        tf.gather(labels, top.indices),
    ] + [tf.gather(tf.convert_to_tensor(o), anchor_indices) for o in other]

    padding = max_detections - tf.shape(top.indices)[0]
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
    their lengths are used), which enables ``max_candidates_per_level``.

    By default every score above ``score_threshold`` enters per-class NMS, as in keras-retinanet 1.0.0.
    ``max_candidates_per_level`` (and ``max_candidates``) cap the candidates instead, trading detections
    in crowded images for bounded work (see :func:`filter_detections`). ``candidates_per_level`` is the
    earlier name of ``max_candidates_per_level``. ``nms_method='soft'`` replaces keras-retinanet's hard NMS
    by Gaussian Soft-NMS with ``soft_nms_sigma``.
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
        max_candidates_per_level=None,
        candidates_per_level=None,
        nms_method="hard",
        soft_nms_sigma=0.5,
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
        if max_candidates_per_level is None:
            max_candidates_per_level = candidates_per_level
        self.max_candidates_per_level = None if max_candidates_per_level is None else int(max_candidates_per_level)
        if nms_method not in NMS_METHODS:
            raise ValueError(f"nms_method must be one of {', '.join(NMS_METHODS)}, not {nms_method!r}")
        if not float(soft_nms_sigma) > 0:
            raise ValueError(f"soft_nms_sigma must be above 0, not {soft_nms_sigma}")
        self.nms_method = str(nms_method)
        self.soft_nms_sigma = float(soft_nms_sigma)

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
                max_candidates_per_level=self.max_candidates_per_level,
                soft_nms_sigma=self.soft_nms_sigma if self.nms_method == "soft" else 0.0,
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
                "max_candidates_per_level": self.max_candidates_per_level,
                "nms_method": self.nms_method,
                "soft_nms_sigma": self.soft_nms_sigma,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "candidates_per_level" in config and "max_candidates_per_level" not in config:
            # Files of 1.1 and 1.2.0.dev0 stored 'candidates_per_level': 1000, a default no command let users
            # choose; it dropped objects from crowded images, so such files get keras-retinanet's filter.
            config.pop("candidates_per_level")
        return cls(**config)
