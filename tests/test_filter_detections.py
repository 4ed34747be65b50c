"""FilterDetections on crafted boxes and against a plain numpy greedy NMS."""

import keras
import numpy as np
import pytest

from keras_retinanet import layers


def run(boxes, classification, **kwargs):
    """Apply FilterDetections to one batch; returns numpy boxes, scores, labels."""
    layer = layers.FilterDetections(**kwargs)
    boxes, scores, labels = layer([np.asarray(boxes, np.float32), np.asarray(classification, np.float32)])
    return np.asarray(boxes), np.asarray(scores), np.asarray(labels)


def iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def numpy_filter(boxes, classification, class_specific=True, score_threshold=0.05, nms_threshold=0.5,
                 max_detections=300):
    """Greedy NMS per class (or on each anchor's best class), then the best max_detections."""
    candidates = []  # (score, label, anchor)
    if class_specific:
        classes = [(c, classification[:, c]) for c in range(classification.shape[1])]
    else:
        best = classification.argmax(axis=1)
        classes = [(None, classification.max(axis=1))]
    for label, scores in classes:
        order = [n for n in np.argsort(-scores, kind="stable") if scores[n] > score_threshold]
        kept = []
        for n in order:
            if all(iou(boxes[n], boxes[k]) <= nms_threshold for k in kept):
                kept.append(n)
        for n in kept:
            candidates.append((float(scores[n]), int(best[n]) if label is None else label, n))
    candidates.sort(key=lambda t: -t[0])
    return candidates[:max_detections]


def as_set(boxes, scores, labels):
    valid = scores > -1
    return {(int(lab), tuple(np.round(b, 4)), round(float(s), 6)) for b, s, lab in zip(boxes[valid], scores[valid], labels[valid])}


def test_suppression_by_iou():
    boxes = [[[0, 0, 10, 10],  # kept, best
              [0, 0, 10, 21],  # IoU 100/210 < 0.5 with box 0: kept
              [0, 0, 10, 19],  # IoU 100/190 > 0.5 with box 0: suppressed
              [30, 30, 40, 40]]]
    cls = [[[0.9], [0.8], [0.85], [0.3]]]
    b, s, lab = run(boxes, cls, max_detections=6)
    np.testing.assert_allclose(s[0], [0.9, 0.8, 0.3, -1, -1, -1], rtol=1e-6)
    np.testing.assert_allclose(b[0, :3], [[0, 0, 10, 10], [0, 0, 10, 21], [30, 30, 40, 40]])
    np.testing.assert_array_equal(b[0, 3:], -1)
    np.testing.assert_array_equal(lab[0], [0, 0, 0, -1, -1, -1])
    assert lab.dtype == np.int32 and s.dtype == np.float32 and b.dtype == np.float32


def test_iou_exactly_at_threshold_is_not_suppressed():
    # IoU 100/200 = 0.5 is not above the threshold: keras-retinanet (tf NMS) keeps both
    b, s, lab = run([[[0, 0, 10, 10], [0, 0, 10, 20]]], [[[0.9], [0.8]]], max_detections=3)
    np.testing.assert_allclose(s[0], [0.9, 0.8, -1], rtol=1e-6)


def test_different_classes_not_suppressed_class_specific():
    boxes = [[[0, 0, 10, 10], [0, 0, 10, 10], [1, 0, 10, 10]]]
    cls = [[[0.9, 0.0], [0.0, 0.7], [0.8, 0.6]]]
    b, s, lab = run(boxes, cls, max_detections=5)
    # class 0: 0.9 (box 0) suppresses 0.8 (box 2, IoU 0.9); class 1: 0.7 (box 1) suppresses 0.6 (box 2)
    np.testing.assert_allclose(s[0], [0.9, 0.7, -1, -1, -1], rtol=1e-6)
    np.testing.assert_array_equal(lab[0], [0, 1, -1, -1, -1])


def test_class_agnostic_suppresses_across_classes_and_uses_best_class():
    boxes = [[[0, 0, 10, 10], [0, 0, 10, 10], [1, 0, 10, 10], [50, 50, 60, 60]]]
    cls = [[[0.9, 0.0], [0.0, 0.7], [0.3, 0.6], [0.2, 0.4]]]
    b, s, lab = run(boxes, cls, class_specific_filter=False, max_detections=4)
    # every anchor's best class: 0.9 (0), 0.7 (1), 0.6 (1), 0.4 (1); the first suppresses the next two
    np.testing.assert_allclose(s[0], [0.9, 0.4, -1, -1], rtol=1e-6)
    np.testing.assert_array_equal(lab[0], [0, 1, -1, -1])
    np.testing.assert_allclose(b[0, 1], [50, 50, 60, 60])


def test_score_threshold_is_strict():
    boxes = [[[0, 0, 1, 1], [10, 10, 11, 11], [20, 20, 21, 21]]]
    cls = [[[0.05], [0.0500001], [0.04]]]
    b, s, lab = run(boxes, cls, max_detections=3)
    np.testing.assert_allclose(s[0], [0.0500001, -1, -1], rtol=1e-6)
    b, s, lab = run(boxes, cls, max_detections=3, score_threshold=0.01)
    assert (s[0] > 0).sum() == 3


def test_max_detections_keeps_highest_in_order():
    rng = np.random.default_rng(3)
    n = 20
    boxes = np.array([[i * 20, 0, i * 20 + 10, 10] for i in range(n)], np.float32)[None]  # disjoint
    scores = rng.permutation(np.linspace(0.1, 0.95, n)).astype(np.float32)[None, :, None]
    b, s, lab = run(boxes, scores, max_detections=5)
    expected = np.sort(scores[0, :, 0])[::-1][:5]
    np.testing.assert_allclose(s[0], expected, rtol=1e-6)
    for box, score in zip(b[0], s[0]):
        np.testing.assert_allclose(box, boxes[0, int(np.argmax(scores[0, :, 0] == score))])


def test_batch_of_two():
    boxes = np.array([[[0, 0, 10, 10], [0, 0, 10, 11], [20, 20, 30, 30]],
                      [[0, 0, 10, 10], [0, 0, 10, 11], [20, 20, 30, 30]]], np.float32)
    cls = np.array([[[0.9, 0.01], [0.8, 0.01], [0.1, 0.01]],
                    [[0.1, 0.3], [0.04, 0.6], [0.7, 0.2]]], np.float32)
    b, s, lab = run(boxes, cls, max_detections=4)
    assert b.shape == (2, 4, 4) and s.shape == (2, 4) and lab.shape == (2, 4)
    # image 0: class 0 keeps 0.9 (box 0 suppresses box 1, IoU 100/110) and 0.1 (box 2); class 1 is below 0.05
    np.testing.assert_allclose(s[0], [0.9, 0.1, -1, -1], rtol=1e-6)
    np.testing.assert_array_equal(lab[0], [0, 0, -1, -1])
    np.testing.assert_allclose(b[0, :2], [[0, 0, 10, 10], [20, 20, 30, 30]])
    # image 1: class 0 keeps 0.7 (box 2), 0.1 (box 0); class 1 keeps 0.6 (box 1, suppressing box 0) and 0.2 (box 2)
    np.testing.assert_allclose(s[1], [0.7, 0.6, 0.2, 0.1], rtol=1e-6)
    np.testing.assert_array_equal(lab[1], [0, 1, 1, 0])
    np.testing.assert_allclose(b[1], [[20, 20, 30, 30], [0, 0, 10, 11], [20, 20, 30, 30], [0, 0, 10, 10]])


def test_no_nms_path():
    boxes = [[[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]]]
    cls = [[[0.9, 0.2], [0.8, 0.01], [0.3, 0.5]]]
    b, s, lab = run(boxes, cls, nms=False, max_detections=6)
    np.testing.assert_allclose(s[0], [0.9, 0.8, 0.5, 0.3, 0.2, -1], rtol=1e-6)
    np.testing.assert_array_equal(lab[0], [0, 0, 1, 0, 1, -1])
    b, s, lab = run(boxes, cls, nms=False, class_specific_filter=False, max_detections=4)
    np.testing.assert_allclose(s[0], [0.9, 0.8, 0.5, -1], rtol=1e-6)
    np.testing.assert_array_equal(lab[0], [0, 0, 1, -1])


def test_no_detections_all_padding():
    b, s, lab = run([[[0, 0, 1, 1]]], [[[0.01, 0.02]]], max_detections=3)
    np.testing.assert_array_equal(b, -1)
    np.testing.assert_array_equal(s, -1)
    np.testing.assert_array_equal(lab, -1)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("class_specific", [True, False])
def test_matches_numpy_greedy_nms(seed, class_specific):
    rng = np.random.default_rng(seed)
    num_anchors, num_classes = 60, 3
    xy = rng.uniform(0, 60, size=(2, num_anchors, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 30, size=(2, num_anchors, 2))], axis=-1).astype(np.float32)
    cls = (rng.uniform(size=(2, num_anchors, num_classes)) ** 3).astype(np.float32)
    max_detections = 25
    b, s, lab = run(boxes, cls, class_specific_filter=class_specific, max_detections=max_detections)
    for image in range(2):
        expected = numpy_filter(boxes[image].astype(np.float64), cls[image].astype(np.float64),
                                class_specific=class_specific, max_detections=max_detections)
        expected_set = {(lab, tuple(np.round(boxes[image, n], 4)), round(sc, 6)) for sc, lab, n in expected}
        assert as_set(b[image], s[image], lab[image]) == expected_set
        np.testing.assert_allclose(s[image, : len(expected)], [t[0] for t in expected], rtol=1e-6)
        assert np.all(np.diff(s[image, : len(expected)]) <= 0)
        np.testing.assert_array_equal(s[image, len(expected):], -1)


def test_get_config_and_model_round_trip(tmp_path):
    layer = layers.FilterDetections(nms=False, class_specific_filter=False, nms_threshold=0.3, score_threshold=0.2,
                                    max_detections=7, parallel_iterations=4, name="fd")
    restored = layers.FilterDetections.from_config(layer.get_config())
    assert restored.get_config() == layer.get_config()
    boxes_in = keras.Input((None, 4))
    cls_in = keras.Input((None, 2))
    model = keras.Model([boxes_in, cls_in], layers.FilterDetections(max_detections=5)([boxes_in, cls_in]))
    path = tmp_path / "fd.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    x = [np.array([[[0, 0, 10, 10], [1, 1, 10, 10]]], np.float32), np.array([[[0.9, 0.2], [0.8, 0.7]]], np.float32)]
    for a, b in zip(model.predict(x, verbose=0), loaded.predict(x, verbose=0)):
        np.testing.assert_array_equal(a, b)


def numpy_per_level_candidates(classification, level_sizes, limit, class_specific=True, score_threshold=0.05):
    """The paper's candidate rule: in each level, the ``limit`` best scores above the threshold.

    Returns a (N, C) copy of ``classification`` in which every other score is set to 0.
    """
    kept = np.zeros_like(classification)
    start = 0
    for size in level_sizes:
        level = classification[start : start + size]
        scores = level if class_specific else level.max(axis=1, keepdims=True)
        flat = scores.reshape(-1)
        order = [i for i in np.argsort(-flat, kind="stable") if flat[i] > score_threshold][:limit]
        for i in order:
            anchor, column = divmod(i, scores.shape[1])
            if class_specific:
                kept[start + anchor, column] = level[anchor, column]
            else:
                kept[start + anchor] = level[anchor]
        start += size
    return kept


@pytest.mark.parametrize("class_specific", [True, False])
def test_candidates_per_level_keeps_each_levels_best(class_specific):
    """Per-level selection equals the numpy rule followed by plain filtering of the survivors."""
    rng = np.random.default_rng(7)
    level_sizes, num_classes, limit = [40, 15, 5], 3, 6
    total = sum(level_sizes)
    xy = rng.uniform(0, 80, size=(1, total, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 30, size=(1, total, 2))], axis=-1).astype(np.float32)
    cls = rng.uniform(size=(1, total, num_classes)).astype(np.float32)
    level_anchors = [np.zeros((1, size, 4), np.float32) for size in level_sizes]
    layer = layers.FilterDetections(class_specific_filter=class_specific, max_detections=20, candidates_per_level=limit)
    b, s, lab = (np.asarray(t) for t in layer([boxes, cls], level_anchors=level_anchors))

    survivors = numpy_per_level_candidates(cls[0], level_sizes, limit, class_specific)
    if not class_specific:  # each anchor's best class survives whole; the others must not win argmax
        survivors = np.where(survivors == survivors.max(axis=1, keepdims=True), survivors, 0)
    expected = numpy_filter(boxes[0].astype(np.float64), survivors.astype(np.float64), class_specific=class_specific,
                            max_detections=20)
    expected_set = {(lab, tuple(np.round(boxes[0, n], 4)), round(sc, 6)) for sc, lab, n in expected}
    assert as_set(b[0], s[0], lab[0]) == expected_set
    # At most ``limit`` candidates per level can have come through.
    assert len(expected) <= limit * len(level_sizes)


def test_candidates_per_level_bounds_a_flood_of_scores():
    """Every score passes the threshold; only the 2 best of each level are candidates, and no NMS happens."""
    level_sizes = [4, 4]
    boxes = np.array([[[i * 20, 0, i * 20 + 10, 10] for i in range(8)]], np.float32)  # disjoint boxes
    cls = np.array([[[0.6], [0.9], [0.7], [0.8], [0.95], [0.5], [0.55], [0.65]]], np.float32)
    level_anchors = [np.zeros((1, size, 4), np.float32) for size in level_sizes]
    layer = layers.FilterDetections(max_detections=8, candidates_per_level=2)
    _, s, _ = (np.asarray(t) for t in layer([boxes, cls], level_anchors=level_anchors))
    np.testing.assert_allclose(s[0], [0.95, 0.9, 0.8, 0.65, -1, -1, -1, -1], rtol=1e-6)
    # Without the levels (keras-retinanet's behaviour) all 8 come through.
    _, s, _ = (np.asarray(t) for t in layer([boxes, cls]))
    assert np.sum(s[0] > 0) == 8


def test_soft_nms_decays_an_overlapping_score_by_hand():
    """Gaussian Soft-NMS as TensorFlow defines sigma: the kept box multiplies the other's score by exp(-IoU^2/(2s)).

    Boxes [0,0,10,10] and [0,0,10,9]: IoU 90/100 = 0.9, so with sigma 0.5 the 0.8 becomes 0.8 exp(-0.81) = 0.35555;
    hard NMS would drop it. A disjoint box keeps its score.
    """
    boxes = [[[0, 0, 10, 10], [0, 0, 10, 9], [50, 50, 60, 60]]]
    cls = [[[0.9], [0.8], [0.3]]]
    _, s, lab = run(boxes, cls, max_detections=4, nms_method="soft", soft_nms_sigma=0.5)
    np.testing.assert_allclose(s[0], [0.9, 0.8 * np.exp(-0.81), 0.3, -1], rtol=1e-5)
    np.testing.assert_array_equal(lab[0], [0, 0, 0, -1])
    _, hard, _ = run(boxes, cls, max_detections=4)
    np.testing.assert_allclose(hard[0], [0.9, 0.3, -1, -1], rtol=1e-6)
    # A decayed score at or below the threshold drops out: 0.1 exp(-0.81) < 0.05.
    _, s, _ = run(boxes, [[[0.9], [0.1], [0.3]]], max_detections=4, nms_method="soft", soft_nms_sigma=0.5)
    np.testing.assert_allclose(s[0], [0.9, 0.3, -1, -1], rtol=1e-6)


def numpy_soft_nms(boxes, scores, sigma, score_threshold, max_output):
    """Gaussian Soft-NMS from its description: repeatedly keep the best remaining box (ties: lower index) and
    multiply every other remaining score by exp(-IoU^2 / (2 sigma)); scores at or below the threshold drop out."""
    remaining = {n: float(s) for n, s in enumerate(scores) if s > score_threshold}
    kept = []
    while remaining and len(kept) < max_output:
        best = min(remaining, key=lambda n: (-remaining[n], n))
        kept.append((best, remaining.pop(best)))
        for n in list(remaining):
            remaining[n] *= np.exp(-iou(boxes[best], boxes[n]) ** 2 / (2 * sigma))
            if remaining[n] <= score_threshold:
                del remaining[n]
    return kept


@pytest.mark.parametrize("seed", [0, 1])
def test_soft_nms_matches_numpy_per_class(seed):
    rng = np.random.default_rng(seed)
    num_anchors, num_classes = 50, 2
    xy = rng.uniform(0, 40, size=(1, num_anchors, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(10, 30, size=(1, num_anchors, 2))], axis=-1).astype(np.float32)
    cls = rng.uniform(0.0, 1.0, size=(1, num_anchors, num_classes)).astype(np.float32)
    b, s, lab = run(boxes, cls, max_detections=40, nms_method="soft", soft_nms_sigma=0.3)
    expected = []
    for label in range(num_classes):
        for n, score in numpy_soft_nms(boxes[0].astype(np.float64), cls[0, :, label], 0.3, 0.05, 40):
            expected.append((score, label, n))
    expected.sort(key=lambda t: -t[0])
    expected = expected[:40]
    count = int(np.sum(lab[0] >= 0))
    assert count == len(expected)
    np.testing.assert_allclose(s[0, :count], [t[0] for t in expected], rtol=1e-5)
    np.testing.assert_array_equal(lab[0, :count], [t[1] for t in expected])
    np.testing.assert_allclose(b[0, :count], boxes[0, [t[2] for t in expected]], atol=1e-6)


def test_nms_method_is_checked_and_round_trips():
    layer = layers.FilterDetections(nms_method="soft", soft_nms_sigma=0.25)
    assert layers.FilterDetections.from_config(layer.get_config()).get_config() == layer.get_config()
    with pytest.raises(ValueError, match="nms_method"):
        layers.FilterDetections(nms_method="linear")
    with pytest.raises(ValueError, match="soft_nms_sigma"):
        layers.FilterDetections(nms_method="soft", soft_nms_sigma=0)
