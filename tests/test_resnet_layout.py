"""The ResNet RetinaNet has keras-retinanet 1.0.0's exact layer names, order and weight shapes."""

import json
import os

import keras
import numpy as np
import pytest

from keras_retinanet import layers, models
from keras_retinanet.models.resnet import resnet_layers

LAYOUT = os.path.join(os.path.dirname(__file__), "data", "fizyr_resnet50_train_h5_layout.json")


@pytest.fixture(scope="module")
def resnet50_80():
    keras.utils.clear_session()
    return models.backbone("resnet50").retinanet(num_classes=80)


def weight_layout(model):
    """layer name -> [(weight name as Keras 2 stored it, shape)]; nested models list their layers' weights."""
    layout = {}
    for layer in model.layers:
        entries = []
        owners = layer.layers if isinstance(layer, keras.Model) else [layer]
        for owner in owners:
            for weight in owner.weights:
                entries.append([f"{owner.name}/{weight.name}:0", list(weight.shape)])
        layout[layer.name] = entries
    return layout


def test_layer_names_and_weights_match_keras_retinanet(resnet50_80):
    with open(LAYOUT) as handle:
        reference = json.load(handle)
    names = [layer.name for layer in resnet50_80.layers]
    assert len(names) == 206
    assert names == reference["layer_names"]
    ours = weight_layout(resnet50_80)
    for name in reference["layer_names"]:
        assert ours[name] == reference["weights"][name], name
    assert resnet50_80.count_params() == 38021812
    expected_params = sum(int(np.prod(shape)) for entries in reference["weights"].values() for _, shape in entries)
    assert expected_params == 38021812


def test_batch_normalisation_frozen(resnet50_80):
    bns = [layer for layer in resnet50_80.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(bns) == 53
    for bn in bns:
        assert isinstance(bn, layers.BatchNormalization)
        assert not bn.trainable and bn.epsilon == 1e-5
    # only the FPN and the heads train
    trainable = {w.path.split("/")[0] for w in resnet50_80.trainable_weights}
    assert not any(name.startswith("bn") for name in trainable)


def bn_by_hand(x, gamma, beta, mean, variance, eps):
    return gamma * (x - mean) / np.sqrt(variance + eps) + beta


def test_frozen_bn_uses_moving_statistics_when_training():
    rng = np.random.default_rng(0)
    bn = layers.BatchNormalization(freeze=True, epsilon=1e-5)
    bn.build((None, 4, 4, 3))
    values = [rng.uniform(0.5, 2, 3), rng.normal(size=3), rng.normal(size=3), rng.uniform(0.5, 2, 3)]
    bn.set_weights([v.astype(np.float32) for v in values])
    x = rng.normal(size=(2, 4, 4, 3)).astype(np.float32)
    expected = bn_by_hand(x, *values, eps=1e-5)
    for training in (True, False, None):
        np.testing.assert_allclose(np.asarray(bn(x, training=training)), expected, rtol=1e-5, atol=1e-5)
    # and training does not move the statistics
    np.testing.assert_array_equal(bn.get_weights()[2], values[2].astype(np.float32))


def test_frozen_bn_gradient_and_bfloat16_inputs():
    import tensorflow as tf

    rng = np.random.default_rng(2)
    bn = layers.BatchNormalization(freeze=True, epsilon=1e-3)
    bn.build((None, 3, 5, 4))
    gamma, beta, mean, variance = rng.uniform(0.5, 2, 4), rng.normal(size=4), rng.normal(size=4), rng.uniform(0.5, 2, 4)
    bn.set_weights([v.astype(np.float32) for v in (gamma, beta, mean, variance)])
    x = tf.constant(rng.normal(size=(2, 3, 5, 4)).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(bn(x, training=True))
    # d/dx of gamma * (x - mean) / sqrt(variance + eps) + beta, per channel
    expected = np.broadcast_to(gamma / np.sqrt(variance + 1e-3), (2, 3, 5, 4))
    np.testing.assert_allclose(tape.gradient(total, x).numpy(), expected, rtol=1e-5)
    mixed = layers.BatchNormalization(freeze=True, epsilon=1e-3, dtype="mixed_bfloat16")
    mixed.build((None, 3, 5, 4))
    mixed.set_weights(bn.get_weights())
    half = mixed(tf.cast(x, tf.bfloat16))
    assert half.dtype == tf.bfloat16
    np.testing.assert_allclose(
        tf.cast(half, tf.float32).numpy(), bn_by_hand(x.numpy(), gamma, beta, mean, variance, 1e-3), rtol=2e-2, atol=2e-2
    )


def test_trainable_bn_option():
    rng = np.random.default_rng(1)
    bn = layers.BatchNormalization(freeze=False, epsilon=1e-5)
    bn.build((None, 4, 4, 3))
    assert bn.trainable and len(bn.trainable_weights) == 2
    x = (rng.normal(size=(2, 4, 4, 3)) * 3 + 1).astype(np.float32)
    out = np.asarray(bn(x, training=True))
    # batch statistics: every channel comes out with mean 0 and (nearly) unit variance
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(out.var(axis=(0, 1, 2)), 1, rtol=1e-2)

    # the option reaches every BatchNormalization of the trunk (built here with the legacy conv1 as well)
    inputs = keras.Input((None, None, 3))
    trunk = keras.Model(inputs, resnet_layers(inputs, "resnet50", freeze_bn=False, legacy_padding=True))
    bns = [layer for layer in trunk.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(bns) == 53 and all(bn.trainable and not bn.freeze for bn in bns)
    # keras-resnet 0.1.0's conv1: ZeroPadding 3, then a 'valid' conv
    assert trunk.get_layer("padding_conv1").padding == ((3, 3), (3, 3))
    assert trunk.get_layer("conv1").padding == "valid"


def test_deeper_resnet_block_names():
    for depth, present, absent in [
        ("resnet101", ["res4b1_branch2a", "res4b22_branch2c", "res3b1_branch2a", "res3b3", "res5c", "res2c"],
         ["res4b23_branch2a", "res4b_branch2a", "res3b4"]),
        ("resnet152", ["res3b7_branch2a", "res4b35_branch2c", "res4b1", "res5c_relu"],
         ["res3b8", "res4b36", "res3b_branch2a"]),
    ]:
        keras.utils.clear_session()
        inputs = keras.Input((None, None, 3))
        trunk = keras.Model(inputs, resnet_layers(inputs, depth))
        names = {layer.name for layer in trunk.layers}
        for name in present:
            assert name in names, (depth, name)
        for name in absent:
            assert name not in names, (depth, name)
        blocks = {"resnet101": 3 + 4 + 23 + 3, "resnet152": 3 + 8 + 36 + 3}[depth]
        assert sum(1 for n in names if n.startswith("res") and n.endswith("_relu") and "branch" not in n) == blocks


def test_output_shapes(resnet50_80):
    regression, classification = resnet50_80(np.zeros((1, 64, 96, 3), np.float32))
    # 64 x 96 has 129 positions on P3-P7, 9 anchors each
    assert tuple(regression.shape) == (1, 1161, 4) and tuple(classification.shape) == (1, 1161, 80)
