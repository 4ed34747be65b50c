"""ImageNet weights load from local Keras 2 style files in both ResNet naming schemes."""

import h5py
import keras
import numpy as np
import pytest

from keras_retinanet import models
from keras_retinanet.errors import ModelFileError


def write_keras2_weights(path, named_weights):
    """A Keras 2 ``save_weights`` file: root attr layer_names, per layer attr weight_names and datasets.

    Args:
        named_weights: list of (layer name, [(weight name, array)]), weightless layers with [].
    """
    with h5py.File(path, "w") as handle:
        handle.attrs["layer_names"] = [name.encode("utf8") for name, _ in named_weights]
        handle.attrs["backend"] = b"tensorflow"
        handle.attrs["keras_version"] = b"2.4.0"
        for layer_name, weights in named_weights:
            group = handle.create_group(layer_name)
            group.attrs["weight_names"] = [f"{layer_name}/{name}:0".encode("utf8") for name, _ in weights]
            for name, value in weights:
                group.create_dataset(f"{layer_name}/{name}:0", data=value)


def layer_weights(model, names=None):
    return [(layer.name, [(w.name, np.asarray(w)) for w in layer.weights])
            for layer in model.layers if names is None or layer.name in names]


@pytest.fixture(scope="module")
def applications_resnet50():
    """keras.applications' ResNet50 with randomised conv biases and BatchNorm parameters and statistics."""
    keras.utils.clear_session()
    keras.utils.set_random_seed(3)
    model = keras.applications.ResNet50(weights=None, include_top=False, input_shape=(None, None, 3))
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, rng.normal(scale=0.1, size=bias.shape).astype(np.float32)])
        elif isinstance(layer, keras.layers.BatchNormalization):
            assert abs(layer.epsilon - 1.001e-5) < 1e-12
            size = layer.gamma.shape
            layer.set_weights([rng.uniform(0.5, 1.5, size), rng.normal(scale=0.1, size=size),
                               rng.normal(scale=0.1, size=size), rng.uniform(0.5, 1.5, size)])
    return model


@pytest.fixture(scope="module")
def legacy_retinanet():
    backbone = models.backbone("resnet50")
    model = backbone.retinanet(num_classes=2, legacy_padding=True, pyramid_feature_size=16,
                               classification_feature_size=8, regression_feature_size=8)
    return backbone, model


def test_keras_applications_weights_give_keras_applications_features(applications_resnet50, legacy_retinanet,
                                                                      tmp_path):
    backbone, model = legacy_retinanet
    path = str(tmp_path / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5")
    write_keras2_weights(path, layer_weights(applications_resnet50))
    assert backbone.load_imagenet_weights(model, path) == 106  # 53 convs and 53 BatchNorms

    # 66 x 98 makes conv1's output odd-sized, where keras.applications' ZeroPadding(1) + 'valid' max pool
    # and keras-resnet's 'same' max pool take the same windows (a ReLU output is >= 0, so padding with 0
    # equals ignoring the padding).
    images = np.random.default_rng(1).normal(scale=30, size=(1, 66, 98, 3)).astype(np.float32)
    ours = keras.Model(model.input, model.get_layer("res5c_relu").output)
    expected = np.asarray(applications_resnet50(images, training=False))
    actual = np.asarray(ours(images, training=False))
    assert actual.shape == expected.shape == (1, 3, 4, 2048)
    scale = np.abs(expected).max()
    assert scale > 0
    np.testing.assert_allclose(actual / scale, expected / scale, atol=1e-4)


def test_keras_retinanet_layout_loads_weight_for_weight(legacy_retinanet, tmp_path):
    backbone, model = legacy_retinanet
    names = set(backbone.backbone_layer_names(model))
    rng = np.random.default_rng(2)
    reference = []
    for layer_name, weights in layer_weights(model, names):
        reference.append((layer_name, [(name, rng.normal(size=value.shape).astype(np.float32))
                                       for name, value in weights]))
    path = str(tmp_path / "ResNet-50-model.keras.h5")
    write_keras2_weights(path, reference)
    heads_before = [np.asarray(w) for w in model.get_layer("classification_submodel").weights]
    assert backbone.load_imagenet_weights(model, path) == 106
    for layer_name, weights in reference:
        for (name, value), variable in zip(weights, model.get_layer(layer_name).weights):
            np.testing.assert_array_equal(np.asarray(variable), value, err_msg=f"{layer_name}/{name}")
    # nothing outside the trunk changes
    for before, after in zip(heads_before, model.get_layer("classification_submodel").weights):
        np.testing.assert_array_equal(before, np.asarray(after))


def test_missing_file_is_a_clear_error(legacy_retinanet, tmp_path):
    backbone, model = legacy_retinanet
    path = str(tmp_path / "nowhere" / "ResNet-50-model.keras.h5")
    with pytest.raises(ModelFileError) as error:
        backbone.load_imagenet_weights(model, path)
    assert path in str(error.value)
    assert "ResNet-50-model.keras.h5" in str(error.value).replace(path, "")


def test_file_without_resnet_layers(legacy_retinanet, tmp_path):
    backbone, model = legacy_retinanet
    path = str(tmp_path / "dense.h5")
    write_keras2_weights(path, [("dense_1", [("kernel", np.zeros((3, 4), np.float32))]), ("flatten", [])])
    with pytest.raises(ModelFileError) as error:
        backbone.load_imagenet_weights(model, path)
    assert path in str(error.value) and "ResNet" in str(error.value)
    # not an HDF5 file at all
    path = tmp_path / "text.h5"
    path.write_text("not hdf5")
    with pytest.raises(ModelFileError) as error:
        backbone.load_imagenet_weights(model, str(path))
    assert str(path) in str(error.value)


def test_keras_applications_file_missing_a_layer(applications_resnet50, legacy_retinanet, tmp_path):
    backbone, model = legacy_retinanet
    path = str(tmp_path / "truncated_notop.h5")
    weights = [entry for entry in layer_weights(applications_resnet50) if entry[0] != "conv5_block3_3_conv"]
    write_keras2_weights(path, weights)
    with pytest.raises(ModelFileError) as error:
        backbone.load_imagenet_weights(model, path)
    assert path in str(error.value) and "conv5_block3_3_conv" in str(error.value)
