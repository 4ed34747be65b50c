"""Saving and loading training and inference models gives identical outputs."""

import warnings
import zipfile

import keras
import numpy as np
import pytest

from keras_retinanet import losses, models


def randomise(model, seed=0):
    """Give every weight, BatchNorm statistics included, a random value, so a lost weight would show."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        value = rng.normal(scale=0.05, size=tuple(variable.shape))
        if "variance" in variable.path or "gamma" in variable.path:
            value = 1.0 + np.abs(value)
        variable.assign(value.astype(variable.dtype))


@pytest.fixture(scope="module")
def trained_tiny_model():
    """A tiny training model with random weights, compiled with the RetinaNet losses."""
    keras.utils.clear_session()
    model = models.backbone("resnet50").retinanet(num_classes=3, pyramid_feature_size=32,
                                                  classification_feature_size=16, regression_feature_size=16)
    randomise(model)
    model.compile(loss={"regression": losses.smooth_l1(), "classification": losses.focal()},
                  optimizer=keras.optimizers.Adam(1e-3, clipnorm=0.001))
    images = np.random.default_rng(0).normal(size=(1, 64, 64, 3)).astype(np.float32) * 50
    return model, images


def outputs_of(model, images):
    """Eager call: no tf.function tracing, which costs more than the whole test on a small CPU."""
    return [np.asarray(o) for o in model(images, training=False)]


@pytest.mark.parametrize("extension", [".keras", ".h5"])
def test_training_model_round_trip(trained_tiny_model, tmp_path, extension):
    model, images = trained_tiny_model
    path = str(tmp_path / f"snapshot{extension}")
    model.save(path)
    loaded = models.load_model(path, backbone_name="resnet50")
    expected = outputs_of(model, images)
    actual = outputs_of(loaded, images)
    for a, b in zip(expected, actual):
        np.testing.assert_array_equal(a, b)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # frozen BatchNorm stays frozen after loading
    bn = loaded.get_layer("bn_conv1")
    assert bn.freeze and not bn.trainable
    # the loaded model is compiled with the same losses
    assert loaded.compiled
    restored = keras.tree.flatten(loaded.loss)
    assert sorted(type(loss).__name__ for loss in restored) == ["FocalLoss", "SmoothL1Loss"]


def test_a_keras_file_naming_the_model_class_s_old_module_still_loads(trained_tiny_model, tmp_path):
    """RetinaNetModel's module was models/retinanet_model.py until issue 27; .keras files store that module beside the
    class's registered name, and the registered name is what finds the class."""
    model, images = trained_tiny_model
    path = tmp_path / "new.keras"
    model.save(path)
    old_path = tmp_path / "old.keras"
    with zipfile.ZipFile(path) as new, zipfile.ZipFile(old_path, "w") as old:
        for item in new.infolist():
            data = new.read(item)
            if item.filename == "config.json":
                text = data.decode("utf8")
                assert text.count('"module": "keras_retinanet.models.model_with_spec"') == 1
                data = text.replace("keras_retinanet.models.model_with_spec", "keras_retinanet.models.retinanet_model")
            old.writestr(item, data)
    loaded = models.load_model(str(old_path), backbone_name="resnet50")
    assert type(loaded) is type(model) and loaded.spec == model.spec
    for a, b in zip(outputs_of(model, images), outputs_of(loaded, images)):
        np.testing.assert_array_equal(a, b)


def test_inference_model_loads_without_custom_objects(trained_tiny_model, tmp_path):
    model, images = trained_tiny_model
    inference = models.convert_model(model, max_detections=20, score_threshold=0.0)
    # a score threshold of 0 with sigmoid scores keeps detections, so the comparison is not between two paddings
    expected = outputs_of(inference, images)
    assert (expected[1] > 0).sum() > 0
    for extension in (".keras", ".h5"):
        path = str(tmp_path / f"inference{extension}")
        inference.save(path)
        loaded = keras.models.load_model(path)
        actual = outputs_of(loaded, images)
        assert len(actual) == 3
        for a, b in zip(expected, actual):
            np.testing.assert_array_equal(a, b)
        assert actual[2].dtype == np.int32
        assert loaded.get_layer("filtered_detections").max_detections == 20


def test_inference_call_on_plain_array_without_warnings(trained_tiny_model):
    model, images = trained_tiny_model
    inference = models.convert_model(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        boxes, scores, labels = inference(images)
    assert tuple(boxes.shape) == (1, 300, 4) and tuple(scores.shape) == (1, 300) and tuple(labels.shape) == (1, 300)


def test_one_check_tells_a_training_model_and_raises_a_typed_error(trained_tiny_model):
    """models.retinanet.is_training_model is the one test; assert_training_model and keras-retinanet's
    check_training_model raise ModelError (never SystemExit) for anything else."""
    from keras_retinanet.errors import ModelError
    from keras_retinanet.models.retinanet import is_training_model

    model, _ = trained_tiny_model
    inference = models.convert_model(model)
    assert is_training_model(model) and not is_training_model(inference)
    assert models.check_training_model is models.assert_training_model
    models.assert_training_model(model)
    with pytest.raises(ModelError, match=r"is not a RetinaNet training model: it has outputs \['filtered_detections"):
        models.check_training_model(inference)
