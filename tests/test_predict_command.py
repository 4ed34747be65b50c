"""retinanet-predict and retinanet-evaluate on a model file with a spec: no flags needed, contradictions are
one-line errors, unreadable inputs are skipped (issue 15)."""

import csv
import json
import os
import subprocess
import sys

import cv2
import keras
import numpy as np
import pytest

from keras_retinanet import models
from keras_retinanet.bin import evaluate as evaluate_command
from keras_retinanet.bin import predict as predict_command
from keras_retinanet.evaluation import evaluate

from helpers.detector_models import CLASS_NAMES, MAX_SIDE, MIN_SIDE, OWN_THRESHOLD, hand_detections, make_spec
from helpers.detector_models import training_model, write_sample_dataset

PREDICT_THRESHOLD = 0.6  # above the model's own 0.5: the command only filters


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A spec-carrying inference model, a folder of three images of different sizes, and a CSV dataset of them."""
    folder = tmp_path_factory.mktemp("predict")
    inference = models.convert_model(training_model(make_spec()), score_threshold=OWN_THRESHOLD)
    model_path = str(folder / "model.keras")
    inference.save(model_path)
    images_dir = folder / "images"
    images_dir.mkdir()
    annotations, classes = write_sample_dataset(images_dir)
    return dict(model=model_path, images=str(images_dir), annotations=annotations, classes=classes, folder=folder)


def _error_lines(err):
    return [line for line in err.splitlines() if line.startswith("error:")]


@pytest.mark.slow
def test_predict_without_flags_equals_the_hand_assembled_pipeline(setup, tmp_path, capsys):
    output = tmp_path / "out"
    paths = [os.path.join(setup["images"], f"img{i}.png") for i in range(3)]
    results = predict_command.main(
        [setup["model"], *paths, "--score-threshold", str(PREDICT_THRESHOLD), "--output-dir", str(output)]
    )
    reference = keras.models.load_model(setup["model"])
    records = json.loads((output / "detections.json").read_text())
    assert len(records) == len(results)
    for path in paths:
        boxes, scores, labels = hand_detections(reference, cv2.imread(path), threshold=PREDICT_THRESHOLD)
        mine = [r for r in records if r["source"] == path]
        assert len(mine) == len(scores) > 0
        np.testing.assert_allclose([[r["x1"], r["y1"], r["x2"], r["y2"]] for r in mine], boxes, atol=1e-3)
        np.testing.assert_allclose([r["score"] for r in mine], scores, atol=1e-5)
        assert [r["class_name"] for r in mine] == [CLASS_NAMES[label] for label in labels]  # names from the spec
        assert (output / os.path.basename(path)).exists()
    assert "error" not in capsys.readouterr().err


@pytest.mark.slow
def test_predict_command_in_its_own_process_keeps_the_detections(setup, tmp_path):
    """As a command of its own, retinanet-predict lets oneDNN keep its reordered weights
    (TF_ONEDNN_ASSUME_FROZEN_WEIGHTS, test_cli): the detections are still the hand-assembled pipeline's."""
    output = tmp_path / "out"
    path = os.path.join(setup["images"], "img1.png")
    environment = {k: v for k, v in os.environ.items() if k != "TF_ONEDNN_ASSUME_FROZEN_WEIGHTS"}
    command = [sys.executable, "-m", "keras_retinanet.bin.predict", setup["model"], path,
               "--score-threshold", str(PREDICT_THRESHOLD), "--output-dir", str(output), "--no-draw"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    records = json.loads((output / "detections.json").read_text())
    reference = keras.models.load_model(setup["model"])
    boxes, scores, labels = hand_detections(reference, cv2.imread(path), threshold=PREDICT_THRESHOLD)
    assert len(records) == len(scores) > 0
    np.testing.assert_allclose([[r["x1"], r["y1"], r["x2"], r["y2"]] for r in records], boxes, atol=1e-3)
    np.testing.assert_allclose([r["score"] for r in records], scores, atol=1e-5)
    assert [r["class_name"] for r in records] == [CLASS_NAMES[label] for label in labels]


@pytest.mark.slow
def test_predict_converts_a_training_snapshot_by_itself(setup, tmp_path):
    snapshot = training_model(make_spec())
    path = str(tmp_path / "snapshot.h5")
    snapshot.save(path)
    image = os.path.join(setup["images"], "img1.png")
    results = predict_command.main([path, image, "--score-threshold", str(PREDICT_THRESHOLD), "--output-dir",
                                    str(tmp_path / "out"), "--no-draw"])  # fmt: skip
    # the hand-converted snapshot, with the default filter of a converted training model
    reference = models.convert_model(keras.models.load_model(path, compile=False))
    boxes, scores, labels = hand_detections(reference, cv2.imread(image), threshold=PREDICT_THRESHOLD)
    assert len(results) == len(scores) > 0
    np.testing.assert_allclose([r["score"] for r in results], scores, atol=1e-5)
    np.testing.assert_allclose([[r["x1"], r["y1"], r["x2"], r["y2"]] for r in results], boxes, atol=1e-3)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--backbone", "resnet101"], "--backbone resnet101 contradicts"),
        (["--classes", "three"], "has 3 classes but"),
    ],
)
def test_predict_contradicting_flags_are_one_line_errors(setup, tmp_path, capsys, extra, message):
    if extra[0] == "--classes":
        classes = tmp_path / "three.csv"
        classes.write_text("a,0\nb,1\nc,2\n")
        extra = ["--classes", str(classes)]
    with pytest.raises(SystemExit) as caught:
        predict_command.main([setup["model"], setup["images"], "--output-dir", str(tmp_path / "out"), *extra])
    assert caught.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = _error_lines(err)
    assert len(lines) == 1 and message in lines[0], err


def test_predict_skips_a_corrupt_image_and_writes_the_others(setup, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    for index in range(2):
        os.link(os.path.join(setup["images"], f"img{index}.png"), folder / f"img{index}.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    output = tmp_path / "out"
    with pytest.raises(SystemExit) as caught:
        predict_command.main([setup["model"], str(folder), "--score-threshold", str(PREDICT_THRESHOLD),
                              "--output-dir", str(output)])  # fmt: skip
    assert caught.value.code == 1
    err = capsys.readouterr().err
    skipped = [line for line in err.splitlines() if "broken.png" in line]
    assert len(skipped) == 1 and skipped[0].startswith("skipped") and "cannot decode" in skipped[0], err
    assert len(_error_lines(err)) == 1 and "1 of 3 inputs" in _error_lines(err)[0]
    records = json.loads((output / "detections.json").read_text())
    assert {os.path.basename(r["source"]) for r in records} == {"img0.png", "img1.png"}
    with open(output / "detections.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == len(records)
    assert (output / "img0.png").exists() and (output / "img1.png").exists() and not (output / "broken.png").exists()


def test_sources_from_python_give_the_hand_assembled_detections_and_counts(setup, tmp_path):
    """retinanet-predict's pipeline used from Python (inference.sources, inference.prediction_files)."""
    from keras_retinanet import load_detector
    from keras_retinanet.inference.prediction_files import write_prediction_files
    from keras_retinanet.inference.sources import InputError, SourcePredictor, collect_sources, predict_sources

    sources = collect_sources([setup["images"]])
    assert [(os.path.basename(path), kind) for path, kind in sources] == [(f"img{i}.png", "image") for i in range(3)]
    with pytest.raises(InputError, match="input 'nope.png' does not exist"):
        collect_sources([setup["images"], "nope.png"])
    detector = load_detector(setup["model"])
    predictor = SourcePredictor(detector, PREDICT_THRESHOLD)
    output = tmp_path / "out"
    output.mkdir()
    records, failed = predict_sources(predictor, sources, str(output))
    assert failed == [] and {path for path, _ in sources} == {r["source"] for r in records}
    reference = keras.models.load_model(setup["model"])
    expected_counts = []
    for path, _ in sources:
        boxes, scores, labels = hand_detections(reference, cv2.imread(path), threshold=PREDICT_THRESHOLD)
        mine = [r for r in records if r["source"] == path]
        np.testing.assert_allclose([[r["x1"], r["y1"], r["x2"], r["y2"]] for r in mine], boxes, atol=1e-3)
        assert [r["class_name"] for r in mine] == [CLASS_NAMES[label] for label in labels]
        expected_counts += [[path, name, str(int(np.sum(labels == index)))] for index, name in enumerate(CLASS_NAMES)]
        assert (output / os.path.basename(path)).exists()  # drawn
    write_prediction_files(records, str(output), predictor.counts, detector.spec.class_names)
    with open(output / "counts.csv", newline="") as handle:
        assert [[row["source"], row["class_name"], row["count"]] for row in csv.DictReader(handle)] == expected_counts
    assert json.loads((output / "detections.json").read_text()) == records


def test_predict_camera_index_without_camera_is_a_one_line_error(setup, tmp_path, capsys):
    capture = cv2.VideoCapture(0)
    opened = capture.isOpened()
    capture.release()
    if opened:
        pytest.skip("this machine has a camera 0")
    with pytest.raises(SystemExit) as caught:
        predict_command.main([setup["model"], "0", "--output-dir", str(tmp_path / "out")])
    assert caught.value.code == 1
    err = capsys.readouterr().err
    assert _error_lines(err) == ["error: cannot open camera 0: OpenCV finds no camera with that index"], err


class HandDataset:
    """The CSV dataset read by hand, with keras-retinanet's evaluation preprocessing written out."""

    def __init__(self, annotations, folder):
        self.rows = list(csv.reader(open(annotations, newline="")))
        self.names = sorted({row[0] for row in self.rows})
        self.folder = folder

    def size(self):
        return len(self.names)

    def num_classes(self):
        return len(CLASS_NAMES)

    def has_label(self, label):
        return 0 <= label < len(CLASS_NAMES)

    def label_to_name(self, label):
        return CLASS_NAMES[label]

    def load_image(self, index):
        return cv2.imread(os.path.join(self.folder, self.names[index]))

    def load_annotations(self, index):
        rows = [row for row in self.rows if row[0] == self.names[index]]
        return {
            "bboxes": np.array([[float(v) for v in row[1:5]] for row in rows]).reshape(-1, 4),
            "labels": np.array([CLASS_NAMES.index(row[5]) for row in rows]),
        }

    def preprocess_image(self, image):
        return image.astype(np.float32) - np.array([103.939, 116.779, 123.68], dtype=np.float32)

    def resize_image(self, image):
        rows, cols = image.shape[:2]
        scale = MIN_SIDE / min(rows, cols)
        if max(rows, cols) * scale > MAX_SIDE:
            scale = MAX_SIDE / max(rows, cols)
        return cv2.resize(image, None, fx=scale, fy=scale), scale


@pytest.mark.slow
def test_evaluate_without_flags_equals_the_hand_assembled_evaluation(setup, capsys):
    mean_ap = evaluate_command.main(["--score-threshold", "0.05", "csv", setup["annotations"], setup["classes"],
                                     setup["model"]])  # fmt: skip
    reference = keras.models.load_model(setup["model"])
    average_precisions, _ = evaluate(HandDataset(setup["annotations"], setup["images"]), reference)
    expected = np.mean([ap for ap, count in average_precisions.values() if count > 0])
    assert mean_ap == pytest.approx(expected, abs=1e-9)
    assert 0 < expected < 1  # a real ranking, not a trivial value


def test_evaluate_contradictions_are_one_line_errors(setup, tmp_path, capsys):
    three = tmp_path / "three.csv"
    three.write_text("cat,0\ndog,1\nbird,2\n")
    for argv, message in (
        (["--backbone", "resnet101", "csv", setup["annotations"], setup["classes"], setup["model"]], "contradicts"),
        (["csv", setup["annotations"], str(three), setup["model"]], "has 3 classes but"),
    ):
        with pytest.raises(SystemExit) as caught:
            evaluate_command.main(argv)
        assert caught.value.code == 1
        lines = _error_lines(capsys.readouterr().err)
        assert len(lines) == 1 and message in lines[0], lines
