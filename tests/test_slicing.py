"""Sliced inference's numpy parts: where tiles lie, and how the detections of overlapping tiles merge.

Every expected value is worked out by hand from the tile geometry.
"""

import numpy as np
import pytest

from keras_retinanet.inference.slicing import (
    Tiling,
    TilingError,
    batches,
    class_nms,
    cut_by_inner_edges,
    merge_tiles,
    tile_starts,
    tile_windows,
)


def test_tile_starts_step_by_the_overlap_and_end_flush_with_the_edge():
    # 400 px tiles sharing 20%: a step of 320; the last tile starts at 1000 - 400 = 600.
    assert tile_starts(1000, 400, 0.2) == [0, 320, 600]
    assert tile_starts(1000, 400, 0.0) == [0, 400, 600]
    assert tile_starts(800, 400, 0.0) == [0, 400]
    assert tile_starts(400, 400, 0.5) == [0]
    assert tile_starts(150, 400, 0.2) == [0]  # smaller than a tile: one tile


def test_windows_cover_the_image_with_equal_tiles_inside_it():
    windows = tile_windows(700, 1000, Tiling(400, 400, overlap=0.2))
    assert windows.tolist() == [
        [0, 0, 400, 400], [320, 0, 720, 400], [600, 0, 1000, 400],
        [0, 300, 400, 700], [320, 300, 720, 700], [600, 300, 1000, 700],
    ]  # fmt: skip
    covered = np.zeros((700, 1000), bool)
    for x1, y1, x2, y2 in windows:
        covered[y1:y2, x1:x2] = True
    assert covered.all()


def test_an_image_smaller_than_a_tile_is_one_tile_of_its_own_size():
    assert tile_windows(120, 90, Tiling(256, 256)).tolist() == [[0, 0, 90, 120]]
    # Narrower than a tile in one direction only: tiles as wide as the image.
    assert tile_windows(600, 90, Tiling(256, 256, overlap=0.0)).tolist() == [
        [0, 0, 90, 256], [0, 256, 90, 512], [0, 344, 90, 600]
    ]  # fmt: skip


def test_rectangular_tiles():
    assert tile_windows(300, 500, Tiling(300, 250, overlap=0.0)).tolist() == [[0, 0, 250, 300], [250, 0, 500, 300]]
    assert Tiling.of((300, 250)) == Tiling(300, 250)


@pytest.mark.parametrize(
    "tile, options, message",
    [
        ("640", {}, "tile must be an int or"),
        ((640,), {}, "tile must be an int or"),
        (0, {}, "positive size"),
        (640, {"overlap": 1.0}, "tile_overlap"),
        (640, {"overlap": -0.1}, "tile_overlap"),
        (640, {"merge": "union"}, "tile_merge"),
        (640, {"batch_size": 0}, "batch size"),
    ],
)
def test_bad_tile_arguments_are_one_line_errors(tile, options, message):
    with pytest.raises(TilingError, match=message) as error:
        Tiling.of(tile, **options)
    assert "\n" not in str(error.value)


def test_batches_hold_at_most_the_batch_size():
    windows = tile_windows(2000, 2000, Tiling(256, 256, overlap=0.0))
    sizes = [len(group) for group in batches(windows, 4)]
    assert sum(sizes) == len(windows) == 64 and max(sizes) == 4


# Two tiles of one row: A = [0, 400) and B = [320, 720) across a 720 x 300 image (overlap 80 px).
A, B = [0, 0, 400, 300], [320, 0, 720, 300]
SIZE = (300, 720)


def merged(detections, rule):
    boxes = np.array([d[0] for d in detections], float)
    scores = np.array([d[1] for d in detections])
    labels = np.array([d[2] for d in detections])
    windows = np.array([d[3] for d in detections])
    tiles = np.array([0 if d[3] == A else 1 for d in detections])
    return merge_tiles(boxes, scores, labels, windows, tiles, SIZE, rule)


def test_inner_edges_are_those_that_are_not_the_images():
    boxes = np.array([[380, 50, 399, 90], [0, 50, 30, 90], [690, 50, 719, 90], [330, 50, 360, 90]], float)
    windows = np.array([A, A, B, B])
    # A's right edge (x 399) is inner; its left edge is the image's. B's left edge (x 320) is inner, its right the
    # image's: only the first box (A's right) and none other is cut; the last lies 10 px inside B's left edge.
    assert cut_by_inner_edges(boxes, windows, SIZE).tolist() == [True, False, False, False]


def test_an_object_cut_by_a_tile_border_is_reported_once_whole():
    """Object x 380-440: A sees its left 19 px (cut at A's edge), B sees it whole."""
    detections = [
        ([380, 50, 399, 90], 0.7, 0, A),  # the cut part, IoU with the whole 19/60 = 0.32: NMS keeps both
        ([380, 50, 440, 90], 0.9, 0, B),
    ]
    boxes, scores, labels = merged(detections, "border")
    np.testing.assert_array_equal(boxes, [[380, 50, 440, 90]])
    np.testing.assert_array_equal(scores, [0.9])
    assert len(merged(detections, "nms")[0]) == 2  # the rule the docs explain border's choice by
    # The cut part may score higher than the whole: still the whole box is kept.
    detections[0] = ([380, 50, 399, 90], 0.95, 0, A)
    np.testing.assert_array_equal(merged(detections, "border")[0], [[380, 50, 440, 90]])


def test_an_object_in_the_overlap_seen_whole_twice_is_reported_once():
    detections = [([340, 100, 380, 140], 0.8, 1, A), ([340.5, 100, 380.5, 140], 0.85, 1, B)]
    for rule in ("border", "nms", "merge"):
        boxes, scores, labels = merged(detections, rule)
        assert len(boxes) == 1 and scores[0] == 0.85 and labels[0] == 1


def test_other_classes_and_the_image_edges_are_left_alone():
    detections = [
        ([380, 50, 399, 90], 0.7, 2, A),  # cut, but B's whole box is of another class: kept
        ([380, 50, 440, 90], 0.9, 0, B),
        ([690, 200, 720, 240], 0.6, 0, B),  # at the image's right edge: not cut
        ([0, 0, 20, 20], 0.5, 0, A),  # at the image's corner
    ]
    boxes, scores, labels = merged(detections, "border")
    assert sorted(labels.tolist()) == [0, 0, 0, 2] and len(boxes) == 4


def test_an_object_larger_than_the_overlap_is_joined_by_merge():
    """Object x 300-460 (160 px, wider than the 80 px overlap): A sees x 300-399, B sees x 320-460; both cut."""
    detections = [([300, 50, 399, 120], 0.8, 0, A), ([320, 50, 460, 120], 0.7, 0, B)]
    boxes, scores, _ = merged(detections, "merge")
    np.testing.assert_array_equal(boxes, [[300, 50, 460, 120]])
    assert scores.tolist() == [0.8]
    # border keeps both parts: neither tile saw the object whole (NMS: IoU 79/160 = 0.49 keeps both).
    assert len(merged(detections, "border")[0]) == 2


def test_a_cut_box_inside_another_larger_object_is_its_own_object():
    """A's part x 380-399 lies inside B's uncut box x 330-440, y 20-150, a larger object: clipped to A's window that
    box is x 330-400 (70 x 130 = 9,100 px), the part 19 x 40 = 760 px inside it: IoU 760 / 9,100 = 0.08, not the
    same object (the part would only be 'mostly covered')."""
    detections = [([380, 50, 399, 90], 0.7, 0, A), ([330, 20, 440, 150], 0.9, 0, B)]
    for rule in ("border", "merge"):
        assert len(merged(detections, rule)[0]) == 2


def test_a_weak_part_is_absorbed_without_reshaping_a_confident_one():
    """As the join above, but B's part scores 0.2, under 0.3 x 0.8: one object, A's box and score."""
    detections = [([300, 50, 399, 120], 0.8, 0, A), ([320, 50, 460, 120], 0.2, 0, B)]
    boxes, scores, _ = merged(detections, "merge")
    np.testing.assert_array_equal(boxes, [[300, 50, 399, 120]])
    assert scores.tolist() == [0.8]


def test_class_nms_by_hand():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 19], [0, 0, 10, 21], [0, 0, 10, 10]], float)
    scores = np.array([0.9, 0.85, 0.8, 0.7])
    labels = np.array([0, 0, 0, 1])
    # IoU(0, 1) = 100/190 > 0.5: suppressed; IoU(0, 2) = 100/210 < 0.5: kept; box 3 is another class.
    assert class_nms(boxes, scores, labels, 0.5).tolist() == [0, 2, 3]


def brute_force_nms(boxes, scores, labels, threshold):
    """Greedy NMS comparing every pair: the reference for the grid-indexed one."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    kept = []
    for i in order:
        ok = True
        for k in kept:
            if labels[k] != labels[i]:
                continue
            width = min(boxes[i][2], boxes[k][2]) - max(boxes[i][0], boxes[k][0])
            height = min(boxes[i][3], boxes[k][3]) - max(boxes[i][1], boxes[k][1])
            inter = max(width, 0) * max(height, 0)
            union = ((boxes[i][2] - boxes[i][0]) * (boxes[i][3] - boxes[i][1])
                     + (boxes[k][2] - boxes[k][0]) * (boxes[k][3] - boxes[k][1]) - inter)  # fmt: skip
            if inter / union > threshold:
                ok = False
                break
        if ok:
            kept.append(i)
    return kept


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grid_indexed_nms_equals_comparing_every_pair(seed):
    """Many small boxes, a few large ones spanning many grid cells, two classes."""
    rng = np.random.default_rng(seed)
    count = 500
    corner = rng.uniform(0, 800, (count, 2))
    large = rng.uniform(size=(count, 1)) < 0.03
    sizes = np.where(large, rng.uniform(150, 500, (count, 2)), rng.uniform(8, 40, (count, 2)))
    boxes = np.concatenate([corner, corner + sizes], axis=1)
    scores = rng.uniform(size=count)
    labels = rng.integers(0, 2, count)
    assert class_nms(boxes, scores, labels, 0.3).tolist() == brute_force_nms(boxes, scores, labels, 0.3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_touching_pairs_are_every_intersecting_pair_of_a_class(seed):
    """The grid join against comparing every pair: boxes of many sizes (some spanning many cells), three classes."""
    from keras_retinanet.inference.merging import touching_pairs

    rng = np.random.default_rng(seed)
    corners = rng.uniform(0, 500, (300, 2))
    sizes = np.where(rng.random((300, 1)) < 0.1, rng.uniform(50, 200, (300, 2)), rng.uniform(2, 30, (300, 2)))
    boxes = np.concatenate([corners, corners + sizes], axis=1)
    labels = rng.integers(0, 3, 300)
    first, second = touching_pairs(boxes, labels)
    found = set(zip(first.tolist(), second.tolist()))
    expected = {
        (i, j) for i in range(300) for j in range(i + 1, 300)
        if labels[i] == labels[j] and min(boxes[i, 2], boxes[j, 2]) > max(boxes[i, 0], boxes[j, 0])
        and min(boxes[i, 3], boxes[j, 3]) > max(boxes[i, 1], boxes[j, 1])
    }  # fmt: skip
    assert found == expected and len(first) == len(found) and len(expected) > 100


def test_the_pairs_of_grown_boxes_are_found_anew_as_a_full_search_finds_them():
    """After some boxes grow (joined parts), their pairs are looked up in their cells only (touching_some); with the
    others' pairs kept, the set equals what a full search of the new boxes finds."""
    from keras_retinanet.inference.merging import TileDetections, touching, with_grown_boxes, with_pairs

    rng = np.random.default_rng(5)
    corners = rng.uniform(0, 400, (200, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(5, 40, (200, 2))], axis=1)
    labels = rng.integers(0, 2, 200)
    detections = with_pairs(TileDetections.of(boxes, rng.random(200), labels, np.tile([0, 0, 500, 500], (200, 1)),
                                              np.zeros(200), (500, 500)))  # fmt: skip
    grew = rng.random(200) < 0.1
    grown = boxes.copy()
    grown[grew, 2:] += rng.uniform(10, 60, (grew.sum(), 2))
    import dataclasses

    updated = with_grown_boxes(dataclasses.replace(detections, boxes=grown), grew)
    found = set(zip(updated.pairs.first.tolist(), updated.pairs.second.tolist()))
    full = touching(grown, labels)
    assert found == set(zip(full.first.tolist(), full.second.tolist())) and len(found) == len(updated.pairs.first)
    by_pair = dict(zip(zip(full.first.tolist(), full.second.tolist()), full.intersection.tolist()))
    assert all(by_pair[pair] == area for pair, area in zip(zip(updated.pairs.first.tolist(),
                                                                updated.pairs.second.tolist()),
                                                            updated.pairs.intersection.tolist()))  # fmt: skip
