"""models.precision: mixed bfloat16 models keep float32 weights, logits and outputs, and agree with float32."""

import keras
import numpy as np
import pytest

from keras_retinanet import losses, models
from keras_retinanet.models.retinanet import FLOAT32_LAYER_NAMES
from keras_retinanet.anchors import anchor_targets_bbox, anchors_for_shape
from keras_retinanet.models.precision import policy_name, set_precision, with_precision

TINY = {"pyramid_feature_size": 32, "classification_feature_size": 16, "regression_feature_size": 16}


@pytest.fixture
def restore_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def _image(side=128, seed=0):
    return np.random.default_rng(seed).uniform(-100, 100, (1, side, side, 3)).astype(np.float32)


def test_with_precision_computes_in_bfloat16_but_keeps_float32_where_it_matters():
    keras.utils.set_random_seed(0)
    model = models.backbone("resnet50").retinanet(num_classes=3, **TINY)
    mixed = with_precision(model, "mixed_bfloat16")
    policies = {layer.name: layer.dtype_policy.name for layer in _all_layers(mixed)}
    assert policies["res2a_branch2a"] == policies["pyramid_classification_0"] == "mixed_bfloat16"
    for name in FLOAT32_LAYER_NAMES & set(policies):
        assert policies[name] == "float32", name
    assert all(v.dtype == "float32" for v in mixed.weights)
    for a, b in zip(model.get_weights(), mixed.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert model.get_layer("res2a_branch2a").dtype_policy.name == "float32"  # the original is untouched

    x = _image()
    (r32, c32), (r16, c16) = model.predict_on_batch(x), mixed.predict_on_batch(x)
    assert r16.dtype == c16.dtype == np.float32
    # bfloat16 keeps 8 bits of mantissa: relative error of a few 1e-3 per op, a few 1e-2 after ~60 layers.
    assert np.abs(r32 - r16).max() <= 0.05 * np.abs(r32).max()
    assert np.abs(c32 - c16).max() <= 0.01


def test_mixed_inference_model_outputs_float32_detections():
    keras.utils.set_random_seed(1)
    model = models.backbone("resnet50").retinanet(num_classes=2, **TINY)
    inference = models.convert_model(with_precision(model, "mixed_bfloat16"))
    boxes, scores, labels = inference.predict_on_batch(_image(seed=1))
    assert boxes.dtype == scores.dtype == np.float32 and labels.dtype == np.int32


@pytest.mark.slow
def test_training_under_mixed_policy_keeps_float32_variables_and_finite_loss(restore_policy):
    assert set_precision("mixed_bfloat16") == "mixed_bfloat16"
    keras.utils.set_random_seed(2)
    backbone = models.backbone("resnet50")
    model = backbone.retinanet(num_classes=2, **TINY)
    model.compile(
        loss={"regression": losses.smooth_l1(), "classification": losses.focal()},
        optimizer=keras.optimizers.Adam(1e-4),
        jit_compile=False,
    )
    assert model.get_layer("res2a_branch2a").compute_dtype == "bfloat16"
    image = np.zeros((1, 128, 128, 3), np.float32)
    image[0, 32:96, 40:100] = 100.0
    annotations = [{"bboxes": np.array([[40.0, 32.0, 100.0, 96.0]]), "labels": np.array([1])}]
    regression, labels = anchor_targets_bbox(anchors_for_shape(image.shape[1:]), image, annotations, num_classes=2)
    before = [w.copy() for w in model.get_layer("res2a_branch2a").get_weights()]
    for _ in range(2):
        loss = model.train_on_batch(image, {"regression": regression, "classification": labels})
    assert np.all(np.isfinite(loss))
    after = model.get_layer("res2a_branch2a").get_weights()
    assert all(w.dtype == np.float32 for w in after)
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))


def test_mixed_model_round_trips_through_keras_file(tmp_path):
    keras.utils.set_random_seed(3)
    mixed = with_precision(models.backbone("resnet50").retinanet(num_classes=2, **TINY), "mixed_bfloat16")
    path = str(tmp_path / "mixed.keras")
    mixed.save(path)
    loaded = models.load_model(path)
    assert loaded.get_layer("res2a_branch2a").dtype_policy.name == "mixed_bfloat16"
    x = _image(seed=3)
    for a, b in zip(mixed.predict_on_batch(x), loaded.predict_on_batch(x)):
        np.testing.assert_array_equal(a, b)


def test_precision_names():
    assert policy_name("float32") == "float32"
    import tensorflow as tf

    expected = "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"
    assert policy_name("mixed") == expected
    with pytest.raises(ValueError, match="unknown precision 'half'"):
        policy_name("half")
