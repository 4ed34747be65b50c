"""RetinaNet's Keras layers against numpy computations written here."""

import math

import keras
import numpy as np
import pytest

from keras_retinanet import initializers, layers, models
from keras_retinanet import anchors as ua


def test_anchors_layer_equals_anchors_for_shape():
    params = ua.AnchorParameters(sizes=[32], strides=[8], ratios=[0.5, 1, 2], scales=[1, 2 ** (1 / 3), 2 ** (2 / 3)])
    layer = layers.Anchors(size=32, stride=8, ratios=params.ratios, scales=params.scales)
    features = np.zeros((2, 5, 7, 3), np.float32)
    output = np.asarray(layer(features))
    expected = ua.anchors_for_shape((40, 56), pyramid_levels=[3], anchor_params=params,
                                    shapes_callback=lambda shape, levels: [np.array([5, 7])])
    assert output.shape == (2, 5 * 7 * 9, 4)
    np.testing.assert_allclose(output[0], expected, rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(output[1], expected, rtol=1e-6, atol=1e-4)
    # position (i=1, j=2), anchor ratio 1 scale 1: centre (20, 12), side 32
    np.testing.assert_allclose(output[0, (1 * 7 + 2) * 9 + 3], [4, -4, 36, 28], atol=1e-4)


def test_anchors_layer_default_parameters():
    layer = layers.Anchors(size=64, stride=16)
    output = np.asarray(layer(np.zeros((1, 2, 2, 1), np.float32)))
    np.testing.assert_allclose(output[0, :9], ua.generate_anchors(64) + 8, atol=1e-4)
    assert layer.compute_output_shape((1, 2, 2, 1)) == (1, 36, 4)


def numpy_nearest(source, out_h, out_w):
    in_h, in_w = source.shape[1:3]
    rows = [int(math.floor(i * in_h / out_h)) for i in range(out_h)]
    cols = [int(math.floor(j * in_w / out_w)) for j in range(out_w)]
    return source[:, rows][:, :, cols]


@pytest.mark.parametrize("in_shape,out_shape", [((7, 7), (13, 13)), ((7, 5), (13, 9)), ((4, 4), (8, 8)), ((3, 5), (5, 10))])
def test_upsample_like_index_floor(in_shape, out_shape):
    rng = np.random.default_rng(0)
    source = rng.normal(size=(2,) + in_shape + (3,)).astype(np.float32)
    target = np.zeros((2,) + out_shape + (1,), np.float32)
    output = np.asarray(layers.UpsampleLike()([source, target]))
    assert output.shape == (2,) + out_shape + (3,)
    np.testing.assert_array_equal(output, numpy_nearest(source, *out_shape))


def test_upsample_like_7_to_13_by_hand():
    source = np.arange(7, dtype=np.float32).reshape(1, 7, 1, 1)
    output = np.asarray(layers.UpsampleLike()([source, np.zeros((1, 13, 1, 1), np.float32)]))
    # floor(i * 7 / 13) for i = 0..12
    assert output[0, :, 0, 0].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6]


def test_regress_boxes_equals_numpy_inverse():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 50, size=(2, 10, 2))
    anchors = np.concatenate([xy, xy + rng.uniform(4, 40, size=(2, 10, 2))], axis=-1).astype(np.float32)
    deltas = rng.normal(size=(2, 10, 4)).astype(np.float32)
    output = np.asarray(layers.RegressBoxes()([anchors, deltas]))
    w = anchors[..., 2] - anchors[..., 0]
    h = anchors[..., 3] - anchors[..., 1]
    expected = np.stack([anchors[..., 0] + deltas[..., 0] * 0.2 * w, anchors[..., 1] + deltas[..., 1] * 0.2 * h,
                         anchors[..., 2] + deltas[..., 2] * 0.2 * w, anchors[..., 3] + deltas[..., 3] * 0.2 * h], -1)
    np.testing.assert_allclose(output, expected, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(output, ua.bbox_transform_inv(anchors, deltas), rtol=1e-5, atol=1e-4)
    # mean and std
    mean, std = [0.1, 0.0, -0.1, 0.0], [0.1, 0.2, 0.3, 0.4]
    output = np.asarray(layers.RegressBoxes(mean=mean, std=std)([anchors, deltas]))
    scale = np.stack([w, h, w, h], -1)
    np.testing.assert_allclose(output, anchors + (deltas * std + mean) * scale, rtol=1e-5, atol=1e-4)


def test_clip_boxes():
    image = np.zeros((1, 20, 30, 3), np.float32)  # H = 20, W = 30
    boxes = np.array([[[-5, -3, 40, 25], [3, 4, 10, 12], [35, 30, 50, 60]]], np.float32)
    output = np.asarray(layers.ClipBoxes()([image, boxes]))
    np.testing.assert_allclose(output, [[[0, 0, 29, 19], [3, 4, 10, 12], [29, 19, 29, 19]]])


def test_prior_probability():
    values = np.asarray(initializers.PriorProbability(0.01)((3, 4)))
    np.testing.assert_allclose(values, -math.log(99), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(initializers.PriorProbability(0.5)((2,))), 0.0, atol=1e-7)
    restored = keras.initializers.deserialize(keras.initializers.serialize(initializers.PriorProbability(0.2)))
    assert isinstance(restored, initializers.PriorProbability) and restored.probability == 0.2
    with pytest.raises(ValueError):
        initializers.PriorProbability(1.0)


def test_classification_head_starts_at_prior():
    from keras_retinanet.models.retinanet import default_classification_model

    head = default_classification_model(num_classes=3, num_anchors=9, pyramid_feature_size=16,
                                         classification_feature_size=16)
    features = np.random.default_rng(0).normal(size=(1, 6, 6, 16)).astype(np.float32)
    scores = np.asarray(head(features))
    assert scores.shape == (1, 6 * 6 * 9, 3)
    np.testing.assert_allclose(scores, 0.01, atol=1e-3)


def check_round_trip(layer, inputs):
    restored = type(layer).from_config(layer.get_config())
    assert restored.get_config() == layer.get_config()
    # registered: serialisation without custom objects finds the class again
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(again) is type(layer) and again.get_config() == layer.get_config()
    expected = layer(inputs)
    for out in (restored(inputs), again(inputs)):
        for a, b in zip(keras.tree.flatten(expected), keras.tree.flatten(out)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_layers_get_config_round_trip():
    rng = np.random.default_rng(2)
    features = rng.normal(size=(1, 3, 4, 2)).astype(np.float32)
    check_round_trip(layers.Anchors(size=16, stride=4, ratios=[0.5, 1.0], scales=[1.0, 1.5], name="a"), features)
    check_round_trip(layers.UpsampleLike(name="u"), [features, np.zeros((1, 7, 9, 1), np.float32)])
    anchors = np.array([[[0, 0, 10, 10], [2, 2, 8, 9]]], np.float32)
    deltas = rng.normal(size=(1, 2, 4)).astype(np.float32)
    check_round_trip(layers.RegressBoxes(mean=[0.1, 0, 0, 0], std=[0.1, 0.1, 0.2, 0.2], name="r"), [anchors, deltas])
    check_round_trip(layers.ClipBoxes(name="c"), [np.zeros((1, 5, 6, 3), np.float32), anchors])
    check_round_trip(layers.FilterDetections(nms_threshold=0.4, score_threshold=0.1, max_detections=3, name="f"),
                     [anchors, np.array([[[0.9, 0.2], [0.3, 0.8]]], np.float32)])
    bn = layers.BatchNormalization(freeze=True, epsilon=1e-5, name="bn")
    bn.build((None, 2))
    restored = layers.BatchNormalization.from_config(bn.get_config())
    assert restored.get_config() == bn.get_config() and restored.freeze and not restored.trainable
    config = layers.Anchors(size=16, stride=4).get_config()
    assert {"size", "stride", "ratios", "scales"} <= set(config)


def test_inference_model_anchors_match_numpy():
    model = models.backbone("resnet50").retinanet(num_classes=2, pyramid_feature_size=16,
                                                  classification_feature_size=8, regression_feature_size=8)
    inference = models.convert_model(model)
    anchor_model = keras.Model(inference.input, inference.get_layer("anchors").output)
    # guess_shapes' (s + 2^l - 1) // 2^l must be the real feature sizes, odd image sizes included
    for height, width in [(72, 100), (67, 101)]:
        output = np.asarray(anchor_model(np.zeros((1, height, width, 3), np.float32)))
        np.testing.assert_allclose(output[0], ua.anchors_for_shape((height, width, 3)), rtol=1e-6, atol=1e-3)


def test_box_decoding_defaults_are_the_box_coding_constants():
    from keras_retinanet import backend
    from keras_retinanet.config.defaults import BOX_CODING_MEAN, BOX_CODING_STD

    layer = layers.RegressBoxes()
    np.testing.assert_array_equal(layer.mean, np.float32(BOX_CODING_MEAN))
    np.testing.assert_array_equal(layer.std, np.float32(BOX_CODING_STD))
    anchors = np.array([[[0.0, 0.0, 10.0, 20.0]]], np.float32)
    deltas = np.array([[[1.0, -1.0, 0.5, 2.0]]], np.float32)
    np.testing.assert_allclose(np.asarray(backend.bbox_transform_inv(anchors, deltas)),
                               ua.bbox_transform_inv(anchors, deltas), rtol=1e-6)
