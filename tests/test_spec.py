"""The detector spec: stored in the model, through every save, load, conversion and rebuild."""

import keras
import numpy as np
import pytest

from keras_retinanet import models
from keras_retinanet.anchors import AnchorParameters
from keras_retinanet.checkpoint import read_spec
from keras_retinanet.config import AnchorConfig, DetectorSpec, RetinaNetConfig
from keras_retinanet.config.spec import check_class_count, reconcile
from keras_retinanet.errors import ModelError
from keras_retinanet.models.precision import with_precision

BACKBONE = "mobilenet128_0.25"
# Two ratios and two scales: 4 anchors per position, not the default 9, so a default would show.
ANCHORS = AnchorParameters(sizes=[32, 64, 128, 256, 512], strides=[8, 16, 32, 64, 128], ratios=[0.5, 1], scales=[1, 1.5])


def _spec(**changes):
    values = dict(
        backbone=BACKBONE,
        preprocessing="tf",
        class_names=("cat", "dog", "bird"),
        image_min_side=128,
        image_max_side=160,
        anchors=ANCHORS.get_config(),
        pyramid_feature_size=16,
        classification_feature_size=8,
        regression_feature_size=8,
    )
    values.update(changes)
    return DetectorSpec(**values)


@pytest.fixture(scope="module")
def training_model():
    model = models.backbone(BACKBONE).retinanet(
        3, num_anchors=4, pyramid_feature_size=16, classification_feature_size=8, regression_feature_size=8
    )
    model.spec = _spec()
    return model


def test_spec_round_trips_through_json_values():
    spec = _spec()
    assert DetectorSpec.from_dict(spec.to_dict()) == spec
    assert spec.num_classes == 3 and spec.name_of(1) == "dog" and spec.name_of(7) == "7"
    assert spec.anchor_parameters == ANCHORS and spec.pyramid_levels == (3, 4, 5, 6, 7)
    # a key a newer version added is left out, not an error
    assert DetectorSpec.from_dict({**spec.to_dict(), "tokenizer": "x"}) == spec


def test_object_sizes_round_trip_and_older_specs_load_without_them():
    sizes = {"p50": 30.0, "p90": 46.0, "p95": 48.0, "p99": 49.6, "max": 50.0}
    spec = _spec(object_sizes=sizes)
    assert DetectorSpec.from_dict(spec.to_dict()) == spec and spec.to_dict()["object_sizes"] == sizes
    older = {key: value for key, value in spec.to_dict().items() if key != "object_sizes"}  # a file written before
    assert DetectorSpec.from_dict(older).object_sizes is None
    with pytest.raises(ValueError, match="object sizes lack p99, max"):
        _spec(object_sizes={"p50": 1, "p90": 2, "p95": 3})


def test_object_sizes_are_percentiles_of_the_longer_side():
    from keras_retinanet.data.diagnostics import DatasetBoxes
    from keras_retinanet.engine.auto_anchors import object_sizes

    # longer sides 10, 20, 30 (the height), 40, 50 over two inputs; linear percentiles by hand:
    # p50 = 30; p90 at rank 0.9 * 4 = 3.6 -> 40 + 0.6 * 10 = 46; p95 -> 48; p99 -> 49.6
    first = np.array([[0, 0, 10, 5], [5, 5, 25, 10]], dtype=float)
    second = np.array([[0, 0, 12, 30], [1, 1, 41, 1], [0, 0, 50, 50]], dtype=float)
    boxes = DatasetBoxes((first, second), (np.zeros(2), np.zeros(3)), ((64, 64), (64, 64)))
    assert object_sizes(boxes) == pytest.approx({"p50": 30.0, "p90": 46.0, "p95": 48.0, "p99": 49.6, "max": 50.0})
    assert object_sizes(DatasetBoxes((np.zeros((0, 4)),), (np.zeros(0),), ((64, 64),))) is None


def test_spec_from_a_configuration():
    config = RetinaNetConfig.build({"model.anchors": AnchorConfig(ANCHORS, None)}, preset="demo")
    spec = DetectorSpec.from_config(config, ["a", "b"], "tf")
    assert (spec.backbone, spec.image_min_side, spec.image_max_side) == ("mobilenet128_0.5", 160, 160)
    assert spec.pyramid_feature_size == 64 and spec.anchor_parameters == ANCHORS and spec.filter is None


@pytest.mark.parametrize("extension", [".keras", ".h5"])
def test_spec_survives_saving_and_both_loaders(training_model, tmp_path, extension):
    path = str(tmp_path / f"model{extension}")
    training_model.save(path)
    assert read_spec(path) == training_model.spec  # read without building the model
    assert keras.models.load_model(path, compile=False).spec == training_model.spec
    loaded = models.load_model(path, compile=False)  # the backbone comes from the spec
    assert isinstance(loaded, models.RetinaNetModel) and loaded.spec == training_model.spec


def test_a_contradicting_backbone_is_refused(training_model, tmp_path):
    path = str(tmp_path / "model.keras")
    training_model.save(path)
    with pytest.raises(ModelError, match="holds a mobilenet128_0.25 RetinaNet, not resnet50"):
        models.load_model(path, backbone_name="resnet50")


def test_conversion_keeps_the_spec_and_uses_its_anchors(training_model, tmp_path):
    inference = models.convert_model(training_model, score_threshold=0.2, max_detections=50)
    spec = inference.spec
    assert spec.class_names == ("cat", "dog", "bird") and spec.anchor_parameters == ANCHORS
    assert spec.filter == {
        "nms": True, "class_specific_filter": True, "nms_threshold": 0.5, "score_threshold": 0.2, "max_detections": 50,
        "max_candidates_per_level": None, "nms_method": "hard", "soft_nms_sigma": 0.5,
    }
    # 4 anchors per position on P3-P7 of a 64x64 input: (8x8 + 4x4 + 2x2 + 1 + 1) positions
    anchors = keras.Model(inference.input, inference.get_layer("anchors").output)(np.zeros((1, 64, 64, 3)))
    assert anchors.shape == (1, 4 * (64 + 16 + 4 + 1 + 1), 4)
    path = str(tmp_path / "inference.h5")
    inference.save(path)
    assert read_spec(path) == spec


def test_mixed_precision_rebuild_keeps_the_spec(training_model):
    try:
        rebuilt = with_precision(training_model, "mixed_bfloat16")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert rebuilt.spec == training_model.spec


def test_reconcile_takes_the_spec_where_the_user_said_nothing():
    spec = _spec()
    config, notes = reconcile(RetinaNetConfig.build(), spec, "model.keras")
    assert config.model.backbone == BACKBONE and config.model.anchor_parameters == ANCHORS
    assert (config.data.image_min_side, config.data.image_max_side) == (128, 160) and notes == []
    config, notes = reconcile(RetinaNetConfig.build({"data.image_min_side": 200}), spec, "model.keras")
    assert config.data.image_min_side == 200 and config.data.image_max_side == 160
    assert notes == ["using --image-min-side 200 (model.keras was trained at 128)"]


def test_reconcile_refuses_contradictions():
    with pytest.raises(ModelError, match="--backbone resnet50 contradicts model.keras"):
        reconcile(RetinaNetConfig.build({"model.backbone": "resnet50"}), _spec(), "model.keras")
    default_anchors = AnchorConfig(AnchorParameters.default, None, source="anchors.ini")
    with pytest.raises(ModelError, match="--config anchors.ini: its anchors"):
        reconcile(RetinaNetConfig.build({"model.anchors": default_anchors}), _spec(), "model.keras")
    # the same anchors, given again, are fine
    same = AnchorConfig(ANCHORS, (3, 4, 5, 6, 7), source="anchors.ini")
    reconcile(RetinaNetConfig.build({"model.anchors": same, "model.backbone": BACKBONE}), _spec(), "model.keras")


def test_class_count_must_agree():
    check_class_count(_spec(), ["a", "b", "c"], "classes.csv", "model.keras")
    with pytest.raises(ModelError, match="classes.csv has 2 classes but model.keras detects 3 \\(cat, dog, bird\\)"):
        check_class_count(_spec(), ["a", "b"], "classes.csv", "model.keras")
