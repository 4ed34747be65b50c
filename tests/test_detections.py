"""``Detections``, the one result type: the dict it replaces, its forms in the ecosystem (COCO's results list read
back by pycocotools, supervision's Detections, detections.csv's rows, JSON), drawing and saving."""

import csv
import dataclasses
import json
import os

import cv2
import numpy as np
import pytest

from keras_retinanet.inference import Detections

RESULT = Detections(
    boxes=np.array([[10, 20, 50, 80], [100, 100, 130, 110]], np.float32),
    scores=np.array([0.9, 0.4], np.float32),
    labels=np.array([0, 2], np.int32),
    names=np.array(["person", "car"]),
    image_size=(200, 240),
)


def to_coco_results(result, image_id, category_ids=None):
    return result.to_coco(image_id, category_ids)


def to_supervision(result):
    return result.to_supervision()


def test_coco_results_by_hand():
    entries = to_coco_results(RESULT, image_id=7, category_ids={0: 1, 2: 3})
    assert entries == [
        {"image_id": 7, "category_id": 1, "bbox": [10.0, 20.0, 40.0, 60.0], "score": pytest.approx(0.9)},
        {"image_id": 7, "category_id": 3, "bbox": [100.0, 100.0, 30.0, 10.0], "score": pytest.approx(0.4)},
    ]
    assert [entry["category_id"] for entry in to_coco_results(RESULT, image_id=7)] == [0, 2]


def test_coco_results_score_perfectly_in_pycocotools():
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    ground_truth = COCO()
    ground_truth.dataset = {
        "images": [{"id": 7, "width": 200, "height": 200}],
        "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 1, "bbox": [10, 20, 40, 60], "area": 2400, "iscrowd": 0},
            {"id": 2, "image_id": 7, "category_id": 3, "bbox": [100, 100, 30, 10], "area": 300, "iscrowd": 0},
        ],
    }
    ground_truth.createIndex()
    detections = ground_truth.loadRes(to_coco_results(RESULT, image_id=7, category_ids={0: 1, 2: 3}))
    evaluation = COCOeval(ground_truth, detections, "bbox")
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    assert evaluation.stats[1] == pytest.approx(1.0)  # AP at IoU 0.5


def test_supervision_detections():
    import supervision  # in the [test] extra: a missing install fails here rather than skipping
    detections = to_supervision(RESULT)
    assert isinstance(detections, supervision.Detections) and len(detections) == 2
    np.testing.assert_array_equal(detections.xyxy, RESULT["boxes"])
    np.testing.assert_array_equal(detections.confidence, RESULT["scores"])
    np.testing.assert_array_equal(detections.class_id, [0, 2])
    assert list(detections.data["class_name"]) == ["person", "car"]
    # What a user does next: filter and draw with supervision's own tools.
    confident = detections[detections.confidence > 0.5]
    assert len(confident) == 1 and confident.data["class_name"][0] == "person"
    image = np.zeros((200, 200, 3), np.uint8)
    drawn = supervision.BoxAnnotator().annotate(image.copy(), detections)
    assert drawn[20, 10:50].any() and not image.any()


def test_code_written_for_the_old_dict_runs_unchanged():
    """predict returned a dict of boxes, scores, labels, names and counts: the same reads give the same values."""
    assert RESULT["counts"] == {"person": 1, "car": 1}
    np.testing.assert_array_equal(RESULT["boxes"], [[10, 20, 50, 80], [100, 100, 130, 110]])
    assert RESULT["names"].tolist() == ["person", "car"] and RESULT["labels"].dtype == np.int32
    assert list(RESULT) == list(RESULT.keys()) == ["boxes", "scores", "labels", "names", "counts"]
    as_dict = dict(RESULT)
    assert sorted(as_dict) == ["boxes", "counts", "labels", "names", "scores"] and as_dict["counts"]["car"] == 1
    assert "scores" in RESULT and "capped" not in RESULT and RESULT.get("width", 5) == 5
    assert [key for key, _ in RESULT.items()] == list(RESULT.keys())
    with pytest.raises(KeyError):
        RESULT["width"]


def test_detections_are_frozen_and_count_themselves():
    assert len(RESULT) == 2 and RESULT.counts == {"person": 1, "car": 1} and not RESULT.capped
    with pytest.raises(dataclasses.FrozenInstanceError):
        RESULT.capped = True
    with pytest.raises(ValueError):
        RESULT.boxes[0, 0] = 5.0  # the arrays too
    confident = RESULT[RESULT.scores > 0.5]
    assert isinstance(confident, Detections) and confident.names.tolist() == ["person"]
    assert confident.image_size == (200, 240) and len(RESULT[:0]) == 0
    assert repr(RESULT) == "Detections(2 in 240x200: person: 1, car: 1)"
    with pytest.raises(ValueError, match="as many"):
        Detections(np.zeros((2, 4)), np.zeros(1), np.zeros(2), ["a", "b"], (10, 10))


def test_records_and_json_by_hand():
    assert RESULT.to_records("a.png", frame=3)[1] == {
        "source": "a.png", "frame": 3, "x1": 100.0, "y1": 100.0, "x2": 130.0, "y2": 110.0,
        "score": pytest.approx(0.4), "label": 2, "class_name": "car",
    }  # fmt: skip
    body = json.loads(RESULT.to_json())
    assert body == {"boxes": [[10.0, 20.0, 50.0, 80.0], [100.0, 100.0, 130.0, 110.0]], "scores": [0.9, 0.4],
                    "labels": [0, 2], "names": ["person", "car"], "counts": {"person": 1, "car": 1}, "width": 240,
                    "height": 200, "capped": False}  # fmt: skip
    # The decimals read back as the detector's float32 values, exactly.
    assert np.float32(body["scores"][1]) == RESULT.scores[1]


def test_draw_and_save_write_what_they_say(tmp_path):
    image = np.zeros((200, 240, 3), np.uint8)
    drawn = RESULT.draw(image)
    assert not image.any()  # a copy is drawn on
    assert drawn[20, 10:50].any() and drawn[100, 100:130].any()  # each box's top edge
    assert not drawn[150:190, 150:230].any()  # nothing where no box is
    written = RESULT.save(tmp_path / "out.png", image)
    np.testing.assert_array_equal(cv2.imread(written), drawn)
    with open(RESULT.save(tmp_path / "out.csv"), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["class_name"] for row in rows] == ["person", "car"] and float(rows[0]["x2"]) == 50.0
    assert json.loads((tmp_path / "out.json").read_bytes() if RESULT.save(tmp_path / "out.json") else b"")["width"] == 240
    with pytest.raises(ValueError, match="came from an array"):
        RESULT.draw()
    with pytest.raises(ValueError, match="cannot tell"):
        RESULT.save(tmp_path / "out.txt")
    assert sorted(os.listdir(tmp_path)) == ["out.csv", "out.json", "out.png"]  # nothing half-written left
