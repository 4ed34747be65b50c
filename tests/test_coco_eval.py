"""COCO evaluation (keras_retinanet.evaluation.coco) equals pycocotools' COCOeval run directly on the same JSON."""

import json

import numpy as np
import pytest
from pycocotools.coco import COCO

from keras_retinanet.evaluation import COCO_STAT_NAMES, coco_ground_truth_dataset, evaluate_coco
from helpers.evaluation_doubles import (
    DETECTIONS,
    GROUND_TRUTH,
    SIZES,
    InjectedModel,
    ToyDataset,
    cocoeval_directly,
    expected_results,
    toy_dataset,
    write_ground_truth_json,
)


class CocoToyDataset(ToyDataset):
    """A COCO dataset: its own ground truth with COCO image ids and category ids."""

    def __init__(self, annotation_file, image_ids, coco_labels, set_name):
        base = toy_dataset()
        super().__init__(base.images, base.annotations, base.class_names)
        self.coco = COCO(annotation_file)
        self.image_ids = image_ids
        self.coco_labels = coco_labels
        self.set_name = set_name

    def label_to_coco_label(self, label):
        return self.coco_labels[label]


def assert_same_results(written, expected):
    assert len(written) == len(expected)
    for got, want in zip(written, expected):
        assert got["image_id"] == want["image_id"]
        assert got["category_id"] == want["category_id"]
        assert got["score"] == pytest.approx(want["score"], rel=1e-6)
        np.testing.assert_allclose(got["bbox"], want["bbox"], rtol=1e-6)


def test_any_dataset_gets_the_metrics_of_cocoeval_on_hand_written_json(tmp_path):
    stats = evaluate_coco(toy_dataset(), InjectedModel(DETECTIONS), output_dir=str(tmp_path / "out"), verbose=0)

    # Ground truth as the module documents it: image ids = indices, category ids = labels.
    ground_truth = write_ground_truth_json(tmp_path / "gt.json", [0, 1], {0: 0, 1: 1})
    results = expected_results([0, 1], {0: 0, 1: 1})
    results_file = tmp_path / "dt.json"
    results_file.write_text(json.dumps(results))
    expected = cocoeval_directly(ground_truth, results_file, [0, 1])

    assert stats.shape == (12,) and len(COCO_STAT_NAMES) == 12
    np.testing.assert_allclose(stats, expected, rtol=1e-9, atol=1e-12)
    assert 0.0 < stats[0] < 1.0  # a mix of good, poor and false detections

    written = json.loads((tmp_path / "out" / "dataset_bbox_results.json").read_text())
    assert_same_results(written, results)
    assert json.loads((tmp_path / "out" / "dataset_processed_image_ids.json").read_text()) == [0, 1]


def test_coco_dataset_uses_its_own_image_and_category_ids(tmp_path, monkeypatch):
    image_ids, category_ids = [101, 205], {0: 3, 1: 7}
    ground_truth = write_ground_truth_json(tmp_path / "instances_val2017.json", image_ids, category_ids)
    dataset = CocoToyDataset(str(ground_truth), image_ids, category_ids, "val2017")

    # keras-retinanet wrote its JSON files in the working directory: the default here too.
    monkeypatch.chdir(tmp_path)
    stats = evaluate_coco(dataset, InjectedModel(DETECTIONS), threshold=0.05, verbose=0)

    written = json.loads((tmp_path / "val2017_bbox_results.json").read_text())
    assert_same_results(written, expected_results(image_ids, category_ids))
    assert json.loads((tmp_path / "val2017_processed_image_ids.json").read_text()) == image_ids

    expected = cocoeval_directly(ground_truth, tmp_path / "val2017_bbox_results.json", image_ids)
    np.testing.assert_allclose(stats, expected, rtol=1e-9, atol=1e-12)


def test_threshold_drops_low_scores(tmp_path):
    evaluate_coco(toy_dataset(), InjectedModel(DETECTIONS), threshold=0.5, output_dir=str(tmp_path), verbose=0)
    written = json.loads((tmp_path / "dataset_bbox_results.json").read_text())
    assert sorted(r["score"] for r in written) == pytest.approx([0.6, 0.7, 0.8, 0.9])


def test_perfect_detections_score_one(tmp_path):
    perfect = {size: [(*row[:4], 1.0, row[4]) for row in rows] for size, rows in zip(SIZES, GROUND_TRUTH)}
    stats = evaluate_coco(toy_dataset(), InjectedModel(perfect), output_dir=None, verbose=0)
    # Every box is under 32x32 px: 'small'. Medium and large have no ground truth: -1 by COCO's convention.
    assert stats[0] == pytest.approx(1.0)  # AP
    assert stats[1] == pytest.approx(1.0)  # AP50
    assert stats[3] == pytest.approx(1.0)  # AP small
    assert stats[4] == -1 and stats[5] == -1
    assert stats[8] == pytest.approx(1.0)  # AR@100


def test_no_detections_give_zero_not_none(tmp_path):
    nothing = {size: [] for size in SIZES}
    stats = evaluate_coco(toy_dataset(), InjectedModel(nothing), output_dir=str(tmp_path), verbose=0)
    assert stats[0] == 0.0 and stats[8] == 0.0
    assert json.loads((tmp_path / "dataset_bbox_results.json").read_text()) == []


def test_ground_truth_from_any_dataset():
    dataset = coco_ground_truth_dataset(toy_dataset())
    assert [image["id"] for image in dataset["images"]] == [0, 1]
    assert dataset["categories"] == [{"id": 0, "name": "circle"}, {"id": 1, "name": "square"}]
    assert [a["id"] for a in dataset["annotations"]] == [1, 2, 3]  # COCOeval reads id 0 as 'unmatched'
    assert dataset["annotations"][1] == {
        "id": 2, "image_id": 0, "category_id": 1, "bbox": [35.0, 30.0, 25.0, 30.0], "area": 750.0, "iscrowd": 0,
    }
