"""The commands end to end, through their real entry points, on tiny generated data."""

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
from keras_retinanet.bin import convert_model as convert_command
from keras_retinanet.bin import debug as debug_command
from keras_retinanet.bin import evaluate as evaluate_command
from keras_retinanet.bin import predict as predict_command
from keras_retinanet.bin import train as train_command
from keras_retinanet.evaluation import evaluate_model

from helpers.datasets import SQUARE_AND_BAR_CLASSES as CLASSES
from helpers.datasets import write_square_and_bar_dataset

BACKBONE = "mobilenet128_0.25"
IMAGE_SIDE = "96"
NARROW = [
    "--pyramid-feature-size", "16",
    "--classification-feature-size", "8",
    "--regression-feature-size", "8",
]  # fmt: skip


@pytest.fixture(scope="module")
def two_class_dataset(tmp_path_factory):
    return write_square_and_bar_dataset(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, two_class_dataset):
    """Two epochs of two steps, then a resume from the epoch-2 snapshot to epoch 3."""
    annotations, classes = two_class_dataset
    snapshots = tmp_path_factory.mktemp("snapshots")
    common = [
        "--backbone", BACKBONE, "--batch-size", "2", "--steps", "2", "--lr", "1e-3",
        "--image-min-side", IMAGE_SIDE, "--image-max-side", IMAGE_SIDE,
        "--snapshot-path", str(snapshots), "--seed", "1", "--workers", "0", *NARROW,
    ]  # fmt: skip
    train_command.main([*common, "--epochs", "2", "csv", annotations, classes, "--val-annotations", annotations])
    resume = str(snapshots / f"{BACKBONE}_csv_02.h5")
    train_command.main([*common, "--epochs", "3", "--snapshot", resume, "csv", annotations, classes])
    return snapshots


@pytest.mark.slow
def test_train_writes_a_snapshot_per_epoch_and_resumes(trained):
    names = sorted(os.listdir(trained))
    for epoch in (1, 2, 3):
        assert f"{BACKBONE}_csv_{epoch:02d}.h5" in names
    assert f"{BACKBONE}_csv_best.h5" in names  # evaluation ran, so the best model was kept
    assert not [n for n in names if ".tmp" in n]  # atomic saves leave no temporary files


@pytest.mark.slow
def test_snapshots_carry_the_spec_of_the_run(trained, tmp_path):
    from keras_retinanet.checkpoint import read_spec

    for epoch in ("01", "02", "03"):  # written by the first run and by the resumed one
        spec = read_spec(str(trained / f"{BACKBONE}_csv_{epoch}.h5"))
        assert spec.class_names == CLASSES and spec.backbone == BACKBONE and spec.preprocessing == "tf"
        assert (spec.image_min_side, spec.image_max_side) == (96, 96) and spec.filter is None
        assert (spec.pyramid_feature_size, spec.classification_feature_size, spec.regression_feature_size) == (16, 8, 8)
    best = read_spec(str(trained / f"{BACKBONE}_csv_best.h5"))
    assert best.class_names == CLASSES
    # A snapshot resumed with another backbone is a one-line error.
    result = _run_command(
        "train", ["--backbone", "resnet50", "--snapshot", str(trained / f"{BACKBONE}_csv_03.h5"), "demo"], tmp_path
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "contradicts" in result.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_resume_continues_from_the_snapshot_epoch(trained):
    from keras_retinanet import models

    epoch2 = models.load_model(str(trained / f"{BACKBONE}_csv_02.h5"), backbone_name=BACKBONE)
    epoch3 = models.load_model(str(trained / f"{BACKBONE}_csv_03.h5"), backbone_name=BACKBONE)
    assert int(epoch3.optimizer.iterations.numpy()) == int(epoch2.optimizer.iterations.numpy()) + 2
    changed = [not np.array_equal(a, b) for a, b in zip(epoch2.get_weights(), epoch3.get_weights())]
    assert any(changed)


@pytest.mark.slow
def test_convert_then_load_gives_the_same_detections(trained, tmp_path):
    import keras

    from keras_retinanet import models

    snapshot = str(trained / f"{BACKBONE}_csv_03.h5")
    output = str(tmp_path / "inference.keras")
    convert_command.main([snapshot, output, "--backbone", BACKBONE, "--score-threshold", "0.0"])
    loaded = keras.models.load_model(output)
    expected = models.convert_model(models.load_model(snapshot, backbone_name=BACKBONE), score_threshold=0.0)
    image = np.random.default_rng(3).uniform(-100, 100, size=(1, 96, 96, 3)).astype(np.float32)
    for ours, reference in zip(loaded.predict(image, verbose=0), expected.predict(image, verbose=0)):
        np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-4)


class GroundTruthModel:
    """A model double whose detections are the dataset's own annotations (plus one false positive)."""

    def __init__(self, generator, false_positive=False):
        self.generator = generator
        self.false_positive = false_positive
        self.calls = 0

    def predict_on_batch(self, batch):
        annotations = self.generator.load_annotations(self.calls)
        self.calls += 1
        boxes = list(annotations["bboxes"])
        scores = [0.9] * len(boxes)
        labels = list(annotations["labels"])
        if self.false_positive:
            boxes.append([0, 0, 10, 10])
            scores.append(0.95)  # ranked first: precision at every recall of class 0 halves at first
            labels.append(0)
        padding = 10 - len(boxes)
        boxes = np.array(boxes + [[-1, -1, -1, -1]] * padding, dtype=np.float32)[None]
        scores = np.array(scores + [-1] * padding, dtype=np.float32)[None]
        labels = np.array(labels + [-1] * padding, dtype=np.int32)[None]
        return boxes, scores, labels


def _evaluation_args(dataset, extra=()):
    annotations, classes = dataset
    return evaluate_command.parse_args(
        ["--no-resize", *extra, "csv", annotations, classes, "unused.h5"]
    )


def _generator(args):
    from keras_retinanet.readers.from_config import create_generator

    return create_generator(args.config.data.dataset, "eval", no_resize=True, shuffle_groups=False)


def test_evaluate_gives_map_one_for_perfect_detections(two_class_dataset, capsys):
    args = _evaluation_args(two_class_dataset)
    generator = _generator(args)
    assert evaluate_model(generator, GroundTruthModel(generator), args.config) == pytest.approx(1.0)
    assert "instances of class square with average precision: 1.0000" in capsys.readouterr().out


def test_evaluate_counts_a_top_ranked_false_positive(two_class_dataset):
    # Each of the 4 images adds a square false positive (0.95) above its true square (0.9).
    # Ranked over all images: 4 false positives, then 4 true positives with precision
    # 1/5, 2/6, 3/7, 4/8 at recall 0.25, 0.5, 0.75, 1. The VOC envelope is the best precision
    # at this or higher recall: 0.5 at every recall step, so AP(square) = 0.5; AP(bar) = 1.
    args = _evaluation_args(two_class_dataset)
    generator = _generator(args)
    mean_ap = evaluate_model(generator, GroundTruthModel(generator, false_positive=True), args.config)
    assert mean_ap == pytest.approx((0.5 + 1.0) / 2)


def test_evaluate_save_path_writes_images_and_precision_recall_plots(two_class_dataset, tmp_path):
    args = _evaluation_args(two_class_dataset, ["--save-path", str(tmp_path)])
    generator = _generator(args)
    evaluate_model(generator, GroundTruthModel(generator), args.config)
    written = os.listdir(tmp_path)
    assert len([n for n in written if n.startswith("precision_recall_")]) == len(CLASSES)
    drawn = [n for n in written if n[0].isdigit() and n.endswith(".png")]
    assert len(drawn) == generator.size()
    assert cv2.imread(str(tmp_path / drawn[0])) is not None


@pytest.mark.slow
def test_evaluate_main_runs_on_a_trained_snapshot(trained, two_class_dataset, capsys, tmp_path):
    annotations, classes = two_class_dataset
    snapshot = str(trained / f"{BACKBONE}_csv_03.h5")
    evaluate_command.main(
        ["--convert-model", "--backbone", BACKBONE, "--image-min-side", IMAGE_SIDE, "--image-max-side", IMAGE_SIDE,
         "--coco-metrics", "--save-path", str(tmp_path), "csv", annotations, classes, snapshot]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert "mAP:" in out and "instances of class bar" in out
    assert (tmp_path / "dataset_bbox_results.json").exists()  # the COCO results go with the other outputs


@pytest.mark.slow
def test_train_mixed_precision_writes_a_bfloat16_snapshot(two_class_dataset, tmp_path):
    annotations, classes = two_class_dataset
    try:
        train_command.main(
            ["--backbone", BACKBONE, "--batch-size", "2", "--steps", "1", "--epochs", "1", "--mixed-precision",
             "--image-min-side", IMAGE_SIDE, "--image-max-side", IMAGE_SIDE, "--no-evaluation",
             "--snapshot-path", str(tmp_path), "--workers", "0", *NARROW, "csv", annotations, classes]
        )  # fmt: skip
    finally:
        keras.mixed_precision.set_global_policy("float32")
    model = models.load_model(str(tmp_path / f"{BACKBONE}_csv_01.h5"), backbone_name=BACKBONE)
    policies = {layer.name: layer.dtype_policy.name for layer in model.layers}
    assert policies["P3"] == "mixed_bfloat16" and policies["classification"] == "float32"
    assert all(weight.dtype == "float32" for weight in model.weights)


@pytest.mark.slow
def test_evaluate_in_mixed_bfloat16_agrees_with_float32(trained, two_class_dataset, capsys):
    annotations, classes = two_class_dataset
    snapshot = str(trained / f"{BACKBONE}_csv_03.h5")
    maps = {}
    for precision in ("float32", "mixed_bfloat16"):
        result = evaluate_command.main(
            ["--convert-model", "--backbone", BACKBONE, "--image-min-side", IMAGE_SIDE, "--image-max-side", IMAGE_SIDE,
             "--score-threshold", "0.01", "--precision", precision, "csv", annotations, classes, snapshot]
        )  # fmt: skip
        maps[precision] = float(result)
    assert abs(maps["float32"] - maps["mixed_bfloat16"]) <= 0.05


@pytest.mark.slow
def test_evaluate_converts_a_training_snapshot_without_convert_model(trained, two_class_dataset, capsys):
    """The snapshot retinanet-train announces is evaluated as it is, as retinanet-predict and load_detector take it;
    --convert-model (keras-retinanet's flag) gives the same mAP."""
    annotations, classes = two_class_dataset
    snapshot = str(trained / f"{BACKBONE}_csv_03.h5")
    common = ["--backbone", BACKBONE, "--image-min-side", IMAGE_SIDE, "--image-max-side", IMAGE_SIDE]
    converted = float(evaluate_command.main([*common, "csv", annotations, classes, snapshot]))
    assert "mAP:" in capsys.readouterr().out
    assert converted == float(evaluate_command.main(["--convert-model", *common, "csv", annotations, classes, snapshot]))


def test_debug_writes_images_and_counts_uncovered_annotations(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    annotations, classes = write_square_and_bar_dataset(data, count=2, tiny_box=True)
    output = tmp_path / "debug"
    total, unmatched = debug_command.main(
        ["--anchors", "--annotations", "--no-resize", "--no-gui", "--output-dir", str(output),
         "csv", annotations, classes]
    )  # fmt: skip
    assert (total, unmatched) == (5, 1)  # the 4x4 box matches no anchor (smallest is 32 px)
    assert sorted(os.listdir(output)) == ["000000.png", "000001.png"]
    first = cv2.imread(str(output / "000000.png"))
    assert tuple(first[5, 62]) == debug_command.UNMATCHED_COLOR  # the tiny box's top edge is drawn red
    assert "1 of 5 annotations have no anchor" in capsys.readouterr().out


def _confident_inference_model(snapshot, path):
    """The snapshot as an inference model whose final bias makes every score 0.99: it detects plenty."""
    from keras_retinanet import models

    model = models.load_model(snapshot, backbone_name=BACKBONE, compile=False)
    head = model.get_layer("classification_submodel").get_layer("pyramid_classification")
    kernel, bias = head.get_weights()
    head.set_weights([kernel, np.full_like(bias, np.log(99.0))])
    models.convert_model(model).save(path)
    return path


@pytest.mark.slow
def test_predict_writes_drawn_images_video_and_detection_files(trained, two_class_dataset, tmp_path):
    annotations, classes = two_class_dataset
    model = _confident_inference_model(str(trained / f"{BACKBONE}_csv_03.h5"), str(tmp_path / "inference.h5"))
    folder = os.path.dirname(annotations)
    video = str(tmp_path / "clip.mp4")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"mp4v"), 5, (96, 96))
    for index in range(3):
        writer.write(cv2.imread(os.path.join(folder, f"img{index}.png")))
    writer.release()
    output = tmp_path / "out"
    results = predict_command.main(
        [model, os.path.join(folder, "img0.png"), video, "--backbone", BACKBONE, "--classes", classes,
         "--score-threshold", "0.5", "--image-min-side", IMAGE_SIDE, "--image-max-side", IMAGE_SIDE,
         "--output-dir", str(output)]
    )  # fmt: skip
    assert {"img0.png", "clip.mp4", "detections.json", "detections.csv"} <= set(os.listdir(output))
    records = json.loads((output / "detections.json").read_text())
    assert len(records) == len(results) > 0
    assert all(r["score"] > 0.5 for r in records)
    assert {r["frame"] for r in records if r["source"] == video} == {0, 1, 2}
    assert {r["class_name"] for r in records} <= set(CLASSES)
    with open(output / "detections.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == len(records)
    capture = cv2.VideoCapture(str(output / "clip.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    drawn = cv2.imread(str(output / "img0.png"))
    assert drawn.shape == (96, 96, 3)
    assert not np.array_equal(drawn, cv2.imread(os.path.join(folder, "img0.png")))  # detections were drawn


def _run_command(module, argv, folder):
    """Run ``python -m keras_retinanet.bin.MODULE ARGV`` in ``folder``, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", f"keras_retinanet.bin.{module}", *argv],
        cwd=folder,
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        timeout=300,
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["retinanet-train", "csv", "missing.csv", "classes.csv"], "missing.csv"),
        (["retinanet-train", "--backbone", "resnet9000", "demo"], "unknown backbone 'resnet9000'"),
        (["retinanet-train", "--backbone", "vgg99", "demo"], "unknown backbone 'vgg99'"),
        (["retinanet-train", "--backbone", "mobilenet999_0.5", "demo"], "unknown backbone 'mobilenet999_0.5'"),
        (["retinanet-train", "--backbone", "densenet7", "demo"], "unknown backbone 'densenet7'"),
        (["retinanet-train", "--snapshot", "nope.h5", "demo"], "snapshot 'nope.h5' does not exist"),
        (["retinanet-evaluate", "--config", "nope.ini", "demo", "model.h5"], "config file 'nope.ini' does not exist"),
        (["retinanet-convert-model", "in.h5", "out.h5"], "model 'in.h5' does not exist"),
        (["retinanet-debug", "--no-gui", "demo"], "--no-gui needs --output-dir"),
        (["retinanet-predict", "model.h5", "nothing-here.png"], "input 'nothing-here.png' does not exist"),
    ],
)
def test_wrong_arguments_exit_with_one_line(argv, message, tmp_path):
    module = {
        "retinanet-train": "train",
        "retinanet-evaluate": "evaluate",
        "retinanet-convert-model": "convert_model",
        "retinanet-debug": "debug",
        "retinanet-predict": "predict",
    }[argv[0]]
    if argv[1:3] == ["csv", "missing.csv"]:
        (tmp_path / "classes.csv").write_text("a,0\n")
    result = _run_command(module, argv[1:], tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and message in error_lines[0], result.stderr


def test_bad_config_file_is_a_one_line_error(tmp_path):
    config = tmp_path / "bad.ini"
    config.write_text("[anchor_parameters]\nsizes = 32 64 abc\nstrides = 8 16 32\nratios = 1\nscales = 1\n")
    result = _run_command("convert_model", ["in.h5", "out.h5", "--config", str(config)], tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "model 'in.h5' does not exist" in result.stderr
    (tmp_path / "in.h5").write_text("")
    result = _run_command("convert_model", ["in.h5", "out.h5", "--config", str(config)], tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "bad.ini" in result.stderr and "abc" in result.stderr
