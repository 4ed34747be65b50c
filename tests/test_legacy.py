"""Loading keras-retinanet (Keras 2) .h5 files.

The files are written here with h5py in the layout of a real keras-retinanet 1.0.0
ResNet50 snapshot (tests/data/fizyr_resnet50_train_h5_layout.json: every layer name in
order, every weight name and shape), with narrow heads and few classes so that the
tests stay fast, and random weights that are then checked one by one.
"""

import json
import os
import re
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_retinanet import models
from keras_retinanet.bin import convert_model
from keras_retinanet.errors import ModelFileError
from keras_retinanet.models.legacy.builder import model_layer_names_of_stored
from keras_retinanet.models.legacy.reader import backbone_matches, detect_backbone, read_legacy_file
from keras_retinanet.checkpoint.storage import decode_texts

from helpers.legacy_files import application_snapshot_layout, inference_additions, write_keras2_h5

LAYOUT = json.loads((Path(__file__).parent / "data" / "fizyr_resnet50_train_h5_layout.json").read_text())
FULL = {"num_classes": 80, "num_anchors": 9, "pyramid": 256, "classification": 256, "regression": 256}
SMALL = {"num_classes": 3, "num_anchors": 9, "pyramid": 32, "classification": 16, "regression": 16}


# --------------------------------------------------------------------------- writing legacy files


def head_shape(layer, weight_name, shape, sizes):
    """The shape a weight of the layout gets with other head sizes (backbone shapes stay)."""
    shape = list(shape)
    is_kernel = weight_name.endswith("kernel:0")
    if re.fullmatch(r"C\d_reduced|P\d", layer):
        # FPN convs: every 256 is the pyramid width; inputs from C3..C5 keep theirs.
        return [sizes["pyramid"] if s == 256 else s for s in shape]
    if layer in ("regression_submodel", "classification_submodel"):
        kind = "regression" if layer.startswith("regression") else "classification"
        width = sizes[kind]
        sublayer = weight_name.split("/")[0]
        final = sublayer == f"pyramid_{kind}"
        outputs = sizes["num_anchors"] * (4 if kind == "regression" else sizes["num_classes"])
        if not is_kernel:
            return [outputs if final else width]
        inputs = sizes["pyramid"] if sublayer.endswith("_0") else width
        return [3, 3, inputs, outputs if final else width]
    return shape


def legacy_layout(sizes, legacy_padding=False):
    """(layer names, {layer: [(weight name, shape)]}) of a keras-retinanet ResNet50 snapshot."""
    names = list(LAYOUT["layer_names"])
    if legacy_padding:
        names.insert(names.index("conv1"), "padding_conv1")
    weights = {
        layer: [(w, head_shape(layer, w, s, sizes)) for w, s in LAYOUT["weights"].get(layer, [])] for layer in names
    }
    return names, weights


def random_weights(weights, seed=0):
    """Random arrays for a layout; BatchNorm variances positive so outputs stay finite."""
    rng = np.random.default_rng(seed)
    values = {}
    for layer, entries in weights.items():
        values[layer] = []
        for name, shape in entries:
            if "moving_variance" in name:
                array = rng.uniform(0.5, 1.5, size=shape).astype(np.float32)
            else:
                array = (rng.standard_normal(size=shape, dtype=np.float32) * 0.05).astype(np.float32)
            values[layer].append((name, array))
    return values


@pytest.fixture(scope="module")
def small_snapshot(tmp_path_factory):
    """A small keras-retinanet ResNet50 training snapshot and the arrays written to it."""
    path = tmp_path_factory.mktemp("legacy") / "resnet50_csv_01.h5"
    names, weights = legacy_layout(SMALL)
    values = random_weights(weights)
    training_config = {
        "loss": {"regression": "_smooth_l1", "classification": "_focal"},
        "optimizer_config": {"class_name": "Adam", "config": {"learning_rate": 3e-5, "clipnorm": 0.001}},
    }
    write_keras2_h5(path, names, values, training_config=training_config)
    return path, values


def stored_values_by_layer(values):
    """{'conv1': [arrays]} for top-level layers and {'regression_submodel/pyramid_regression_0': [...]}."""
    result = {}
    for layer, entries in values.items():
        for name, array in entries:
            key = layer if "_submodel" not in layer else f"{layer}/{name.split('/')[0]}"
            result.setdefault(key, []).append(array)
    return result


def model_values_by_layer(model):
    result = {}
    for layer in model.layers:
        if hasattr(layer, "layers"):
            for sublayer in layer.layers:
                if sublayer.weights:
                    result[f"{layer.name}/{sublayer.name}"] = sublayer.get_weights()
        elif layer.weights:
            result[layer.name] = layer.get_weights()
    return result


def num_anchors_for(side, levels=(3, 4, 5, 6, 7), per_position=9):
    """Anchors of a square image: feature side (s + 2^l - 1) // 2^l per level."""
    return sum(((side + 2**level - 1) // 2**level) ** 2 * per_position for level in levels)


# --------------------------------------------------------------------------- tests


def test_layout_helper_reproduces_the_real_snapshot_at_full_size():
    """The shape rewriting used for small files is the identity at keras-retinanet's sizes."""
    names, weights = legacy_layout(FULL)
    assert names == LAYOUT["layer_names"]
    for layer in names:
        assert [list(s) for _, s in weights[layer]] == [s for _, s in LAYOUT["weights"].get(layer, [])]
    total = sum(int(np.prod(s)) for entries in weights.values() for _, s in entries)
    assert total == 38_021_812  # the snapshot's parameter count (REFERENCE.md)


def test_training_snapshot_loads_weight_by_weight(small_snapshot, tmp_path):
    path, values = small_snapshot
    info = read_legacy_file(path)
    assert (info.backbone_name, info.num_classes, info.num_anchors) == ("resnet50", 3, 9)
    assert info.pyramid_levels == [3, 4, 5, 6, 7]
    assert (info.pyramid_feature_size, info.classification_feature_size, info.regression_feature_size) == (32, 16, 16)
    assert not info.is_inference and not info.legacy_padding

    model = models.load_model(str(path), backbone_name="resnet50")
    expected = stored_values_by_layer(values)
    loaded = model_values_by_layer(model)
    assert set(loaded) == set(expected)
    for key, arrays in expected.items():
        assert len(loaded[key]) == len(arrays), key
        for got, want in zip(loaded[key], arrays):
            np.testing.assert_array_equal(got, want, err_msg=key)
    # compile=True: set up as keras-retinanet's train.py did, with the file's learning rate
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert float(model.optimizer.learning_rate) == pytest.approx(3e-5)

    image = np.random.default_rng(1).uniform(-100, 100, size=(1, 64, 64, 3)).astype(np.float32)
    regression, classification = [np.asarray(t) for t in model(image, training=False)]
    assert regression.shape == (1, num_anchors_for(64), 4)
    assert classification.shape == (1, num_anchors_for(64), 3)

    # retinanet-convert-model old.h5 new.keras: the result loads with plain Keras.
    converted = tmp_path / "converted.keras"
    convert_model.main([str(path), str(converted), "--max-detections", "20"])
    reloaded = keras.models.load_model(converted, compile=False)
    assert reloaded.get_layer("filtered_detections").max_detections == 20
    submodel = reloaded.get_layer("classification_submodel")
    for (name, want), layer_name in zip(values["classification_submodel"][::2], [f"pyramid_classification_{i}" for i in range(4)] + ["pyramid_classification"]):
        assert name == f"{layer_name}/kernel:0"
        np.testing.assert_array_equal(submodel.get_layer(layer_name).get_weights()[0], want)
    np.testing.assert_array_equal(reloaded.get_layer("res5c_branch2c").get_weights()[0], values["res5c_branch2c"][0][1])
    boxes, scores, labels = [np.asarray(t) for t in reloaded(image, training=False)]
    assert boxes.shape == (1, 20, 4) and labels.dtype == np.int32


def test_keras_resnet_010_conv1_padding_is_rebuilt(tmp_path):
    path = tmp_path / "resnet50_coco_best_v2.1.0.h5"
    names, weights = legacy_layout(SMALL, legacy_padding=True)
    values = random_weights(weights, seed=3)
    write_keras2_h5(path, names, values, keras_version="2.1.3")
    info = read_legacy_file(path)
    assert info.legacy_padding

    model = models.load_model(str(path), backbone_name="resnet50", compile=False)
    assert model.get_layer("padding_conv1").padding == ((3, 3), (3, 3))
    conv1 = keras.Model(model.inputs, model.get_layer("conv1").output)
    image = np.random.default_rng(2).uniform(-100, 100, size=(1, 64, 64, 3)).astype(np.float32)
    kernel = values["conv1"][0][1]
    padded = np.pad(image, ((0, 0), (3, 3), (3, 3), (0, 0)))
    want = tf.nn.conv2d(padded, kernel, strides=2, padding="VALID").numpy()
    got = np.asarray(conv1(image, training=False))
    assert got.shape == want.shape == (1, 32, 32, 64)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)
    # 'same' padding (2 before, 3 after) shifts the output: the check above can tell them apart.
    same = tf.nn.conv2d(image, kernel, strides=2, padding="SAME").numpy()
    assert np.abs(same - want).max() > 1.0


def test_inference_model_options_and_anchors_are_read_back(tmp_path):
    path = tmp_path / "resnet50_inference.h5"
    sizes = dict(SMALL, num_anchors=6, num_classes=2)
    names, weights = legacy_layout(sizes)
    values = random_weights(weights, seed=5)
    filter_config = {
        "nms": True,
        "class_specific_filter": False,
        "nms_threshold": 0.4,
        "score_threshold": 0.3,
        "max_detections": 40,
        "parallel_iterations": 8,
        "trainable": True,
        "dtype": "float32",
    }
    extra_names, configs = inference_additions(
        [20, 40, 80, 160, 320], [8, 16, 32, 64, 128], [0.5, 1.0, 2.0], [1.0, 1.5], filter_config, [0.1, 0.1, 0.2, 0.2]
    )
    write_keras2_h5(path, names + extra_names, values, extra_configs=configs)

    model = models.load_model(str(path), backbone_name="resnet50")
    detections = model.get_layer("filtered_detections")
    assert detections.nms is True and detections.class_specific_filter is False
    assert (detections.nms_threshold, detections.score_threshold, detections.max_detections) == (0.4, 0.3, 40)
    for i, (size, stride) in enumerate(zip([20, 40, 80, 160, 320], [8, 16, 32, 64, 128])):
        anchors = model.get_layer(f"anchors_{i}")
        assert (anchors.size, anchors.stride) == (size, stride)
        np.testing.assert_array_equal(anchors.ratios, [0.5, 1.0, 2.0])
        np.testing.assert_array_equal(anchors.scales, [1.0, 1.5])
    np.testing.assert_allclose(model.get_layer("boxes").std, [0.1, 0.1, 0.2, 0.2])

    loaded = model_values_by_layer(model)
    for key, arrays in stored_values_by_layer(values).items():
        for got, want in zip(loaded[key], arrays):
            np.testing.assert_array_equal(got, want, err_msg=key)

    image = np.zeros((1, 64, 64, 3), np.float32)
    boxes, scores, labels = [np.asarray(t) for t in model(image, training=False)]
    assert boxes.shape == (1, 40, 4) and scores.shape == (1, 40) and labels.shape == (1, 40)
    # Anchor 3 of position (0, 0) on level 3 is ratio 1, scale 1.5 (ratio-major order):
    # a 20 * 1.5 = 30 px square centred on (0.5 * 8, 0.5 * 8).
    level3 = model.get_layer("anchors_0")(np.zeros((1, 8, 8, 32), np.float32)).numpy()
    np.testing.assert_allclose(level3[0, 3], [-11.0, -11.0, 19.0, 19.0], atol=1e-4)


def test_backbone_is_told_from_layer_names():
    base = ["res2a_branch2a", "res4b_branch2a"]
    assert detect_backbone(base + ["res4f_branch2a"]) == "resnet50"
    assert detect_backbone(base + ["res4b22_branch2a"]) == "resnet101"
    assert detect_backbone(base + ["res4b22_branch2a", "res4b35_branch2a"]) == "resnet152"
    assert detect_backbone(["block5_conv3"]) == "vgg16"
    assert detect_backbone(["block5_conv3", "block5_conv4"]) == "vgg19"
    assert detect_backbone(["conv5_block1_concat", "conv4_block24_concat"]) == "densenet121"
    assert detect_backbone(["conv5_block1_concat", "conv4_block48_concat"]) == "densenet201"
    assert detect_backbone(["conv_pw_13"], {"conv1": [("conv1/kernel:0", np.zeros((3, 3, 3, 16)))]}) == "mobilenet_0.5"
    assert detect_backbone(["dense_1"]) is None
    assert backbone_matches("mobilenet_0.5", "mobilenet224_0.5")
    assert not backbone_matches("mobilenet_0.5", "mobilenet224_1.0")
    assert backbone_matches("resnet101", "resnet101")
    assert not backbone_matches("resnet50", "resnet101")


def test_backbone_mismatch_is_refused(small_snapshot):
    path, _ = small_snapshot
    with pytest.raises(ModelFileError) as error:
        models.load_model(str(path), backbone_name="resnet101")
    message = str(error.value)
    assert str(path) in message and "resnet50" in message and "resnet101" in message


def test_not_a_retinanet_is_refused(tmp_path):
    path = tmp_path / "dense.h5"
    values = {"dense_1": [("dense_1/kernel:0", np.ones((4, 2), np.float32)), ("dense_1/bias:0", np.zeros(2, np.float32))]}
    write_keras2_h5(path, ["input_1", "dense_1"], values, extra_configs={"dense_1": {"class_name": "Dense", "config": {}}})
    with pytest.raises(ModelFileError) as error:
        models.load_model(str(path))
    message = str(error.value)
    assert str(path) in message and "not a RetinaNet" in message and "dense_1" in message


def test_truncated_file_is_refused(small_snapshot, tmp_path):
    path, _ = small_snapshot
    cut = tmp_path / "cut.h5"
    data = Path(path).read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError) as error:
        models.load_model(str(cut))
    assert str(cut) in str(error.value) and "truncated" in str(error.value)


def test_missing_layer_is_refused(small_snapshot, tmp_path):
    path, values = small_snapshot
    broken = tmp_path / "broken.h5"
    names = [n for n in LAYOUT["layer_names"] if n != "res3a_branch2a"]
    write_keras2_h5(broken, names, {k: v for k, v in values.items() if k != "res3a_branch2a"})
    with pytest.raises(ModelFileError) as error:
        models.load_model(str(broken), compile=False)
    assert str(broken) in str(error.value) and "res3a_branch2a" in str(error.value)


def test_keras3_h5_and_unknown_extension_still_dispatch(tmp_path):
    inputs = keras.Input((4,))
    plain = keras.Model(inputs, keras.layers.Dense(2, name="dense")(inputs))
    path = tmp_path / "plain.h5"
    plain.save(path)
    loaded = models.load_model(str(path), compile=False)
    np.testing.assert_array_equal(loaded.get_layer("dense").get_weights()[0], plain.get_layer("dense").get_weights()[0])

    other = tmp_path / "model.pb"
    other.write_bytes(b"x")
    with pytest.raises(ModelFileError, match="unknown model file type"):
        models.load_model(str(other))
    fake = tmp_path / "fake.keras"
    fake.write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="fake.keras"):
        models.load_model(str(fake))


def test_keras_retinanets_format_has_one_home(small_snapshot, tmp_path):
    """checkpoint tells the kinds of model files apart and loads this package's; keras-retinanet's Keras 2 files
    are models.legacy's (reader, builder, writer), which models.load_model hands them to."""
    from keras_retinanet.checkpoint import load_model_file, model_file_kind, read_spec

    path, _ = small_snapshot
    assert model_file_kind(str(path)) == "keras2" and read_spec(str(path)) is None
    with pytest.raises(ModelFileError, match="a Keras 2 file .keras-retinanet's format.: load it with models.load_model"):
        load_model_file(str(path))
    inputs = keras.Input((4,))
    plain = tmp_path / "plain.h5"
    keras.Model(inputs, keras.layers.Dense(2)(inputs)).save(plain)
    assert model_file_kind(str(plain)) == "keras3"


@pytest.mark.skipif(os.environ.get("KERAS_RETINANET_FULL_LEGACY_TEST") != "1", reason="38M-parameter file; set KERAS_RETINANET_FULL_LEGACY_TEST=1")
def test_full_size_snapshot_loads(tmp_path):
    path = tmp_path / "resnet50_full.h5"
    names, weights = legacy_layout(FULL)
    values = random_weights(weights, seed=7)
    write_keras2_h5(path, names, values)
    model = models.load_model(str(path), compile=False)
    assert model.count_params() == 38_021_812
    final = model.get_layer("classification_submodel").get_layer("pyramid_classification")
    np.testing.assert_array_equal(final.get_weights()[0], values["classification_submodel"][8][1])


# --------------------------------------------------------------------------- keras.applications backbones
#
# Snapshots with a keras.applications trunk, written by helpers.legacy_files.application_snapshot_layout.

IMAGENET_MEAN_RGB = [0.485, 0.456, 0.406]
IMAGENET_STD_RGB = [0.229, 0.224, 0.225]


def assert_weights_loaded(model, expected):
    loaded = model_values_by_layer(model)
    normalization = [key for key in loaded if isinstance(model.get_layer(key.split("/")[0]), keras.layers.Normalization)]
    assert set(loaded) - set(normalization) == set(expected)
    for key, arrays in expected.items():
        assert len(loaded[key]) == len(arrays), key
        for got, want in zip(loaded[key], arrays):
            np.testing.assert_array_equal(got, want, err_msg=key)
    for key in normalization:  # left as the backbone set it: ImageNet statistics after 1/255
        mean, variance = loaded[key][:2]
        np.testing.assert_allclose(mean.ravel(), IMAGENET_MEAN_RGB, rtol=1e-6)
        np.testing.assert_allclose(variance.ravel(), np.square(IMAGENET_STD_RGB), rtol=1e-6)


APPLICATION_CASES = [
    pytest.param("vgg16", "vgg16", id="vgg16"),
    pytest.param("mobilenet128_0.25", "mobilenet_0.25", id="mobilenet128_0.25"),
    pytest.param("mobilenet224_1.0", "mobilenet_1", id="mobilenet224_1.0"),
    # The two deepest trunks take 5-25 s each on a shared CPU.
    pytest.param("densenet121", "densenet121", id="densenet121", marks=pytest.mark.slow),
    pytest.param("EfficientNetB0", "EfficientNetB0", id="EfficientNetB0", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("backbone_name, detected", APPLICATION_CASES)
def test_application_backbone_snapshot_loads_weight_by_weight(backbone_name, detected, tmp_path):
    sizes = dict(SMALL, num_classes=2)
    names, values, configs, expected = application_snapshot_layout(backbone_name, sizes)
    path = tmp_path / f"{backbone_name}_csv_01.h5"
    write_keras2_h5(path, names, values, extra_configs=configs)
    if backbone_name == "densenet121":
        with h5py.File(path, "r") as handle:  # Keras 2's slash names are nested HDF5 groups
            assert decode_texts(handle["model_weights/conv1/conv"].attrs["weight_names"])[0] == "conv1/conv/kernel:0"
            assert "conv1_conv" not in handle["model_weights"]

    info = read_legacy_file(path)
    assert info.backbone_name == detected
    assert (info.num_classes, info.num_anchors, info.pyramid_levels) == (2, 9, [3, 4, 5, 6, 7])
    assert (info.pyramid_feature_size, info.classification_feature_size, info.regression_feature_size) == (32, 16, 16)
    assert not info.is_inference and not info.mobilenet_conv1_pad

    model = models.load_model(str(path), backbone_name=backbone_name, compile=False)
    assert_weights_loaded(model, expected)

    inference = models.convert_model(model, max_detections=10)
    image = models.backbone(backbone_name).preprocess_image(
        np.random.default_rng(1).uniform(0, 255, size=(1, 64, 96, 3))
    )
    boxes, scores, labels = [np.asarray(t) for t in inference(image, training=False)]
    assert boxes.shape == (1, 10, 4) and scores.shape == (1, 10) and labels.dtype == np.int32
    assert np.all(np.isfinite(boxes)) and set(np.unique(labels)) <= {-1, 0, 1}


def test_application_inference_model_loads_with_its_options(tmp_path):
    """A converted keras-retinanet MobileNet: NMS options and anchors from the file, weights as written."""
    sizes = dict(SMALL, num_classes=3, num_anchors=6)
    names, values, configs, expected = application_snapshot_layout("mobilenet128_0.5", dict(sizes, num_anchors=9), seed=4)
    # Head outputs for 6 anchors per position: rewrite the two final kernels and biases.
    for submodel, per_anchor in (("regression_submodel", 4), ("classification_submodel", 3)):
        final = "pyramid_regression" if submodel.startswith("regression") else "pyramid_classification"
        rewritten = []
        for weight_name, array in values[submodel]:
            if weight_name.startswith(final + "/"):
                array = array[..., : 6 * per_anchor].copy()
            rewritten.append((weight_name, array))
        values[submodel] = rewritten
        expected[f"{submodel}/{final}"] = [a for w, a in rewritten if w.startswith(final + "/")]
    filter_config = {"nms": True, "class_specific_filter": True, "nms_threshold": 0.3, "score_threshold": 0.2, "max_detections": 25}
    extra_names, extra_configs = inference_additions(
        [24, 48, 96, 192, 384], [8, 16, 32, 64, 128], [0.5, 1.0, 2.0], [1.0, 1.4], filter_config, [0.2] * 4
    )
    path = tmp_path / "mobilenet_inference.h5"
    write_keras2_h5(path, names + extra_names, values, extra_configs=dict(configs, **extra_configs))

    info = read_legacy_file(path)
    assert info.is_inference and info.backbone_name == "mobilenet_0.5"
    assert (info.num_classes, info.num_anchors) == (3, 6)
    model = models.load_model(str(path), backbone_name="mobilenet160_0.5")
    detections = model.get_layer("filtered_detections")
    assert (detections.nms_threshold, detections.score_threshold, detections.max_detections) == (0.3, 0.2, 25)
    assert [model.get_layer(f"anchors_{i}").size for i in range(5)] == [24, 48, 96, 192, 384]
    loaded = model_values_by_layer(model)
    for key, arrays in expected.items():
        for got, want in zip(loaded[key], arrays):
            np.testing.assert_array_equal(got, want, err_msg=key)
    image = np.random.default_rng(2).uniform(-1, 1, size=(1, 64, 64, 3)).astype(np.float32)
    boxes, scores, labels = [np.asarray(t) for t in model(image, training=False)]
    assert boxes.shape == (1, 25, 4) and labels.shape == (1, 25)

    with pytest.raises(ModelFileError) as error:
        models.load_model(str(path), backbone_name="mobilenet160_0.25")
    assert "mobilenet_0.5" in str(error.value)


def test_keras22_mobilenet_conv1_pad_warns_and_matches_on_even_sizes(tmp_path):
    """keras_applications <= 1.0.8 padded (0, 1) before a 'valid' conv1: equal to 'same' on even sizes."""
    names, values, configs, _ = application_snapshot_layout("mobilenet128_0.25", dict(SMALL, num_classes=2), seed=6)
    names.insert(names.index("conv1"), "conv1_pad")
    configs["conv1_pad"] = {"class_name": "ZeroPadding2D", "config": {"padding": [[0, 1], [0, 1]]}}
    path = tmp_path / "mobilenet_keras22.h5"
    write_keras2_h5(path, names, values, extra_configs=configs, keras_version="2.2.4")
    assert read_legacy_file(path).mobilenet_conv1_pad
    with pytest.warns(UserWarning, match="conv1_pad"):
        model = models.load_model(str(path), backbone_name="mobilenet128_0.25", compile=False)
    conv1 = keras.Model(model.inputs, model.get_layer("conv1").output)
    image = np.random.default_rng(3).uniform(-1, 1, size=(1, 32, 48, 3)).astype(np.float32)
    padded = np.pad(image, ((0, 0), (0, 1), (0, 1), (0, 0)))
    want = tf.nn.conv2d(padded, values["conv1"][0][1], strides=2, padding="VALID").numpy()
    np.testing.assert_allclose(np.asarray(conv1(image)), want, rtol=1e-5, atol=1e-5)


def test_efficientnet_file_missing_a_trunk_layer_names_it(tmp_path):
    names, values, configs, _ = application_snapshot_layout("EfficientNetB0", dict(SMALL, num_classes=2), seed=8)
    del values["top_bn"]
    path = tmp_path / "effnet_broken.h5"
    write_keras2_h5(path, names, values, extra_configs=configs)
    with pytest.raises(ModelFileError) as error:
        models.load_model(str(path), backbone_name="EfficientNetB0", compile=False)
    message = str(error.value)
    assert str(path) in message and "top_bn" in message and "normalization" not in message


def test_stored_names_translate_only_when_not_already_model_names():
    inputs = keras.Input((4,))
    x = keras.layers.Dense(2, name="C3_reduced")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="conv1_conv")(x))
    densenet = models.backbone("densenet121")
    assert model_layer_names_of_stored(model, ["conv1/conv", "C3_reduced"], densenet) == {
        "conv1/conv": "conv1_conv",
        "C3_reduced": "C3_reduced",
    }
    # MobileNetV3's translation lower-cases; names the model has are left alone.
    mobilenetv3 = models.backbone("mobilenetv3small")
    assert model_layer_names_of_stored(model, ["C3_reduced"], mobilenetv3) == {"C3_reduced": "C3_reduced"}
    assert model_layer_names_of_stored(model, ["conv1/conv"], None) == {"conv1/conv": "conv1/conv"}
