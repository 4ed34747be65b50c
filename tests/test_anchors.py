"""keras_retinanet.anchors against values worked out by hand from keras-retinanet's formulas."""

import math

import numpy as np
import pytest

from keras_retinanet import anchors as ua

RATIOS = [0.5, 1.0, 2.0]
SCALES = [2 ** 0, 2 ** (1.0 / 3.0), 2 ** (2.0 / 3.0)]


def hand_reference_anchors(base_size, ratios, scales):
    """w = sqrt(area / ratio), h = w * ratio, centred on the origin; ratio-major order."""
    rows = []
    for ratio in ratios:
        for scale in scales:
            area = (base_size * scale) ** 2
            w = math.sqrt(area / ratio)
            h = w * ratio
            rows.append([-w / 2, -h / 2, w / 2, h / 2])
    return np.array(rows)


def test_generate_anchors_default_values():
    anchors = ua.generate_anchors(32, ua.AnchorParameters.default.ratios, ua.AnchorParameters.default.scales)
    assert anchors.shape == (9, 4)
    np.testing.assert_allclose(anchors, hand_reference_anchors(32, RATIOS, SCALES), rtol=1e-6, atol=1e-5)
    # A few literal values: ratio 0.5 scale 1 -> 32*sqrt(2) wide, 16*sqrt(2) tall.
    np.testing.assert_allclose(anchors[0], [-16 * math.sqrt(2), -8 * math.sqrt(2), 16 * math.sqrt(2), 8 * math.sqrt(2)], atol=1e-5)
    # ratio 1 scale 1 is the 32x32 square.
    np.testing.assert_allclose(anchors[3], [-16, -16, 16, 16], atol=1e-5)
    # ratio 2 scale 2^(2/3): area (32*2^(2/3))^2, h = 2 w.
    w = 32 * 2 ** (2 / 3) / math.sqrt(2)
    np.testing.assert_allclose(anchors[8], [-w / 2, -w, w / 2, w], atol=1e-4)
    # Every anchor is centred and keeps its area.
    np.testing.assert_allclose(anchors[:, 0] + anchors[:, 2], 0, atol=1e-6)
    areas = (anchors[:, 2] - anchors[:, 0]) * (anchors[:, 3] - anchors[:, 1])
    np.testing.assert_allclose(areas, np.tile([(32 * s) ** 2 for s in SCALES], 3), rtol=1e-5)


def test_generate_anchors_default_arguments_are_the_papers():
    np.testing.assert_allclose(ua.generate_anchors(), hand_reference_anchors(16, RATIOS, SCALES), rtol=1e-6, atol=1e-5)


def test_anchor_parameters_default():
    params = ua.AnchorParameters.default
    assert params.sizes == [32, 64, 128, 256, 512]
    assert params.strides == [8, 16, 32, 64, 128]
    assert params.num_anchors() == 9


def test_shift_order_row_major_anchors_innermost():
    reference = np.array([[-1.0, -2.0, 1.0, 2.0], [-3.0, -3.0, 3.0, 3.0]])
    stride = 8
    shifted = ua.shift((2, 3), stride, reference)
    expected = []
    for i in range(2):  # rows (y)
        for j in range(3):  # columns (x)
            cx, cy = (j + 0.5) * stride, (i + 0.5) * stride
            for anchor in reference:
                expected.append(anchor + [cx, cy, cx, cy])
    np.testing.assert_allclose(shifted, np.array(expected))
    # The second position is (i=0, j=1): centre (12, 4).
    np.testing.assert_allclose(shifted[2], [11, 2, 13, 6])


def test_guess_shapes():
    shapes = ua.guess_shapes((800, 1067, 3), [3, 4, 5, 6, 7])
    assert [tuple(int(v) for v in s) for s in shapes] == [(100, 134), (50, 67), (25, 34), (13, 17), (7, 9)]
    shapes = ua.guess_shapes((65, 100), [3, 7])
    assert [tuple(int(v) for v in s) for s in shapes] == [(9, 13), (1, 1)]


def test_anchors_for_shape_counts():
    assert ua.anchors_for_shape((800, 1067, 3)).shape == (160956, 4)
    # 64 x 96: levels 3..7 give 8x12, 4x6, 2x3, 1x2, 1x1 positions = 129, times 9 anchors.
    anchors = ua.anchors_for_shape((64, 96, 3))
    assert anchors.shape == (129 * 9, 4)
    assert anchors.dtype == np.float64  # as keras-retinanet 1.0.0 returns them (issue 14)
    # Level by level: the first block is P3 at stride 8, size 32; the last anchor is P7's only position.
    np.testing.assert_allclose(anchors[:9], hand_reference_anchors(32, RATIOS, SCALES) + [4, 4, 4, 4], atol=1e-4)
    np.testing.assert_allclose(anchors[-9:], hand_reference_anchors(512, RATIOS, SCALES) + [64, 64, 64, 64], atol=1e-3)


def test_anchors_for_shape_custom_levels_and_params():
    params = ua.AnchorParameters(sizes=[16], strides=[4], ratios=[1.0], scales=[1.0])
    anchors = ua.anchors_for_shape((8, 12), pyramid_levels=[2], anchor_params=params)
    # (8+3)//4 = 2 rows, (12+3)//4 = 3 columns, one 16x16 anchor each
    assert anchors.shape == (6, 4)
    np.testing.assert_allclose(anchors[4], [6 - 8, 6 - 8, 6 + 8, 6 + 8])  # (i=1, j=1): centre (6, 6)
    with pytest.raises(ValueError):
        ua.anchors_for_shape((8, 12), pyramid_levels=[2, 3], anchor_params=params)


def test_anchors_for_shape_shapes_callback():
    params = ua.AnchorParameters(sizes=[16], strides=[4], ratios=[1.0], scales=[1.0])
    anchors = ua.anchors_for_shape((8, 12), pyramid_levels=[2], anchor_params=params,
                                   shapes_callback=lambda shape, levels: [np.array([1, 1])])
    np.testing.assert_allclose(anchors, [[-6, -6, 10, 10]])


def test_compute_overlap_by_hand():
    box = [0, 0, 10, 10]
    queries = np.array([
        [20, 20, 30, 30],  # disjoint: 0
        [10, 0, 20, 10],  # touching along an edge: 0
        [2, 2, 6, 6],  # contained: 16 / 100
        [5, 5, 15, 15],  # partial: 25 / (100 + 100 - 25)
        [3, 3, 3, 8],  # zero area: 0
        [0, 0, 10, 10],  # identical: 1
        [0, 0, 20, 10],  # half: 100 / 200
    ], dtype=np.float64)
    overlaps = ua.compute_overlap(np.array([box], dtype=np.float64), queries)
    assert overlaps.shape == (1, 7)
    np.testing.assert_allclose(overlaps[0], [0, 0, 0.16, 25 / 175, 0, 1, 0.5], rtol=1e-12)
    # symmetric, and zero-area boxes overlap nothing, not even themselves
    np.testing.assert_allclose(ua.compute_overlap(queries, np.array([box], np.float64))[:, 0], overlaps[0])
    assert ua.compute_overlap(queries[4:5], queries[4:5])[0, 0] == 0
    # N x K shape
    assert ua.compute_overlap(queries, queries).shape == (7, 7)


def test_compute_gt_annotations_thresholds():
    anchor = [0.0, 0.0, 10.0, 10.0]  # area 100
    anchors = np.array([anchor] * 5)
    # Each anchor is compared with one annotation contained in it: IoU = gt area / 100.
    heights = [5.0, 4.0, 4.5, 3.9, 10.0]  # IoU 0.5, 0.4, 0.45, 0.39, 1.0
    for expected, height in zip([(True, False), (False, False), (False, True), (False, False), (True, False)], heights):
        positive, ignore, argmax = ua.compute_gt_annotations(anchors[:1], np.array([[0, 0, 10, height]]))
        assert (bool(positive[0]), bool(ignore[0])) == expected, height
    # The best of several annotations decides; argmax names it.
    gts = np.array([[0, 0, 10, 3], [0, 0, 10, 6], [50, 50, 60, 60]], dtype=np.float64)
    positive, ignore, argmax = ua.compute_gt_annotations(anchors[:1], gts)
    assert positive[0] and not ignore[0] and argmax[0] == 1
    # Custom thresholds
    positive, ignore, _ = ua.compute_gt_annotations(anchors[:1], gts[:1], negative_overlap=0.2, positive_overlap=0.3)
    assert positive[0] and not ignore[0]
    positive, ignore, _ = ua.compute_gt_annotations(anchors[:1], gts[:1], negative_overlap=0.2, positive_overlap=0.4)
    assert not positive[0] and ignore[0]


def test_bbox_transform_by_hand():
    anchors = np.array([[0, 0, 10, 20], [5, 5, 9, 7]], dtype=np.float64)
    gts = np.array([[1, 2, 13, 18], [5, 5, 9, 7]], dtype=np.float64)
    targets = ua.bbox_transform(anchors, gts)
    # ((1-0)/10, (2-0)/20, (13-10)/10, (18-20)/20) / 0.2
    np.testing.assert_allclose(targets[0], [0.5, 0.5, 1.5, -0.5], atol=1e-12)
    np.testing.assert_allclose(targets[1], [0, 0, 0, 0], atol=1e-12)
    # explicit mean and std
    targets = ua.bbox_transform(anchors[:1], gts[:1], mean=[0.1, 0, 0, 0], std=[0.1, 0.1, 0.1, 0.1])
    np.testing.assert_allclose(targets[0], [0.0, 1.0, 3.0, -1.0], atol=1e-12)


def test_bbox_transform_inv_inverts():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, size=(20, 2))
    anchors = np.concatenate([xy, xy + rng.uniform(5, 50, size=(20, 2))], axis=1)
    xy = rng.uniform(0, 100, size=(20, 2))
    gts = np.concatenate([xy, xy + rng.uniform(1, 80, size=(20, 2))], axis=1)
    deltas = ua.bbox_transform(anchors, gts)
    np.testing.assert_allclose(ua.bbox_transform_inv(anchors, deltas), gts, rtol=1e-9, atol=1e-9)
    # by hand: x1 = a_x1 + d * 0.2 * a_w
    np.testing.assert_allclose(ua.bbox_transform_inv(np.array([[0., 0., 10., 20.]]), np.array([[1., 1., -1., 0.5]])),
                               [[2.0, 4.0, 8.0, 22.0]])


def test_anchor_targets_bbox_tiny_case():
    anchors = np.array([
        [0, 0, 10, 10],  # IoU 1 with gt0 -> positive, class 1
        [10, 0, 20, 10],  # IoU 50/100 = 0.5 with gt1 -> positive, class 0
        [0, 10, 10, 20],  # touches gt0 only -> negative
        [15, 15, 25, 25],  # centre (20, 20) outside a 20x20 image -> ignored
        [0, 0, 10, 22],  # IoU 100/220 with gt0 -> ignored (between 0.4 and 0.5)
        [0, 0, 10, 25],  # IoU 100/250 = 0.4 with gt0 -> negative
    ], dtype=np.float64)
    annotations = [
        {"bboxes": np.array([[0, 0, 10, 10], [10, 0, 20, 5]], dtype=np.float64), "labels": np.array([1, 0])},
        {"bboxes": np.zeros((0, 4)), "labels": np.zeros((0,))},
    ]
    images = [np.zeros((20, 20, 3)), np.zeros((20, 20, 3))]
    regression, labels = ua.anchor_targets_bbox(anchors, images, annotations, num_classes=3)
    assert regression.shape == (2, 6, 5) and labels.shape == (2, 6, 4)

    np.testing.assert_array_equal(labels[0, :, -1], [1, 1, 0, -1, -1, 0])
    np.testing.assert_array_equal(regression[0, :, -1], [1, 1, 0, -1, -1, 0])
    np.testing.assert_array_equal(labels[0, :, :-1], [[0, 1, 0], [1, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]])
    # gt0 on anchor 0: zero; gt1 [10,0,20,5] on anchor [10,0,20,10]: (0, 0, 0, -5/10) / 0.2
    np.testing.assert_allclose(regression[0, 0, :4], [0, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(regression[0, 1, :4], [0, 0, 0, -2.5], atol=1e-6)
    # Non-positive anchors still get targets towards their best box (they are masked by the state).
    np.testing.assert_allclose(regression[0, 4, :4], [0, 0, 0, (10 - 22) / 22 / 0.2], atol=1e-6)

    # No annotations: everything background except the anchor centred outside the image.
    np.testing.assert_array_equal(labels[1, :, -1], [0, 0, 0, -1, 0, 0])
    np.testing.assert_array_equal(regression[1, :, -1], [0, 0, 0, -1, 0, 0])
    assert not labels[1, :, :-1].any()


def test_anchor_targets_bbox_outside_uses_each_images_shape():
    anchors = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], dtype=np.float64)  # centres x = 5, 25
    annotations = [{"bboxes": np.zeros((0, 4)), "labels": np.zeros((0,))}] * 2
    _, labels = ua.anchor_targets_bbox(anchors, [np.zeros((10, 25, 3)), np.zeros((10, 26, 3))], annotations, 1)
    np.testing.assert_array_equal(labels[:, :, -1], [[0, -1], [0, 0]])


def test_unmatched_annotations():
    anchors = np.array([[0, 0, 10, 10]], dtype=np.float64)
    boxes = np.array([[0, 0, 10, 10], [0, 0, 2, 2]], dtype=np.float64)
    np.testing.assert_array_equal(ua.unmatched_annotations(anchors, boxes), [False, True])


# --- the vectorised overlaps and targets against a pair-by-pair reference --------------------------

def reference_iou(a, b):
    """IoU of two boxes with plain Python floats (IEEE doubles), the definition step by step."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    intersection = max(iw, 0.0) * max(ih, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - intersection
    return intersection / union if intersection > 0 and union > 0 else 0.0


def reference_matrix(boxes, queries):
    boxes = [[float(v) for v in row] for row in boxes]
    queries = [[float(v) for v in row] for row in queries]
    return np.array([[reference_iou(a, b) for b in queries] for a in boxes], dtype=np.float64).reshape(len(boxes), len(queries))


def reference_targets(anchors, image_shape, boxes, labels, num_classes):
    """anchor_targets_bbox for one image, anchor by anchor: first best box wins ties."""
    regression = np.zeros((len(anchors), 5), np.float32)
    onehot = np.zeros((len(anchors), num_classes + 1), np.float32)
    for n, anchor in enumerate(anchors):
        a = [float(v) for v in anchor]
        state = 0.0
        if len(boxes):
            ious = [reference_iou(a, [float(v) for v in box]) for box in boxes]
            best = max(range(len(ious)), key=lambda k: (ious[k], -k))  # largest IoU, then the first
            if ious[best] >= 0.5:
                state = 1.0
                onehot[n, labels[best]] = 1
            elif ious[best] > 0.4:
                state = -1.0
            g = [float(v) for v in boxes[best]]
            w, h = a[2] - a[0], a[3] - a[1]
            with np.errstate(divide="ignore", invalid="ignore"):  # degenerate anchors divide by 0
                regression[n, :4] = [np.float64(g[i] - a[i]) / np.float64((w, h, w, h)[i]) / np.float64(0.2) for i in range(4)]
        centre_x = (anchor[0] + anchor[2]) / 2  # in the anchors' dtype, like the implementation
        centre_y = (anchor[1] + anchor[3]) / 2
        if centre_x >= image_shape[1] or centre_y >= image_shape[0]:
            state = -1.0
        regression[n, 4] = state
        onehot[n, -1] = state
    return regression, onehot


def random_case(seed, num_anchors, num_boxes, extent=64.0):
    """Integer-grid anchors and boxes (so exact IoU ties happen), with degenerate boxes,
    boxes reaching outside the image, and duplicated boxes."""
    rng = np.random.default_rng(seed)

    def boxes(count, max_side):
        xy = rng.integers(-8, int(extent), size=(count, 2)).astype(np.float64)
        wh = rng.integers(0, max_side, size=(count, 2)).astype(np.float64)
        result = np.concatenate([xy, xy + wh], axis=1)
        if count > 2:
            result[rng.integers(0, count)] = result[rng.integers(0, count)]  # a duplicate
            flipped = rng.integers(0, count)
            result[flipped] = result[flipped, [2, 3, 0, 1]]  # x2 < x1, y2 < y1
        return result

    anchors = boxes(num_anchors, 24)
    anchors[: num_anchors // 4] += rng.uniform(0, 1, size=(num_anchors // 4, 4))  # some non-integer ones too
    return anchors, boxes(num_boxes, 40)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("num_anchors,num_boxes", [(50, 7), (700, 9), (6, 900)])
def test_compute_overlap_matches_pairwise_reference(seed, num_anchors, num_boxes):
    # (50, 7) takes the dense path, (700, 9) the loop over boxes, (6, 900) the loop over the anchors.
    anchors, boxes = random_case(seed, num_anchors, num_boxes)
    overlaps = ua.compute_overlap(anchors, boxes)
    assert overlaps.dtype == np.float64 and overlaps.shape == (num_anchors, num_boxes)
    np.testing.assert_array_equal(overlaps, reference_matrix(anchors, boxes))
    np.testing.assert_array_equal(ua.compute_overlap(boxes, anchors), overlaps.T)


@pytest.mark.parametrize("seed", range(6))
def test_compute_gt_annotations_and_unmatched_match_reference(seed):
    anchors, boxes = random_case(seed, 600, 10)
    boxes[3] = boxes[1]  # identical boxes: every tie must go to box 1, as np.argmax over rows does
    positive, ignore, argmax = ua.compute_gt_annotations(anchors.astype(np.float32), boxes)
    reference = reference_matrix(anchors.astype(np.float32), boxes)
    best = reference.max(axis=1)
    first_best = np.array([row.tolist().index(row.max()) for row in reference])
    assert argmax.dtype == np.intp and positive.dtype == bool and ignore.dtype == bool
    np.testing.assert_array_equal(argmax, first_best)
    assert not (argmax == 3).any()
    np.testing.assert_array_equal(positive, best >= 0.5)
    np.testing.assert_array_equal(ignore, (best > 0.4) & (best < 0.5))
    has_foreground = [(first_best[best >= 0.5] == k).any() for k in range(len(boxes))]
    np.testing.assert_array_equal(ua.unmatched_annotations(anchors.astype(np.float32), boxes), np.logical_not(has_foreground))


def test_compute_gt_annotations_needs_an_annotation():
    with pytest.raises(ValueError):
        ua.compute_gt_annotations(np.zeros((3, 4)), np.zeros((0, 4)))


@pytest.mark.parametrize("seed", range(5))
def test_anchor_targets_bbox_matches_reference(seed):
    anchors, boxes = random_case(seed, 500, 8)
    anchors = anchors[(anchors[:, 2] > anchors[:, 0]) & (anchors[:, 3] > anchors[:, 1])].astype(np.float32)
    rng = np.random.default_rng(seed)
    num_classes = 4
    annotations = [
        {"bboxes": boxes, "labels": rng.integers(0, num_classes, len(boxes))},
        {"bboxes": np.zeros((0, 4)), "labels": np.zeros((0,))},
        {"bboxes": boxes[:1], "labels": np.array([2])},
    ]
    images = [np.zeros((48, 56, 3)), np.zeros((64, 40)), np.zeros((30, 70, 3))]
    regression, labels = ua.anchor_targets_bbox(anchors, images, annotations, num_classes)
    assert regression.dtype == np.float32 and labels.dtype == np.float32
    for index, (image, annotation) in enumerate(zip(images, annotations)):
        expected_regression, expected_labels = reference_targets(anchors, image.shape, annotation["bboxes"], annotation["labels"], num_classes)
        np.testing.assert_array_equal(regression[index], expected_regression)
        np.testing.assert_array_equal(labels[index], expected_labels)


def test_bbox_transform_zero_mean_keeps_signed_zeros_and_matches_explicit_mean():
    anchors = np.array([[0.0, 0.0, 10.0, 20.0], [-5.0, 3.0, 7.0, 9.0]])
    gts = np.array([[0.0, 2.0, 13.0, 18.0], [-5.0, 1.0, 8.0, 9.5]])
    reference = ((gts - anchors) / np.array([[10.0, 20.0, 10.0, 20.0], [12.0, 6.0, 12.0, 6.0]]) - 0.0) / 0.2
    np.testing.assert_array_equal(ua.bbox_transform(anchors, gts), reference)
    np.testing.assert_array_equal(ua.bbox_transform(anchors, gts, mean=[0.1, -0.2, 0.0, 0.3], std=[0.1, 0.2, 0.3, 0.4]),
                                  ((gts - anchors) / np.array([[10.0, 20.0, 10.0, 20.0], [12.0, 6.0, 12.0, 6.0]]) - [0.1, -0.2, 0.0, 0.3]) / [0.1, 0.2, 0.3, 0.4])
    # a mean of -0.0 is applied (x - -0.0 turns -0.0 into +0.0), exactly as the formula says
    minus_zero = ua.bbox_transform(np.array([[0.0, 0.0, 1.0, 1.0]]), np.array([[-0.0, 0.0, 1.0, 1.0]]), mean=[-0.0] * 4)
    assert not np.signbit(minus_zero).any()


def test_anchors_package_is_numpy_only_and_utils_anchors_re_exports_it():
    import subprocess
    import sys

    import keras_retinanet.anchors as anchors_package
    from keras_retinanet.config import defaults

    code = "import sys, keras_retinanet.anchors; print(sorted({'keras', 'tensorflow'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
    # one implementation, two import paths
    for name in anchors_package.__all__:
        assert getattr(ua, name) is getattr(anchors_package, name), name
    # the box coding and the matching take their defaults from the one table
    np.testing.assert_array_equal(ua.DEFAULT_BOX_MEAN, defaults.BOX_CODING_MEAN)
    np.testing.assert_array_equal(ua.DEFAULT_BOX_STD, defaults.BOX_CODING_STD)
    anchors = np.array([[0.0, 0.0, 10.0, 10.0]] * 3)
    boxes = np.array([[0.0, 0.0, 10.0, 10.0 * defaults.POSITIVE_OVERLAP], [0.0, 0.0, 10.0, 4.5], [0.0, 0.0, 10.0, 4.0]])
    for box, (positive, ignore) in zip(boxes, [(True, False), (False, True), (False, False)]):
        got_positive, got_ignore, _ = ua.compute_gt_annotations(anchors[:1], box[np.newaxis])
        assert (bool(got_positive[0]), bool(got_ignore[0])) == (positive, ignore), box
