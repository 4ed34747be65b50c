"""keras_retinanet.config: one configuration object, one table of defaults, presets, JSON, and the command line."""

import dataclasses
import json

import pytest

from keras_retinanet.bin import convert_model as convert_command
from keras_retinanet.bin import evaluate as evaluate_command
from keras_retinanet.bin import train as train_command
from keras_retinanet.config import (
    CONFIG_PRESETS,
    DEFAULTS,
    AnchorConfig,
    DatasetConfig,
    RetinaNetConfig,
    read_anchor_config,
)
from keras_retinanet.config.defaults import DATASET_SETS
from keras_retinanet.readers.from_config import set_name

INI = """
[anchor_parameters]
sizes   = 16 32 64
strides = 8 16 32
ratios  = 0.5 1 2
scales  = 1 1.25

[pyramid_levels]
levels = 3 4 5
"""


def test_every_setting_has_its_default_in_the_one_table():
    config = RetinaNetConfig()
    for section, defaults in DEFAULTS.items():
        part = getattr(config, section)
        assert {field.name for field in dataclasses.fields(part)} == set(defaults), section
        for name, value in defaults.items():
            assert getattr(part, name) == value, f"{section}.{name}"


def test_keras_retinanet_defaults():
    config = RetinaNetConfig.build()
    assert config.model.backbone == "resnet50"
    assert (config.data.image_min_side, config.data.image_max_side) == (800, 1333)
    assert config.training.lr == 1e-5 and config.training.steps == 10000 and config.training.epochs == 50
    assert config.preset is None and config.explicit == frozenset()


def test_the_demo_preset_and_the_user_settings_over_it():
    config = RetinaNetConfig.build({"model.backbone": "resnet50", "data.batch_size": 2}, preset="demo")
    assert config.preset == "demo"
    assert config.model.backbone == "resnet50"  # the user's choice wins over the preset's mobilenet128_0.5
    assert config.data.batch_size == 2
    assert config.data.image_min_side == CONFIG_PRESETS["demo"]["data"]["image_min_side"] == 160
    assert config.training.steps is None and config.model.trainable_bn is True
    assert config.given("model.backbone") and not config.given("data.image_min_side")


def test_unknown_settings_and_presets_are_errors():
    with pytest.raises(ValueError, match="model.backbon"):
        RetinaNetConfig.build({"model.backbon": "resnet50"})
    with pytest.raises(ValueError, match="unknown configuration setting 'modle.backbone'"):
        RetinaNetConfig.build({"modle.backbone": "resnet50"})
    with pytest.raises(ValueError, match="unknown preset 'dem'"):
        RetinaNetConfig.build(preset="dem")
    with pytest.raises(ValueError, match="unknown dataset type 'voc'"):
        DatasetConfig(type="voc")


def test_the_configuration_is_frozen_and_replace_returns_a_new_one():
    config = RetinaNetConfig.build()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.training.seed = 3
    changed = config.replace(training={"seed": 3})
    assert changed.training.seed == 3 and config.training.seed is None
    assert changed.model is config.model


def test_json_round_trip_with_anchors_and_dataset(tmp_path):
    ini = tmp_path / "anchors.ini"
    ini.write_text(INI)
    config = RetinaNetConfig.build({
        "model.anchors": read_anchor_config(ini),
        "data.dataset": DatasetConfig(type="oid", path="/data/oid", labels_filter=["Cat", "Dog"]),
        "training.seed": 7,
    })
    text = config.to_json()
    stored = json.loads(text)  # plain JSON: lists, numbers, strings
    assert stored["model"]["anchors"]["parameters"]["sizes"] == [16, 32, 64]
    assert stored["model"]["anchors"]["pyramid_levels"] == [3, 4, 5]
    assert stored["data"]["dataset"]["labels_filter"] == ["Cat", "Dog"]
    restored = RetinaNetConfig.from_json(text)
    assert restored == config
    assert restored.model.num_anchors == 6 and restored.model.pyramid_levels == [3, 4, 5]


def test_from_dict_refuses_settings_it_does_not_know():
    values = RetinaNetConfig.build().to_dict()
    values["training"]["warmup"] = 3
    with pytest.raises(ValueError, match="training.warmup"):
        RetinaNetConfig.from_dict(values)


def test_the_ini_file_is_read_into_an_anchor_config(tmp_path):
    ini = tmp_path / "anchors.ini"
    ini.write_text(INI.split("[pyramid_levels]")[0].replace("16 32 64", "32 64 128 256 512").replace(
        "8 16 32", "8 16 32 64 128"))
    anchors = read_anchor_config(ini)
    assert anchors.parameters.sizes == [32, 64, 128, 256, 512] and anchors.pyramid_levels is None
    assert anchors.source == str(ini)
    assert AnchorConfig.from_dict(anchors.to_dict()) == anchors


def test_train_command_line_builds_the_configuration_once(tmp_path):
    args = train_command.parse_args(["--epochs", "3", "--lr", "0.01", "--no-snapshots", "csv", "a.csv", "c.csv"])
    config = args.config
    assert config.training.epochs == 3 and config.training.lr == 0.01 and config.training.snapshots is False
    assert config.training.steps == 10000  # keras-retinanet's default, from the table
    assert config.data.dataset == DatasetConfig(type="csv", annotations="a.csv", classes="c.csv")
    assert config.explicit == {"training.epochs", "training.lr", "training.snapshots", "data.dataset"}


def test_demo_is_the_demo_preset_not_a_guess_from_image_sides(tmp_path):
    config = train_command.parse_args(["demo"]).config
    assert config.preset == "demo" and config.model.backbone == "mobilenet128_0.5"
    # an explicit 800/1333 stays 800/1333 (the old code took these numbers for "not given")
    config = evaluate_command.parse_args(
        ["--image-min-side", "800", "--image-max-side", "1333", "demo", "model.h5"]
    ).config
    assert (config.data.image_min_side, config.data.image_max_side) == (800, 1333)
    (tmp_path / "in.h5").write_bytes(b"")
    config = convert_command.parse_args([str(tmp_path / "in.h5"), "out.tflite", "--quantize", "int8", "demo"]).config
    assert (config.data.image_min_side, config.data.image_max_side) == (160, 160)


def test_a_command_reads_its_anchor_ini_into_the_configuration(tmp_path):
    ini = tmp_path / "anchors.ini"
    ini.write_text(INI)
    config = evaluate_command.parse_args(["--config", str(ini), "csv", "a.csv", "c.csv", "model.h5"]).config
    assert config.model.anchor_parameters.sizes == [16, 32, 64]
    assert config.model.pyramid_levels == [3, 4, 5]


def test_pascal_sets_are_keras_retinanet_1_0_0s():
    train = train_command.parse_args(["pascal", "/data/VOC2007"]).config.data.dataset
    assert (set_name(train, "train"), set_name(train, "val")) == ("train", "val")
    evaluate = evaluate_command.parse_args(["pascal", "/data/VOC2007", "model.h5"]).config.data.dataset
    assert set_name(evaluate, "eval") == "test"
    chosen = train_command.parse_args(["pascal", "/data/VOC2007", "--train-set", "trainval"]).config.data.dataset
    assert set_name(chosen, "train") == "trainval"
    assert DATASET_SETS["coco"]["train"] == "train2017"
