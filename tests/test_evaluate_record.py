"""retinanet-evaluate keeps what it prints (evaluation.json, per_class_ap.png), the precision-recall plot's label
for a class without detections, and AP's order of tied scores (issues 17 and 19)."""

import json
import os
import re

import cv2
import numpy as np
import pytest

from keras_retinanet import models
from keras_retinanet.bin import evaluate as evaluate_command
from keras_retinanet.evaluation import COCO_STAT_NAMES, PrecisionRecall, evaluate_class, save_per_class_ap_chart
from keras_retinanet.evaluation.average_precision import _compute_ap, ranking_order
from keras_retinanet.evaluation.detections import _select_detections
from keras_retinanet.atomic_files import claim_new_folder
from keras_retinanet.evaluation.record import record_evaluation, record_folder_name
from keras_retinanet.evaluation.report import chart_order, empty_curve_message

from helpers.evaluation_doubles import (
    DETECTIONS,
    InjectedModel,
    cocoeval_directly,
    expected_results,
    hand_dataset,
    hand_model,
    toy_dataset,
    write_ground_truth_json,
)
from helpers.detector_models import CLASS_NAMES, OWN_THRESHOLD, make_spec, training_model, write_sample_dataset

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# ---- stable AP order (issue 19) -------------------------------------------------------------------------------

FAR = [200.0, 200.0, 220.0, 220.0]  # overlaps no annotation: a false positive
BOX = [10.0, 10.0, 30.0, 30.0]


def _tied_case(reverse_images=False):
    """21 images of one class: image 0 holds a 0.9 false positive, images 1-10 a 0.5 false positive each,
    images 11-20 a 0.5 detection on their one annotation (10 annotations in all)."""
    detections, annotations = [], []
    for image in range(21):
        if image == 0:
            detections.append([np.array([FAR + [0.9]])])
        elif image <= 10:
            detections.append([np.array([FAR + [0.5]])])
        else:
            detections.append([np.array([BOX + [0.5]])])
        annotations.append([np.array([BOX]) if image > 10 else np.zeros((0, 4))])
    if reverse_images:
        detections, annotations = detections[::-1], annotations[::-1]
    return detections, annotations


def test_tied_scores_rank_in_image_order():
    # Documented tie-break: descending score, then image order. Ranked: FP(0.9), the 10 FPs of images 1-10,
    # then the 10 TPs of images 11-20. The k-th TP has precision k / (11 + k), which grows with k, so the
    # VOC envelope is 10/21 at every recall step: AP = 10/21.
    curve = evaluate_class(*_tied_case(), label=0)
    assert curve.num_annotations == 10.0
    assert curve.average_precision == pytest.approx(10 / 21)
    np.testing.assert_allclose(curve.precision[-1], 10 / 21)
    assert curve.recall[10] == 0.0 and curve.recall[11] == pytest.approx(0.1)


def test_another_tie_order_gives_another_ap():
    # The same detections collected in reverse image order: FP(0.9) still first (image 0, now last, but its
    # score is higher), then the 10 TPs (images 20..11 come first now), then the 10 FPs. The k-th TP has
    # precision k / (1 + k); the envelope is 10/11 at every recall step: AP = 10/11, not 10/21.
    curve = evaluate_class(*_tied_case(reverse_images=True), label=0)
    assert curve.average_precision == pytest.approx(10 / 11)
    # The arithmetic of both orders, written out, through the area function alone.
    tp_first = np.array([0.0] + [1.0] * 10 + [0.0] * 10)
    fp_first = np.array([0.0] * 11 + [1.0] * 10)
    for hits, expected in ((tp_first, 10 / 11), (fp_first, 10 / 21)):
        tp = np.cumsum(hits)
        assert _compute_ap(tp / 10, tp / np.arange(1, 22)) == pytest.approx(expected)


def test_tied_scores_within_an_image_keep_the_model_output_order():
    # One image, one annotation, two detections at 0.5: one on the annotation (TP), one elsewhere (FP).
    # In the model's order TP, FP: precision 1, 1/2 at recall 1, 1: AP = 1.
    # In the order FP, TP: precision 0, 1/2 at recall 0, 1: AP = 1/2.
    annotations = [[np.array([BOX])]]
    tp_first = evaluate_class([[np.array([BOX + [0.5], FAR + [0.5]])]], annotations, label=0)
    np.testing.assert_allclose(tp_first.precision, [1.0, 0.5])
    assert tp_first.average_precision == pytest.approx(1.0)
    fp_first = evaluate_class([[np.array([FAR + [0.5], BOX + [0.5]])]], annotations, label=0)
    np.testing.assert_allclose(fp_first.precision, [0.0, 0.5])
    assert fp_first.average_precision == pytest.approx(0.5)


def test_ranking_order_is_stable_on_long_tied_arrays():
    # 64 scores of two values: a non-stable sort (numpy's default argsort) may permute the ties.
    scores = np.random.default_rng(0).choice([0.5, 0.7], size=64)
    order = ranking_order(scores)
    expected = list(np.flatnonzero(scores == 0.7)) + list(np.flatnonzero(scores == 0.5))
    assert order.tolist() == expected


def test_select_detections_keeps_the_first_tied_outputs():
    # 40 outputs at 0.6 (indices 0-39) and one at 0.8 (index 40): the 0.8 first, then outputs 0..8 in order.
    scores = np.array([0.6] * 40 + [0.8, 0.01], dtype=np.float32)
    boxes = np.arange(len(scores) * 4, dtype=np.float32).reshape(-1, 4)
    labels = np.zeros(len(scores), dtype=np.int32)
    kept_boxes, kept_scores, _ = _select_detections(boxes, scores, labels, score_threshold=0.05, max_detections=10)
    np.testing.assert_array_equal(kept_boxes[:, 0] / 4, [40, 0, 1, 2, 3, 4, 5, 6, 7, 8])
    assert kept_scores[0] == pytest.approx(0.8)


# ---- the precision-recall plot's label (item 2) ---------------------------------------------------------------

def test_empty_curve_says_no_detections_when_there_are_annotations():
    empty = np.zeros((0,))
    assert empty_curve_message(PrecisionRecall(0.0, 3.0, empty, empty, empty)) == "no detections (3 annotations)"
    assert empty_curve_message(PrecisionRecall(0.0, 0.0, empty, empty, empty)) == "no annotations of this class"


# ---- the per-class AP chart -----------------------------------------------------------------------------------

def test_chart_orders_by_ap_then_label_and_is_a_png(tmp_path):
    rows = [
        {"label": 0, "name": "cat", "num_annotations": 4.0, "average_precision": 0.25},
        {"label": 1, "name": "a very long class name that goes on and on", "num_annotations": 2.0,
         "average_precision": 0.75},
        {"label": 2, "name": "eel", "num_annotations": 0.0, "average_precision": 0.0},
        {"label": 3, "name": "dog", "num_annotations": 1.0, "average_precision": 0.25},
    ]
    assert [row["label"] for row in chart_order(rows)] == [1, 0, 3, 2]
    small = save_per_class_ap_chart(rows[:2], 0.5, str(tmp_path / "two.png"))
    large = save_per_class_ap_chart(rows * 5, 0.5, str(tmp_path / "twenty.png"))
    for path in (small, large):
        assert open(path, "rb").read(8) == PNG_MAGIC
    two, twenty = cv2.imread(small), cv2.imread(large)
    assert two.shape[1] == twenty.shape[1] == 800 and twenty.shape[0] > two.shape[0]  # grows with the classes
    assert two.min() < 100  # bars and text drawn
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]


def test_run_folders_count_up(tmp_path):
    root = str(tmp_path / "snapshots")
    first = claim_new_folder(root, record_folder_name("snapshots/resnet50_csv_10.h5", "csv"))
    second = claim_new_folder(root, record_folder_name("other/resnet50_csv_10.keras", "csv"))
    assert first == os.path.join(root, "resnet50_csv_10_csv")
    assert second == os.path.join(root, "resnet50_csv_10_csv_2")
    assert claim_new_folder(root, record_folder_name("exported/saved_model/", "coco")) == os.path.join(root, "saved_model_coco")


# ---- the command end to end -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A spec-carrying tiny inference model and a CSV dataset of three images (two classes)."""
    folder = tmp_path_factory.mktemp("evaluate_record")
    model_path = str(folder / "tiny.keras")
    models.convert_model(training_model(make_spec()), score_threshold=OWN_THRESHOLD).save(model_path)
    annotations, classes = write_sample_dataset(folder)
    return dict(model=model_path, annotations=annotations, classes=classes, folder=folder)


PRINTED_CLASS = re.compile(r"^(\d+) instances of class (.+) with average precision: (\d\.\d{4})$")


def _printed_numbers(out):
    """The numbers of the printed table: ({name: (instances text, AP text)}, {line start: value text})."""
    classes, totals = {}, {}
    for line in out.splitlines():
        match = PRINTED_CLASS.match(line)
        if match:
            classes[match.group(2)] = (match.group(1), match.group(3))
        for start in ("mAP using the weighted average of precisions among classes: ", "mAP: "):
            if line.startswith(start):
                totals[start] = line[len(start):]
        match = re.match(r"^Inference time for (\d+) images: (\d+\.\d{4})$", line)
        if match:
            totals["images"], totals["inference"] = match.groups()
    return classes, totals


@pytest.mark.slow
def test_evaluate_writes_the_printed_numbers_as_json_and_a_chart(setup, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default folder is relative to the working directory
    argv = ["--score-threshold", "0.05", "csv", setup["annotations"], setup["classes"], setup["model"]]
    mean_ap = evaluate_command.main(argv)
    out = capsys.readouterr().out
    folder = os.path.join("snapshots", "evaluate", "tiny_csv")
    path = os.path.join(folder, "evaluation.json")
    assert out.splitlines()[-1] == f"Evaluation saved to {path}"
    record = json.loads(open(path).read())

    classes, totals = _printed_numbers(out)
    part = record["pascal_voc"]
    assert sorted(classes) == sorted(CLASS_NAMES) and [row["name"] for row in part["classes"]] == list(CLASS_NAMES)
    for row in part["classes"]:
        instances, average_precision = classes[row["name"]]
        assert "{:.0f}".format(row["num_annotations"]) == instances == "3"
        assert "{:.4f}".format(row["average_precision"]) == average_precision
    assert "{:.4f}".format(part["weighted_mAP"]) == totals["mAP using the weighted average of precisions among classes: "]
    assert "{:.4f}".format(part["mAP"]) == totals["mAP: "]
    assert "{:.4f}".format(part["inference_time"]) == totals["inference"] and totals["images"] == "3"
    assert record["mAP"] == part["mAP"] == pytest.approx(mean_ap) and record["metric"] == "mAP"
    # 6 annotations over 2 classes of 3: the weighted mean equals the plain one.
    assert part["weighted_mAP"] == pytest.approx(part["mAP"])
    assert record["coco"] is None

    assert record["model"]["path"] == setup["model"] and record["model"]["precision"] == "float32"
    assert record["model"]["spec"]["class_names"] == list(CLASS_NAMES)
    assert record["model"]["backbone"] == record["model"]["spec"]["backbone"]
    assert record["dataset"]["type"] == "csv" and record["dataset"]["num_images"] == 3
    assert record["dataset"]["annotations"] == setup["annotations"]
    assert record["settings"]["evaluation"]["score_threshold"] == 0.05
    assert record["seconds"] > 0 and record["files"] == ["evaluation.json", "per_class_ap.png"]
    chart = os.path.join(folder, "per_class_ap.png")
    assert open(chart, "rb").read(8) == PNG_MAGIC and cv2.imread(chart) is not None
    assert sorted(os.listdir(folder)) == ["evaluation.json", "per_class_ap.png"]  # nothing half-written left

    # A second run gets its own folder; the first one's record stays as it was.
    evaluate_command.main(argv)
    assert capsys.readouterr().out.splitlines()[-1] == f"Evaluation saved to {folder}_2/evaluation.json"
    assert json.loads(open(path).read()) == record
    assert os.path.isfile(os.path.join(f"{folder}_2", "per_class_ap.png"))


def _config(dataset_type, **evaluation):
    from keras_retinanet.config import DatasetConfig, RetinaNetConfig

    settings = {f"evaluation.{key}": value for key, value in evaluation.items()}
    return RetinaNetConfig.build({"data.dataset": DatasetConfig(type=dataset_type), **settings})


def test_save_path_gets_the_json_beside_the_plots_with_hand_worked_aps(tmp_path, monkeypatch):
    # test_eval's hand-worked case: circle AP 5/9 over 3 annotations, square AP 0 without annotations.
    monkeypatch.chdir(tmp_path)
    save = tmp_path / "out"
    record = record_evaluation(hand_dataset(), hand_model(), _config("csv", save_path=str(save)), "x/model.keras")
    assert record.folder == str(save) and record.path == str(save / "evaluation.json")
    written = json.loads(open(record.path).read())
    assert written["pascal_voc"]["classes"] == [
        {"label": 0, "name": "circle", "num_annotations": 3.0, "average_precision": pytest.approx(5 / 9)},
        {"label": 1, "name": "square", "num_annotations": 0.0, "average_precision": 0.0},
    ]
    assert written["mAP"] == written["pascal_voc"]["mAP"] == pytest.approx(5 / 9) == record.mAP
    assert written["pascal_voc"]["weighted_mAP"] == pytest.approx(5 / 9)
    assert written["model"]["spec"] is None and written["model"]["path"] == "x/model.keras"
    names = set(os.listdir(save))
    assert {"evaluation.json", "per_class_ap.png", "0.png", "precision_recall_0_circle.png"} <= names
    assert not os.path.exists(tmp_path / "snapshots")  # --save-path is the folder: no run folder besides


def test_coco_record_holds_the_twelve_stats_of_cocoeval_run_directly(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    record = record_evaluation(toy_dataset(), InjectedModel(DETECTIONS), _config("coco"), "models/toy.h5")
    assert record.folder == os.path.join("snapshots", "evaluate", "toy_coco")
    written = json.loads(open(record.path).read())
    # The reference: pycocotools on ground truth and detections written out by hand (see test_coco_eval).
    ground_truth = write_ground_truth_json(tmp_path / "gt.json", [0, 1], [0, 1])
    (tmp_path / "dt.json").write_text(json.dumps(expected_results([0, 1], [0, 1])))
    expected = cocoeval_directly(ground_truth, tmp_path / "dt.json", [0, 1])
    assert list(written["coco"]["stats"]) == list(COCO_STAT_NAMES)
    np.testing.assert_allclose(list(written["coco"]["stats"].values()), expected, atol=1e-12)
    assert written["mAP"] == written["coco"]["stats"][COCO_STAT_NAMES[0]] and written["pascal_voc"] is None
    assert written["metric"] == "COCO AP@[.5:.95]"
    rows = written["coco"]["classes"]
    assert [(row["name"], row["num_annotations"]) for row in rows] == [("circle", 2.0), ("square", 1.0)]
    # The first stat is the mean of the per-class APs.
    assert np.mean([row["average_precision"] for row in rows]) == pytest.approx(expected[0])
    assert set(written["files"]) == {"evaluation.json", "per_class_ap.png", "dataset_bbox_results.json",
                                     "dataset_processed_image_ids.json"}  # fmt: skip
    assert set(os.listdir(record.folder)) == set(written["files"])
    assert cv2.imread(os.path.join(record.folder, "per_class_ap.png")) is not None


def test_a_failed_evaluation_leaves_no_empty_run_folder(tmp_path, monkeypatch):
    class TrainingLikeModel:
        def predict_on_batch(self, batch):
            return [np.zeros((1, 10, 4), np.float32), np.zeros((1, 10, 3), np.float32)]

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="convert"):
        record_evaluation(hand_dataset(), TrainingLikeModel(), _config("csv"), "model.h5")
    assert os.listdir(tmp_path / "snapshots" / "evaluate") == []
