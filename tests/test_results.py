"""Results in the ecosystem's forms: COCO's results list (read back by pycocotools) and supervision's Detections."""

import numpy as np
import pytest

from keras_retinanet.inference import to_coco_results, to_supervision

RESULT = {
    "boxes": np.array([[10, 20, 50, 80], [100, 100, 130, 110]], np.float32),
    "scores": np.array([0.9, 0.4], np.float32),
    "labels": np.array([0, 2], np.int32),
    "names": np.array(["person", "car"]),
    "counts": {"person": 1, "car": 1},
}


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
