"""Presets (issue 16): a published keras-retinanet model by name, with the spec its file lacks.

A test preset, 'tiny_coco', points at a small keras-retinanet (Keras 2) inference file written here in the layout
tests/test_legacy.py writes (a MobileNet 0.25 RetinaNet with narrow heads and three classes), registered for the
test only and served by a local HTTP server through $KERAS_RETINANET_MIRROR. Offline runs point the mirror at a
refused local port. Nothing here reaches the internet.
"""

import hashlib
import json
import math
import os
import time

import cv2
import numpy as np
import pytest

from keras_retinanet import hub, load_detector, models
from keras_retinanet.bin import convert_model as convert_command
from keras_retinanet.bin import evaluate as evaluate_command
from keras_retinanet.bin import predict as predict_command
from keras_retinanet.bin import train as train_command
from keras_retinanet.checkpoint import read_spec
from keras_retinanet.checkpoint.weights import read_layer_weights
from keras_retinanet.config.spec import DetectorSpec
from keras_retinanet.engine.initial_weights import transfer_layer_weights
from keras_retinanet.engine.trainer import build_training_model
from keras_retinanet.hub import presets, registry

from helpers.weight_server import WeightServer, refused_port
from helpers.legacy_files import application_snapshot_layout, inference_additions, write_keras2_h5
from helpers.datasets import SMALL

BACKBONE = "mobilenet128_0.25"
NAMES = ("cat", "dog", "bird")
FILE_NAME = "tiny_legacy_coco.h5"
WIDTHS = {"pyramid": 16, "classification": 8, "regression": 8}
PRIOR_BIAS = -math.log((1 - 0.01) / 0.01)  # keras-retinanet's PriorProbability(0.01)
FAST = 20  # seconds: an offline run fails well within this


def tiny_spec():
    return DetectorSpec(
        backbone=BACKBONE, preprocessing="tf", class_names=NAMES, image_min_side=128, image_max_side=160,
        pyramid_feature_size=16, classification_feature_size=8, regression_feature_size=8,
    )  # fmt: skip


@pytest.fixture(scope="module")
def legacy_file(tmp_path_factory):
    """A keras-retinanet inference .h5 of three classes: (bytes, {layer or 'submodel/sublayer': arrays written})."""
    names, values, configs, expected = application_snapshot_layout(BACKBONE, dict(WIDTHS, num_classes=3), seed=3)
    for weight_name, array in values["classification_submodel"]:
        if weight_name.startswith("pyramid_classification/bias"):
            array[...] = -1.5  # scores around 0.2 and spread: detections above the 0.05 filter (in place: expected too)
    filter_config = {"nms": True, "class_specific_filter": True, "nms_threshold": 0.5, "score_threshold": 0.05,
                     "max_detections": 20}  # fmt: skip
    extra_names, extra_configs = inference_additions(
        [32, 64, 128, 256, 512], [8, 16, 32, 64, 128], [0.5, 1.0, 2.0], [1.0, 2 ** (1 / 3), 2 ** (2 / 3)],
        filter_config, [0.2] * 4,
    )  # fmt: skip
    path = tmp_path_factory.mktemp("preset") / FILE_NAME
    write_keras2_h5(path, names + extra_names, values, extra_configs=dict(configs, **extra_configs))
    assert read_spec(str(path)) is None  # keras-retinanet's files carry no spec
    return path.read_bytes(), expected


@pytest.fixture
def tiny_preset(legacy_file, tmp_path, monkeypatch):
    """'tiny_coco' registered (weights entry with the file's SHA-256, and preset), served through the mirror."""
    data, _ = legacy_file
    origin = f"https://example.invalid/releases/{FILE_NAME}"
    entry = registry.WeightsEntry("tiny_coco", origin, FILE_NAME, hashlib.sha256(data).hexdigest(), "detector",
                                  BACKBONE, "a tiny test detector")  # fmt: skip
    monkeypatch.setitem(registry.REGISTRY, "tiny_coco", entry)
    monkeypatch.setitem(presets.MODEL_PRESETS, "tiny_coco", presets.Preset("tiny_coco", "tiny_coco", tiny_spec(), "test"))
    monkeypatch.setenv(hub.ENV_HOME, str(tmp_path / "home"))
    monkeypatch.delenv(hub.ENV_MIRROR, raising=False)
    with WeightServer() as server:
        server.files[f"/{FILE_NAME}"] = data
        monkeypatch.setenv(hub.ENV_MIRROR, server.url)
        yield server


@pytest.fixture
def local_file(legacy_file, tmp_path):
    path = tmp_path / "local" / FILE_NAME
    path.parent.mkdir()
    path.write_bytes(legacy_file[0])
    return str(path)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(5)
    paths = []
    for index, (height, width) in enumerate([(96, 128), (160, 120)]):
        image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
        path = folder / f"photo{index}.png"
        cv2.imwrite(str(path), image)
        paths.append(str(path))
    return paths


def error_lines(err):
    return [line for line in err.splitlines() if line.startswith("error:")]


def test_resnet50_coco_preset_is_keras_retinanets_coco_model():
    """Its spec, checked against COCO's published categories and keras-retinanet's defaults (no download)."""
    preset = hub.find_preset("resnet50_coco")
    spec = preset.spec
    assert (spec.backbone, spec.preprocessing) == ("resnet50", "caffe")
    assert models.backbone("resnet50").preprocessing_mode == "caffe"
    assert (spec.image_min_side, spec.image_max_side, spec.resize) == (800, 1333, True)
    assert spec.num_classes == 80 and len(set(spec.class_names)) == 80
    # COCO category id -> name (instances_val2017.json); labels are the ids in order, ten ids unused
    by_id = {1: "person", 2: "bicycle", 11: "fire hydrant", 13: "stop sign", 44: "bottle", 62: "chair",
             67: "dining table", 70: "toilet", 72: "tv", 90: "toothbrush"}  # fmt: skip
    unused = {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}
    ids = [i for i in range(1, 91) if i not in unused]
    for category_id, name in by_id.items():
        assert spec.class_names[ids.index(category_id)] == name
    assert spec.class_names[:4] == ("person", "bicycle", "car", "motorcycle")
    assert spec.class_names[-3:] == ("teddy bear", "hair drier", "toothbrush")
    # keras-retinanet's default anchors on P3-P7 and 256-wide heads
    assert spec.anchors["sizes"] == [32, 64, 128, 256, 512] and spec.anchors["strides"] == [8, 16, 32, 64, 128]
    np.testing.assert_allclose(spec.anchors["ratios"], [0.5, 1, 2])
    np.testing.assert_allclose(spec.anchors["scales"], [1, 2 ** (1 / 3), 2 ** (2 / 3)], rtol=1e-6)
    assert spec.pyramid_levels == (3, 4, 5, 6, 7) and spec.pyramid_feature_size == 256
    assert spec.filter is None  # the file's own filter settings are used
    entry = hub.lookup(preset.weights)
    assert entry.url == "https://github.com/fizyr/keras-retinanet/releases/download/0.5.1/resnet50_coco_best_v2.1.0.h5"
    assert hub.preset_names() == ["resnet50_coco"]


@pytest.mark.parametrize("command", [predict_command, evaluate_command, convert_command, train_command])
def test_help_lists_the_presets(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        command.parse_args(["--help"])
    assert exit_info.value.code == 0
    assert "resnet50_coco" in " ".join(capsys.readouterr().out.split())


def test_evaluate_takes_the_dataset_then_the_preset():
    args = evaluate_command.parse_args(["coco", "/data/coco", "resnet50_coco"])
    assert args.model == "resnet50_coco" and args.config.data.dataset.path == "/data/coco"


@pytest.mark.slow
def test_load_detector_by_preset_name_equals_the_described_local_file(tiny_preset, local_file, images, tmp_path):
    detector = load_detector("tiny_coco")
    assert tiny_preset.requests == {f"/{FILE_NAME}": 1}
    assert detector.spec.class_names == NAMES and detector.from_file
    assert (detector.spec.backbone, detector.spec.image_min_side, detector.spec.image_max_side) == (BACKBONE, 128, 160)
    assert detector.spec.filter["max_detections"] == 20  # the file's own filter
    by_name = detector.predict(images)

    described = load_detector(local_file, backbone=BACKBONE, class_names=list(NAMES), image_min_side=128,
                              image_max_side=160)  # fmt: skip
    assert not described.from_file
    by_file = described.predict(images)
    for got, want in zip(by_name, by_file):
        assert len(got["labels"]) > 0
        np.testing.assert_array_equal(got["boxes"], want["boxes"])
        np.testing.assert_array_equal(got["scores"], want["scores"])
        np.testing.assert_array_equal(got["labels"], want["labels"])
        assert list(got["names"]) == [NAMES[label] for label in want["labels"]]

    again = load_detector("tiny_coco")  # from the cache: no second request
    assert again.spec.class_names == NAMES and tiny_preset.requests == {f"/{FILE_NAME}": 1}
    cache = tmp_path / "home" / "weights"
    assert sorted(os.listdir(cache)) == [FILE_NAME]  # a published hash: nothing pinned, no .part


def test_open_model_takes_what_locate_found_and_fetches_nothing_again(tiny_preset, tmp_path, monkeypatch):
    """hub.locate is the one place a name becomes a file: open_model given its result reads only that file."""
    from keras_retinanet.config import RetinaNetConfig
    from keras_retinanet.inference import open_model

    located = hub.locate("tiny_coco", progress=False)
    assert (located.source, located.preset) == ("tiny_coco", tiny_spec()) and os.path.isfile(located.path)
    assert tiny_preset.requests == {f"/{FILE_NAME}": 1}
    # Neither the cache nor the mirror can give it again: only the located file can be opened.
    monkeypatch.setenv(hub.ENV_HOME, str(tmp_path / "elsewhere"))
    monkeypatch.setenv(hub.ENV_MIRROR, f"http://127.0.0.1:{refused_port()}")
    opened = open_model(located, RetinaNetConfig.build({}))
    assert opened.located is located and opened.export_format is None and not opened.converted
    assert opened.from_file and opened.spec.class_names == NAMES and opened.spec.filter["max_detections"] == 20
    assert models.spec_of(opened.model).class_names == NAMES  # the preset's spec travels with the model
    assert tiny_preset.requests == {f"/{FILE_NAME}": 1}


@pytest.mark.slow
def test_predict_evaluate_and_convert_commands_take_a_preset(tiny_preset, images, tmp_path, capsys):
    out = tmp_path / "out"
    predict_command.main(["tiny_coco", *images, "--output-dir", str(out), "--score-threshold", "0.1", "--no-draw"])
    records = json.loads((out / "detections.json").read_text())
    expected = [load_detector("tiny_coco").predict(path, score_threshold=0.1) for path in images]
    assert len(records) == sum(len(result["labels"]) for result in expected) > 0
    assert {record["class_name"] for record in records} <= set(NAMES)
    assert [r["class_name"] for r in records if r["source"] == images[0]] == list(expected[0]["names"])

    converted = tmp_path / "tiny.keras"
    convert_command.main(["tiny_coco", str(converted)])
    spec = read_spec(str(converted))
    assert spec.class_names == NAMES and spec.backbone == BACKBONE and spec.preprocessing == "tf"
    assert spec.filter["max_detections"] == 20 and (spec.image_min_side, spec.image_max_side) == (128, 160)
    result = load_detector(str(converted)).predict(images[1])
    np.testing.assert_array_equal(result["scores"], expected[1]["scores"][: len(result["scores"])])
    assert list(result["names"][: len(expected[1]["names"])]) == list(expected[1]["names"])

    classes = tmp_path / "classes.csv"
    classes.write_text("".join(f"{name},{i}\n" for i, name in enumerate(NAMES)))
    annotations = tmp_path / "annotations.csv"
    annotations.write_text(f"{images[0]},10,10,60,60,cat\n{images[1]},20,30,100,120,bird\n")
    capsys.readouterr()
    evaluate_command.main(["csv", str(annotations), str(classes), "tiny_coco"])
    assert "mAP" in capsys.readouterr().out
    assert tiny_preset.requests == {f"/{FILE_NAME}": 1}


def test_train_weights_preset_with_another_class_count_reinitialises_the_head(tiny_preset, legacy_file, dataset,
                                                                               capsys):
    _, stored = legacy_file
    argv = ["--backbone", BACKBONE, *SMALL, "--weights", "tiny_coco", "csv", *dataset]
    config = train_command.parse_args(argv).config
    model = build_training_model(config, models.backbone(BACKBONE), ["square"])
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("Re-initialised")]
    assert len(lines) == 1 and "classification_submodel/pyramid_classification" in lines[0]
    assert "detects 3 classes, this run trains 1" in lines[0] and "prior-probability bias" in lines[0]

    head = model.get_layer("classification_submodel")
    kernel, bias = head.get_layer("pyramid_classification").get_weights()
    assert kernel.shape == (3, 3, 8, 9)  # 9 anchors x 1 class
    assert stored["classification_submodel/pyramid_classification"][0].shape == (3, 3, 8, 27)  # 9 x 3 in the file
    np.testing.assert_allclose(bias, PRIOR_BIAS, rtol=1e-6)
    for key in ("classification_submodel/pyramid_classification_0", "classification_submodel/pyramid_classification_3",
                "regression_submodel/pyramid_regression", "conv1", "conv_pw_13_bn", "P3", "C5_reduced"):
        submodel, _, sublayer = key.partition("/")
        layer = model.get_layer(submodel).get_layer(sublayer) if sublayer else model.get_layer(key)
        for want, got in zip(stored[key], layer.get_weights()):
            np.testing.assert_array_equal(want, got, err_msg=key)


def test_same_class_count_loads_every_layer(legacy_file, local_file):
    _, stored = legacy_file
    model = models.backbone(BACKBONE).retinanet(3, pyramid_feature_size=16, classification_feature_size=8,
                                                regression_feature_size=8)  # fmt: skip
    loaded, notes = transfer_layer_weights(model, read_layer_weights(local_file), local_file)
    assert notes == [] and loaded == len([layer for layer in model.layers if layer.weights])
    final = model.get_layer("classification_submodel").get_layer("pyramid_classification").get_weights()
    for want, got in zip(stored["classification_submodel/pyramid_classification"], final):
        np.testing.assert_array_equal(want, got)


def test_offline_preset_runs_fail_in_one_line_within_seconds(tiny_preset, images, tmp_path, monkeypatch, capsys):
    dead = f"http://127.0.0.1:{refused_port()}"
    monkeypatch.setenv(hub.ENV_MIRROR, dead)
    cache = tmp_path / "home" / "weights"
    url = f"{dead}/{FILE_NAME}"

    start = time.monotonic()
    with pytest.raises(hub.DownloadError) as error:
        load_detector("tiny_coco")
    assert time.monotonic() - start < FAST
    assert url in str(error.value) and "\n" not in str(error.value)

    runs = [
        lambda: predict_command.main(["tiny_coco", images[0], "--output-dir", str(tmp_path / "p")]),
        lambda: evaluate_command.main(["csv", "a.csv", "c.csv", "tiny_coco"]),
        lambda: convert_command.main(["tiny_coco", str(tmp_path / "x.keras")]),
        lambda: predict_command.main(["resnet50_coco", images[0], "--output-dir", str(tmp_path / "p")]),
    ]
    for index, run in enumerate(runs):
        start = time.monotonic()
        with pytest.raises(SystemExit) as exit_info:
            run()
        assert exit_info.value.code == 1 and time.monotonic() - start < FAST
        errors = error_lines(capsys.readouterr().err)
        assert len(errors) == 1, errors
        if index < 3:
            assert f"from {url} (mirror of https://example.invalid/releases/{FILE_NAME})" in errors[0]
            assert f"put {FILE_NAME} at {cache / FILE_NAME}" in errors[0]
        else:
            coco = "resnet50_coco_best_v2.1.0.h5"
            assert f"from {dead}/{coco} (mirror of https://github.com/fizyr/keras-retinanet/releases/" in errors[0]
            assert f"put {coco} at {cache / coco}" in errors[0]
        assert "or pass the local path of the model file instead" in errors[0]
    assert os.listdir(cache) == []


def test_offline_train_weights_preset_fails_in_one_line(tiny_preset, dataset, tmp_path, monkeypatch, capsys):
    dead = f"http://127.0.0.1:{refused_port()}"
    monkeypatch.setenv(hub.ENV_MIRROR, dead)
    with pytest.raises(SystemExit) as exit_info:
        train_command.main(["--backbone", BACKBONE, *SMALL, "--weights", "tiny_coco", "--epochs", "1", "--steps", "1",
                            "--snapshot-path", str(tmp_path / "s"), "csv", *dataset])  # fmt: skip
    assert exit_info.value.code == 1
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and f"from {dead}/{FILE_NAME}" in errors[0] and "--weights FILE" in errors[0]
    assert os.listdir(tmp_path / "home" / "weights") == []


def test_unknown_model_names_list_the_presets(images, tmp_path, capsys):
    with pytest.raises(SystemExit):
        predict_command.main(["resnet50_cooc", images[0], "--output-dir", str(tmp_path)])
    errors = error_lines(capsys.readouterr().err)
    assert errors == ["error: model 'resnet50_cooc' is not a file, a URL or a preset; presets: resnet50_coco"]
    with pytest.raises(SystemExit):
        convert_command.main(["resnet50_imagenet", str(tmp_path / "x.keras")])
    assert "names imagenet backbone weights, not a detector" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError):
        load_detector(str(tmp_path / "missing.keras"))


def test_train_weights_preset_of_another_backbone_is_a_one_line_error(tiny_preset, dataset):
    from keras_retinanet.engine.initial_weights import load_initial_weights
    from keras_retinanet.errors import RetinaNetError

    argv = ["--backbone", "mobilenet128_0.5", "--weights", "tiny_coco", "csv", *dataset]
    config = train_command.parse_args(argv).config
    with pytest.raises(RetinaNetError) as error:
        load_initial_weights(None, config, models.backbone("mobilenet128_0.5"))  # refused before any model work
    assert str(error.value) == (
        f"--weights tiny_coco holds a {BACKBONE} RetinaNet, not mobilenet128_0.5; train it with --backbone {BACKBONE}"
    )
    assert tiny_preset.requests == {}
