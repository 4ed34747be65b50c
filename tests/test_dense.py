"""Dense scenes through the Detector and the commands: sliced inference (tiles mapped back to the image, batched,
merged), more than 300 detections, per-class counts and counts.csv."""

import csv
import os
from collections import Counter

import cv2
import numpy as np
import pytest

from keras_retinanet import load_detector
from keras_retinanet.bin import predict as predict_command
from keras_retinanet.inference.slicing import Tiling, TilingError, merge_tiles, tile_windows

from helpers.scene_models import CLASS_NAMES, scene, training_model


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("dense") / "model.keras"
    training_model().save(path)
    return str(path)


@pytest.fixture(scope="module")
def detector(model_file):
    return load_detector(model_file, score_threshold=0.3)


def test_tiles_are_detected_at_the_model_scale_and_mapped_back(detector):
    """Each tile by hand: cropped, detected on its own above the threshold (which comes before merging), shifted by
    its corner; then the same merge."""
    image = scene(200, 330)
    tiling = Tiling(128, 128, overlap=0.25, batch_size=3)
    parts = []
    for number, (x1, y1, x2, y2) in enumerate(tile_windows(200, 330, tiling)):
        found = detector.predict(image[y1:y2, x1:x2].copy())  # the detector's threshold, 0.3
        assert found.scores.min() > 0.3
        parts.append((found.boxes + [x1, y1, x1, y1], found.scores, found.labels,
                      np.tile([x1, y1, x2, y2], (len(found), 1)), np.full(len(found), number)))  # fmt: skip
    boxes, scores, labels, windows, tiles = (np.concatenate(column) for column in zip(*parts))
    expected = merge_tiles(boxes, scores, labels, windows, tiles, (200, 330), "border")
    result = detector.predict(image, tile=128, tile_overlap=0.25, tile_merge="border", tile_batch_size=1,
                              max_detections=5000)  # fmt: skip
    assert len(result["scores"]) == len(expected[1]) > 20 and not result.capped
    np.testing.assert_allclose(result["boxes"], expected[0], atol=1e-3)
    np.testing.assert_allclose(result["scores"], expected[1], atol=1e-6)
    # In batches of 3 the network's last bits may differ from a tile run alone: a near tie in a merge may go the
    # other way, nothing more.
    batched = detector.predict(image, tile=128, tile_overlap=0.25, tile_merge="border", tile_batch_size=3,
                               max_detections=5000)  # fmt: skip
    rows = np.column_stack([batched["boxes"], batched["scores"]])
    expected_rows = np.column_stack([result["boxes"], result["scores"]])
    distance = np.abs(rows[:, None, :] - expected_rows[None, :, :]).max(axis=2)
    assert abs(len(rows) - len(expected_rows)) <= 2
    assert np.mean(distance.min(axis=1) < 1e-3) > 0.99 and np.mean(distance.min(axis=0) < 1e-3) > 0.99
    assert result["boxes"][:, 2].max() > 200 and result["boxes"][:, 3].max() > 128  # beyond the first tile
    assert Counter(result["names"].tolist()) == result["counts"]


def test_an_image_smaller_than_a_tile_is_detected_whole(detector):
    image = scene(90, 120, seed=1)
    whole = detector.predict(image)
    tiled = detector.predict(image, tile=256)
    np.testing.assert_allclose(tiled["boxes"], whole["boxes"], atol=1e-4)
    np.testing.assert_allclose(tiled["scores"], whole["scores"], atol=1e-6)


def test_tiles_at_the_image_edge_are_full_size_and_inside(detector):
    """A 250 px side in 96 px tiles with no overlap: starts 0, 96 and 154 (flush with the edge)."""
    image = scene(96, 250, seed=2)
    result = detector.predict(image, tile=96, tile_overlap=0.0)
    assert result["boxes"][:, 2].max() <= 249 + 1e-3 and result["boxes"][:, 0].min() >= 0


def test_more_than_300_detections_when_asked(model_file):
    detector = load_detector(model_file, image_min_side=320, image_max_side=320)
    image = scene(320, 320, seed=3)
    many = detector.predict(image, score_threshold=0.05, max_detections=2000)
    assert 300 < len(many["scores"]) <= 2000
    assert np.all(np.diff(many["scores"]) <= 0)
    default = detector.predict(image, score_threshold=0.05)
    assert len(default["scores"]) == 300  # keras-retinanet's default stays
    # The best 300 of the larger set are the default set (the filter keeps at most N per class, then the best N).
    np.testing.assert_allclose(many["scores"][:300], default["scores"], atol=1e-6)
    few = detector.predict(image, score_threshold=0.05, max_detections=10)
    np.testing.assert_allclose(few["scores"], default["scores"][:10], atol=1e-6)


def test_bad_tile_arguments(detector):
    image = scene(96, 96)
    with pytest.raises(TilingError, match="tile_overlap"):
        detector.predict(image, tile=64, tile_overlap=1.5)
    with pytest.raises(TilingError, match="tile must be"):
        detector.predict(image, tile="big")
    with pytest.raises(ValueError, match="max_detections"):
        detector.predict(image, max_detections=0)


def test_predict_command_tiles_and_counts(model_file, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for index, (height, width) in enumerate([(200, 300), (80, 90)]):
        cv2.imwrite(str(images / f"plate{index}.png"), scene(height, width, seed=10 + index))
    output = tmp_path / "out"
    records = predict_command.main([model_file, str(images), "--tile", "128", "--tile-overlap", "0.25",
                                    "--max-detections", "1000", "--score-threshold", "0.3", "--no-draw",
                                    "--output-dir", str(output)])  # fmt: skip
    with open(output / "counts.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    # Every class of the model for every image, 0 where none; the counts are those of detections.csv.
    assert [(os.path.basename(r["source"]), r["class_name"]) for r in rows] == [
        ("plate0.png", "cell"), ("plate0.png", "debris"), ("plate1.png", "cell"), ("plate1.png", "debris")
    ]  # fmt: skip
    found = Counter((os.path.basename(r["source"]), r["class_name"]) for r in records)
    assert {(os.path.basename(r["source"]), r["class_name"]): int(r["count"]) for r in rows} == {
        key: found.get(key, 0) for key in [(f"plate{i}.png", name) for i in range(2) for name in CLASS_NAMES]
    }
    assert sum(found.values()) > 20


def test_predict_command_refuses_a_bad_tile_in_one_line(model_file, tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        predict_command.main([model_file, str(tmp_path), "--tile", "12x"])
    assert stopped.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and "--tile" in errors[0] and "HEIGHTxWIDTH" in errors[0]


def test_an_evaluation_keeping_thousands_lets_the_model_give_them(model_file):
    detector = load_detector(model_file, image_min_side=320, image_max_side=320)
    image = scene(320, 320, seed=3)
    before = detector.predict(image, score_threshold=0.05)
    keeping = detector.with_filter(max_detections=2000)
    assert keeping.max_detections == keeping.spec.filter["max_detections"] == 2000
    assert detector.max_detections == detector.spec.filter["max_detections"] == 300  # a new detector; this one is kept
    after = keeping.predict(image, score_threshold=0.05)
    assert len(before["scores"]) == 300 < len(after["scores"])
    assert before.capped  # the model found more than its 300
    np.testing.assert_allclose(after["scores"][:300], before["scores"], atol=1e-6)
