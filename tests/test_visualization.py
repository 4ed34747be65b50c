"""Drawing helpers (keras_retinanet.utils.visualization) and label colours (keras_retinanet.utils.colors)."""

import matplotlib.colors
import numpy as np
import pytest

from keras_retinanet.utils.colors import COLORS, label_color
from keras_retinanet.utils.visualization import (
    draw_annotations,
    draw_box,
    draw_boxes,
    draw_caption,
    draw_detections,
)

RED = (0, 0, 255)  # BGR
BACKGROUND = 40


def canvas(height=64, width=96):
    return np.full((height, width, 3), BACKGROUND, dtype=np.uint8)


def is_color(image, y, x, color):
    return tuple(int(c) for c in image[y, x]) == tuple(color)


def test_draw_box_outlines_the_box_only():
    image = canvas()
    draw_box(image, (10, 20, 50, 40), RED)
    for y, x in [(20, 30), (40, 30), (30, 10), (30, 50)]:  # middle of each edge
        assert is_color(image, y, x, RED)
    assert is_color(image, 30, 30, (BACKGROUND,) * 3)  # inside
    assert is_color(image, 5, 5, (BACKGROUND,) * 3)  # outside


def test_draw_box_truncates_float_corners_like_keras_retinanet():
    image = canvas()
    draw_box(image, np.array([10.9, 20.9, 50.9, 40.9]), RED, thickness=1)
    red = image[..., 2].astype(int)
    # The anti-aliased 1 px line is strongest on the truncated coordinate: x1 10.9 -> 10, y1 20.9 -> 20.
    assert 8 + np.argmax(red[30, 8:14]) == 10
    assert 18 + np.argmax(red[18:24, 30]) == 20
    assert 48 + np.argmax(red[30, 48:54]) == 50


def test_draw_boxes_draws_each_box():
    image = canvas()
    draw_boxes(image, np.array([[5, 5, 20, 20], [30, 30, 60, 50]]), RED)
    assert is_color(image, 5, 12, RED)
    assert is_color(image, 50, 45, RED)


def test_draw_caption_writes_white_text_above_the_box():
    image = canvas()
    draw_caption(image, (10, 40, 50, 60), "cat")
    rows = np.where((image != BACKGROUND).any(axis=(1, 2)))[0]
    # Text sits on a baseline 10 px above y1 = 40 (its outline reaches a pixel below): nothing is on the box.
    assert rows.max() <= 31 and rows.min() >= 10
    white = (image == 255).all(axis=2)
    black = (image == 0).all(axis=2)
    assert white.any() and black.any()


def test_draw_detections_respects_threshold_and_uses_class_colors():
    image = canvas()
    boxes = np.array([[10, 20, 30, 40], [50, 20, 80, 40]], dtype=np.float32)
    scores = np.array([0.9, 0.3])
    labels = np.array([3, 5])
    names = {3: "dog", 5: "car"}
    draw_detections(image, boxes, scores, labels, label_to_name=names.get, score_threshold=0.5)
    assert is_color(image, 40, 20, label_color(3))  # bottom edge of the 0.9 detection
    assert is_color(image, 40, 65, (BACKGROUND,) * 3)  # the 0.3 detection is not drawn


def test_draw_detections_single_color_and_numeric_caption():
    image = canvas()
    draw_detections(image, np.array([[10, 20, 30, 40]]), np.array([0.8]), np.array([7]), color=RED)
    assert is_color(image, 40, 20, RED)
    assert (image[:20] == 255).all(axis=2).any()  # the caption '7: 0.80' above the box


def test_draw_detections_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="as many boxes"):
        draw_detections(canvas(), np.zeros((2, 4)), np.zeros((3,)), np.zeros((2,)))


def test_draw_annotations_dict_and_array_forms():
    for annotations in (
        {"bboxes": np.array([[10, 20, 30, 40]]), "labels": np.array([1])},
        np.array([[10, 20, 30, 40, 1]], dtype=np.float64),
    ):
        image = canvas()
        draw_annotations(image, annotations, label_to_name={1: "person"}.get)
        assert is_color(image, 40, 20, (0, 255, 0))  # default green
    image = canvas()
    draw_annotations(image, {"bboxes": np.array([[10, 20, 30, 40]]), "labels": np.array([2])}, color=None)
    assert is_color(image, 40, 20, label_color(2))


def test_draw_annotations_rejects_malformed_input():
    with pytest.raises(ValueError, match="'bboxes' and 'labels'"):
        draw_annotations(canvas(), {"boxes": np.zeros((1, 4))})
    with pytest.raises(ValueError, match="1 boxes but 2 labels"):
        draw_annotations(canvas(), {"bboxes": np.zeros((1, 4)), "labels": np.zeros((2,))})


def test_colors_are_the_80_evenly_spaced_hues():
    # keras-retinanet generated its table from hues 0, 1/80, ..., 79/80 at full saturation and value.
    expected = {
        tuple(int(c) for c in (matplotlib.colors.hsv_to_rgb([hue, 1.0, 1.0]) * 255).astype(int))
        for hue in np.arange(0, 1, 1.0 / 80)
    }
    assert len(COLORS) == 80
    assert set(COLORS) == expected
    # The order is keras-retinanet's fixed shuffle: its first labels.
    assert [label_color(i) for i in range(3)] == [(31, 0, 255), (0, 159, 255), (255, 95, 0)]
    assert label_color(np.int32(79)) == (50, 255, 0)


def test_label_without_color_warns_and_is_green():
    with pytest.warns(UserWarning, match="Label 80 has no color"):
        assert label_color(80) == (0, 255, 0)
