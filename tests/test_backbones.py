"""Backbones beyond ResNet: VGG, MobileNet (v1, v2, v3), DenseNet and EfficientNet.

Images are 69x71: odd sizes make the trunks' rounding visible. Three patterns occur, worked
out by hand from the layers' padding (s -> s // 2 is 'floor', s -> (s + 1) // 2 is 'ceil';
P6 and P7 are 'same' stride-2 convs and round up):

- all floor (VGG's 'valid' pooling, EfficientNet's (k//2 - 1, k//2) padding):
  69 -> 34 -> 17 -> 8 -> 4 -> 2, 71 -> 35 -> 17 -> 8 -> 4 -> 2: C3 8x8, C4 4x4, C5 2x2, P6 1x1, P7 1x1
  -> (64 + 16 + 4 + 1 + 1) * 9 = 774 anchors;
- ceil then floor (MobileNets: a 'same' stem conv):
  69 -> 35 -> 17 -> 8 -> 4 -> 2, 71 -> 36 -> 18 -> 9 -> 4 -> 2: C3 8x9 -> (72 + 16 + 4 + 1 + 1) * 9 = 846;
- ceil, ceil, then floor (DenseNet: padded 7x7 conv and 3x3 pool, then 'valid' 2x2 average pools):
  69 -> 35 -> 18 -> 9 -> 4 -> 2, 71 -> 36 -> 18 -> 9 -> 4 -> 2: C3 9x9 -> (81 + 16 + 4 + 1 + 1) * 9 = 927.
(ResNet's rounding, all ceil, would give (81 + 25 + 9 + 4 + 1) * 9 = 1080.)
"""

import re

import h5py
import keras
import numpy as np
import pytest

from keras_retinanet import losses, models
from keras_retinanet.errors import ModelError, ModelFileError
from keras_retinanet.models.densenet import DenseNetBackbone
from keras_retinanet.models.effnet import EfficientNetBackbone
from keras_retinanet.models.mobilenet import MobileNetBackbone, MobileNetV2Backbone, MobileNetV3Backbone
from keras_retinanet.models.vgg import VGGBackbone
from keras_retinanet.anchors import anchor_targets_bbox, anchors_for_shape
from keras_retinanet.utils.model import freeze

NARROW = {"pyramid_feature_size": 32, "classification_feature_size": 16, "regression_feature_size": 16}
IMAGE_SHAPE = (69, 71, 3)
ALL_FLOOR = {"C3": (8, 8), "C4": (4, 4), "C5": (2, 2), "P6": (1, 1), "P7": (1, 1), "anchors": 774}
CEIL_FLOOR = {"C3": (8, 9), "C4": (4, 4), "C5": (2, 2), "P6": (1, 1), "P7": (1, 1), "anchors": 846}
CEIL_CEIL_FLOOR = {"C3": (9, 9), "C4": (4, 4), "C5": (2, 2), "P6": (1, 1), "P7": (1, 1), "anchors": 927}
EXPECTED_SHAPES = {
    VGGBackbone: ALL_FLOOR,
    EfficientNetBackbone: ALL_FLOOR,
    MobileNetBackbone: CEIL_FLOOR,
    MobileNetV2Backbone: CEIL_FLOOR,
    MobileNetV3Backbone: CEIL_FLOOR,
    DenseNetBackbone: CEIL_CEIL_FLOOR,
}

# Every name keras-retinanet accepted, and the new ones.
MOBILENET_NAMES = [f"mobilenet{s}_{a}" for s in (128, 160, 192, 224) for a in ("0.25", "0.5", "0.75", "1.0")]
KERAS_RETINANET_NAMES = (
    ["vgg16", "vgg19"]
    + MOBILENET_NAMES
    + ["densenet121", "densenet169", "densenet201"]
    + [f"EfficientNetB{i}" for i in range(8)]
)
NEW_NAMES = ["mobilenetv2"] + [f"mobilenetv2_{a}" for a in ("0.35", "0.5", "0.75", "1.0", "1.3", "1.4")] + [
    f"mobilenetv3{s}{a}" for s in ("small", "large") for a in ("", "_0.75", "_1.0")
]

# Names whose network is built here. The size in 'mobilenet{size}_{alpha}' only names the
# ImageNet file, so each alpha is built once (each size appears once too); '_1.0' aliases
# of MobileNetV2/V3 build the same network as the bare name.
BUILD_NAMES = (
    ["vgg16", "vgg19", "mobilenet128_0.25", "mobilenet160_0.5", "mobilenet192_0.75", "mobilenet224_1.0"]
    + ["mobilenetv2", "mobilenetv2_0.35", "mobilenetv2_0.5", "mobilenetv2_0.75", "mobilenetv2_1.3", "mobilenetv2_1.4"]
    + ["mobilenetv3small", "mobilenetv3small_0.75", "mobilenetv3large", "mobilenetv3large_0.75"]
    + ["densenet121", "EfficientNetB0", "EfficientNetB1", "EfficientNetB2"]
)
# The largest trunks take 10-40 s each just to build on 2 cores.
SLOW_BUILD_NAMES = ["densenet169", "densenet201"] + [f"EfficientNetB{i}" for i in range(3, 8)]

# One network per family for the end-to-end checks, with its C3, C4, C5 layer and channel
# counts worked out from the architectures (keras-retinanet snapshots need the same
# channels: they fix the shapes of C3_reduced, C4_reduced and C5_reduced).
REPRESENTATIVES = {
    # block3-5 of VGG have 256, 512, 512 filters.
    "vgg16": (("block3_pool", "block4_pool", "block5_pool"), (256, 512, 512)),
    # pointwise convs of 256, 512, 1024 filters times alpha 0.25.
    "mobilenet224_0.25": (("conv_pw_5_relu", "conv_pw_11_relu", "conv_pw_13_relu"), (64, 128, 256)),
    # blocks 6 and 13 expand 32 and 96 channels (times 0.35, rounded to 8: 16 and 32) six-fold; the top stays 1280.
    "mobilenetv2_0.35": (("block_6_expand_relu", "block_13_expand_relu", "out_relu"), (96, 192, 1280)),
    # block 3 expands 24 channels 4x, block 8 expands 48 channels 6x; the last 1x1 conv has 576.
    "mobilenetv3small": ((None, None, None), (96, 288, 576)),
    # dense blocks grow by 32 per layer: 128 + 12*32, 256 + 24*32, 512 + 16*32.
    "densenet121": (("conv3_block12_concat", "conv4_block24_concat", "conv5_block16_concat"), (512, 1024, 1024)),
    # blocks 4a and 6a expand 40 and 112 channels 6x; the top conv has 1280.
    "EfficientNetB0": (
        ("block4a_expand_activation", "block6a_expand_activation", "top_activation"),
        (240, 672, 1280),
    ),
}


def random_image(seed=0, shape=IMAGE_SHAPE):
    return np.random.default_rng(seed).uniform(0, 255, shape).astype(np.float32)


def as_numpy(outputs):
    return [np.asarray(keras.ops.convert_to_numpy(t)) for t in outputs]


# --- names ---------------------------------------------------------------------------


def test_every_name_resolves_to_its_family():
    expected = {name: VGGBackbone for name in ("vgg16", "vgg19")}
    expected.update({name: MobileNetBackbone for name in MOBILENET_NAMES})
    expected.update({name: DenseNetBackbone for name in ("densenet121", "densenet169", "densenet201")})
    expected.update({f"EfficientNetB{i}": EfficientNetBackbone for i in range(8)})
    expected.update({name: MobileNetV2Backbone for name in NEW_NAMES if name.startswith("mobilenetv2")})
    expected.update({name: MobileNetV3Backbone for name in NEW_NAMES if name.startswith("mobilenetv3")})
    for name, cls in expected.items():
        assert type(models.backbone(name)) is cls, name
    assert set(KERAS_RETINANET_NAMES + NEW_NAMES) <= set(models.backbone_names())
    # The width is read from the name; the size only names the ImageNet file.
    assert models.backbone("mobilenet160_0.75").alpha == 0.75
    assert models.backbone("mobilenet160_0.75").weights_size == 160
    assert models.backbone("mobilenetv2").alpha == 1.0
    assert models.backbone("mobilenetv2_1.4").alpha == 1.4
    assert models.backbone("mobilenetv3large_0.75").alpha == 0.75
    assert models.backbone("efficientnetb3").depth == "EfficientNetB3"


@pytest.mark.parametrize(
    "name", ["vgg17", "mobilenet224", "mobilenet224_0.3", "mobilenet100_1.0", "mobilenetv2_2.0", "densenet100",
             "EfficientNetB8", "mobilenetv3medium", "inception"]
)
def test_unknown_name_lists_the_valid_ones(name):
    with pytest.raises(ValueError) as error:
        models.backbone(name)
    message = str(error.value)
    assert f"'{name}'" in message
    for valid in ("resnet50", "vgg16", "mobilenet224_1.0", "mobilenetv2", "mobilenetv3small", "densenet121",
                  "EfficientNetB0"):
        assert valid in message



@pytest.mark.parametrize("name", ["vgg99", "mobilenet999_0.5", "densenet7", "EfficientNetB9", "mobilenetv2_9.9",
                                  "mobilenetv3small_0.5", "resnet49"])
def test_unknown_name_within_a_family_is_the_one_line_model_error(name):
    # the same error as 'resnet49': commands print a ModelError as one 'error:' line, a ValueError as a traceback
    with pytest.raises(ModelError) as error:
        models.backbone(name)
    message = str(error.value)
    assert message.startswith(f"unknown backbone '{name}'; valid backbones: resnet101, ")
    assert "\n" not in message


@pytest.mark.parametrize("cls, name", [(VGGBackbone, "vgg99"), (MobileNetBackbone, "mobilenet999_0.5"),
                                       (MobileNetBackbone, "mobilenet224"), (DenseNetBackbone, "densenet7"),
                                       (EfficientNetBackbone, "EfficientNetB9"), (MobileNetV2Backbone, "mobilenetv2_9")])
def test_family_class_refuses_an_unknown_name_with_a_model_error(cls, name):
    with pytest.raises(ModelError, match=f"'{re.escape(name)}' is not a {cls.family} this package builds; choose one of "):
        cls(name)


def test_mobilenet_allowed_backbones_are_keras_retinanet_1_0s():
    # keras-retinanet 1.0.0's list, to which its callers and tests append '_{alpha}'
    assert MobileNetBackbone.allowed_backbones == ["mobilenet128", "mobilenet160", "mobilenet192", "mobilenet224"]
    full_names = [f"{prefix}_{alpha}" for prefix in MobileNetBackbone.allowed_backbones
                  for alpha in ("1.0", "0.75", "0.5", "0.25")]
    assert sorted(MobileNetBackbone.names()) == sorted(full_names) == sorted(MOBILENET_NAMES)
    for name in full_names:
        assert MobileNetBackbone(name).backbone == name
        assert models.backbone(name).alpha == float(name.split("_")[1])
    # backbone_names() lists what backbone() accepts: the full names, never the bare prefixes
    assert set(full_names) <= set(models.backbone_names())
    assert not set(MobileNetBackbone.allowed_backbones) & set(models.backbone_names())

    # keras-retinanet 1.0.0's test_mobilenet builds RetinaNets from these names
    backbone = MobileNetBackbone("mobilenet128_1.0")
    assert (backbone.alpha, backbone.weights_size) == (1.0, 128)
    model = backbone.retinanet(num_classes=2, **NARROW)
    regression, classification = model.compute_output_spec(keras.KerasTensor((1,) + IMAGE_SHAPE))
    assert tuple(classification.shape) == (1, CEIL_FLOOR["anchors"], 2)
    assert tuple(regression.shape) == (1, CEIL_FLOOR["anchors"], 4)


def test_preprocessing_modes():
    image = np.array([[[0.0, 127.5, 255.0]]], dtype=np.float32)  # one BGR pixel
    caffe = image - np.array([103.939, 116.779, 123.68], dtype=np.float32)
    tf_mode = np.array([[[-1.0, 0.0, 1.0]]], dtype=np.float32)
    np.testing.assert_allclose(models.backbone("vgg19").preprocess_image(image), caffe, rtol=1e-6)
    for name in ("mobilenet128_1.0", "mobilenetv2", "mobilenetv3large", "densenet169"):
        np.testing.assert_allclose(models.backbone(name).preprocess_image(image), tf_mode, atol=1e-6)
    # EfficientNet normalises inside the model: raw pixels go in.
    effnet = models.backbone("EfficientNetB0").preprocess_image(image.astype(np.uint8))
    assert effnet.dtype == np.float32
    np.testing.assert_array_equal(effnet, image.astype(np.uint8).astype(np.float32))


@pytest.mark.parametrize("name", ["vgg16", "EfficientNetB5", "mobilenet192_0.5", "mobilenetv2_1.3", "mobilenetv3large",
                                  "densenet201"])
def test_feature_shapes_by_hand(name):
    backbone = models.backbone(name)
    expected = EXPECTED_SHAPES[type(backbone)]
    shapes = backbone.feature_shapes(IMAGE_SHAPE, [3, 4, 5, 6, 7])
    assert [tuple(int(v) for v in s) for s in shapes] == [expected[k] for k in ("C3", "C4", "C5", "P6", "P7")]
    assert len(anchors_for_shape(IMAGE_SHAPE, shapes_callback=backbone.feature_shapes)) == expected["anchors"]
    # Sides divisible by 32 come out the same for every rounding: 64x96 -> 8x12, 4x6, 2x3, 1x2, 1x1.
    assert len(anchors_for_shape((64, 96, 3), shapes_callback=backbone.feature_shapes)) == (96 + 24 + 6 + 2 + 1) * 9


# --- building every network ----------------------------------------------------------


def check_builds_with_anchor_count(name):
    backbone = models.backbone(name)
    model = backbone.retinanet(num_classes=3, **NARROW)
    regression, classification = model.compute_output_spec(keras.KerasTensor((1,) + IMAGE_SHAPE))
    expected = EXPECTED_SHAPES[type(backbone)]["anchors"]
    assert tuple(classification.shape) == (1, expected, 3)
    assert tuple(regression.shape) == (1, expected, 4)


@pytest.mark.parametrize("name", BUILD_NAMES)
def test_builds_with_anchor_count(name):
    check_builds_with_anchor_count(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW_BUILD_NAMES)
def test_large_builds_with_anchor_count(name):
    check_builds_with_anchor_count(name)


# --- training, inference, saving ------------------------------------------------------


def pyramid_input(model, reduced_name):
    """The layer whose output feeds a pyramid layer, and that output's channel count."""
    tensor = model.get_layer(reduced_name).input
    return tensor._keras_history.operation.name, tensor.shape[-1]


# DenseNet-121 and EfficientNet-B0 take 40-140 s here on 2 busy cores; -m "not slow" leaves them out.
HEAVY = {"densenet121", "EfficientNetB0"}


def with_slow_marks(names):
    return [pytest.param(name, marks=pytest.mark.slow) if name in HEAVY else name for name in sorted(names)]


@pytest.mark.slow
@pytest.mark.parametrize("name", with_slow_marks(REPRESENTATIVES))
def test_train_convert_and_round_trip(name, tmp_path):
    backbone = models.backbone(name)
    model = backbone.retinanet(num_classes=2, **NARROW)
    layer_names, channels = REPRESENTATIVES[name]
    for level, layer_name, channel_count in zip(("C3", "C4", "C5"), layer_names, channels):
        source, found_channels = pyramid_input(model, f"{level}_reduced")
        if layer_name is not None:
            assert source == layer_name
        assert found_channels == channel_count

    image = random_image()
    x = backbone.preprocess_image(image[np.newaxis])
    expected_count = EXPECTED_SHAPES[type(backbone)]["anchors"]
    anchors = anchors_for_shape(IMAGE_SHAPE, shapes_callback=backbone.feature_shapes)
    annotations = {"bboxes": np.array([[8.0, 10.0, 40.0, 50.0]]), "labels": np.array([1])}
    regression_target, labels_target = anchor_targets_bbox(anchors, [image], [annotations], num_classes=2)
    assert (labels_target[0, :, -1] == 1).sum() >= 1

    # One training step; the gradient must reach the first layer of the trunk.
    first = model.get_layer(backbone.imagenet_layer_names(model)[0])
    first_before = [w.copy() for w in first.get_weights()]
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-3),
        loss={"regression": losses.smooth_l1(), "classification": losses.focal()},
        run_eagerly=True,
    )
    result = model.train_on_batch(x, {"regression": regression_target, "classification": labels_target}, return_dict=True)
    assert all(np.isfinite(value) for value in result.values()), result
    assert result["loss"] > 0
    assert any(not np.array_equal(a, b) for a, b in zip(first_before, first.get_weights()))

    # The inference model's anchors are the ones the targets were computed for.
    inference = models.convert_model(model)
    boxes, scores, labels = as_numpy(inference(x))
    assert boxes.shape == (1, 300, 4) and scores.shape == (1, 300) and labels.shape == (1, 300)
    assert labels.dtype == np.int32
    model_anchors = keras.Model(inference.inputs[0], inference.get_layer("anchors").output)(x)
    model_anchors = np.asarray(keras.ops.convert_to_numpy(model_anchors))
    assert model_anchors.shape == (1, expected_count, 4)
    np.testing.assert_allclose(model_anchors[0], anchors, rtol=0, atol=1e-4)

    # Saved and loaded in both formats, the model computes exactly the same.
    reference = as_numpy(model(x, training=False))
    assert reference[1].shape == (1, expected_count, 2)
    for suffix in (".keras", ".h5"):
        path = tmp_path / f"{name}{suffix}"
        model.save(str(path))
        loaded = models.load_model(str(path), backbone_name=name)
        assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
        for expected, found in zip(reference, as_numpy(loaded(x, training=False))):
            np.testing.assert_array_equal(found, expected)


def test_effnet_normalises_like_keras_retinanet():
    """Raw BGR pixels in; the trunk sees (x / 255 - mean) / std (keras-retinanet's 'torch' mode)."""
    backbone = models.backbone("EfficientNetB0")
    model = backbone.retinanet(num_classes=1, **NARROW)
    normalization = [layer for layer in model.layers if isinstance(layer, keras.layers.Normalization)]
    assert len(normalization) == 1
    # Set by the backbone, so neither ImageNet files nor snapshots are asked for it.
    assert backbone.constant_layer_names(model) == [normalization[0].name]
    assert normalization[0].name not in backbone.imagenet_layer_names(model)
    image = random_image(seed=3, shape=(8, 8, 3))
    normalized = keras.Model(model.inputs[0], normalization[0].output)(backbone.preprocess_image(image[np.newaxis]))
    expected = (image / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(np.asarray(normalized)[0], expected, rtol=1e-5, atol=1e-5)


def test_mobilenetv3_has_no_rescaling_inside():
    """MobileNetV3 gets 'tf' preprocessing outside, like the other MobileNets, so nothing rescales inside."""
    model = models.backbone("mobilenetv3small_0.75").retinanet(num_classes=1, **NARROW)
    assert not any(isinstance(layer, keras.layers.Rescaling) for layer in model.layers)


# --- freezing and ImageNet weights ----------------------------------------------------


def keras2_mobilenetv3_name(name):
    """Keras 2's name of a MobileNetV3 layer: 'expanded_conv_1_project_bn' -> 'expanded_conv_1/project/BatchNorm'."""
    top = {"conv": "Conv", "conv_bn": "Conv/BatchNorm", "conv_1": "Conv_1", "conv_1_bn": "Conv_1/BatchNorm"}
    if name in top:
        return top[name]
    match = re.fullmatch(r"(expanded_conv(?:_\d+)?)_(expand|depthwise|project|squeeze_excite_conv(?:_1)?)(_bn)?", name)
    if match is None:
        return name
    block, part, bn = match.groups()
    part = part.replace("squeeze_excite_conv", "squeeze_excite/Conv")
    return f"{block}/{part}" + ("/BatchNorm" if bn else "")


# name -> (keras.applications constructor and kwargs, Keras 2 layer names)
IMAGENET_FILES = {
    "vgg16": (lambda: keras.applications.VGG16(include_top=False, weights=None), lambda n: n),
    "mobilenet224_0.25": (lambda: keras.applications.MobileNet(alpha=0.25, include_top=False, weights=None,
                                                                input_shape=(224, 224, 3)), lambda n: n),
    "mobilenetv2_0.35": (lambda: keras.applications.MobileNetV2(alpha=0.35, include_top=False, weights=None,
                                                                 input_shape=(224, 224, 3)), lambda n: n),
    "mobilenetv3small": (lambda: keras.applications.MobileNetV3Small(include_top=False, weights=None,
                                                                      input_shape=(224, 224, 3)), keras2_mobilenetv3_name),
    # Keras 2 named DenseNet's stem 'conv1/conv', 'conv1/bn'.
    "densenet121": (lambda: keras.applications.DenseNet121(include_top=False, weights=None),
                    lambda n: n.replace("conv1_", "conv1/") if n.startswith("conv1_") else n),
    "EfficientNetB0": (lambda: keras.applications.EfficientNetB0(include_top=False, weights=None), lambda n: n),
}


def write_keras2_weights(path, application, rename):
    """Write ``application``'s weights as Keras 2 wrote ``*_notop.h5`` files (layer_names, weight_names)."""
    stored = {}
    with h5py.File(path, "w") as handle:
        layer_names = []
        for layer in application.layers:
            name = rename(layer.name)
            layer_names.append(name.encode("utf8"))
            group = handle.create_group(name)
            weight_names = [f"{name}/{weight.name}:0" for weight in layer.weights]
            group.attrs["weight_names"] = [w.encode("utf8") for w in weight_names]
            for weight_name, value in zip(weight_names, layer.get_weights()):
                group.create_dataset(weight_name, data=value)
            if layer.weights:
                stored[layer.name] = layer.get_weights()
        handle.attrs["layer_names"] = layer_names
        handle.attrs["backend"] = b"tensorflow"
        handle.attrs["keras_version"] = b"2.4.0"
    return stored


@pytest.mark.parametrize("name", with_slow_marks(IMAGENET_FILES))
def test_freeze_and_imagenet_weights(name, tmp_path):
    backbone = models.backbone(name)
    model = backbone.retinanet(num_classes=2, modifier=freeze, **NARROW)
    trunk = set(backbone.backbone_layer_names(model))
    heads = {"C3_reduced", "C4_reduced", "C5_reduced", "P3", "P4", "P5", "P6", "P7", "regression_submodel",
             "classification_submodel"}
    assert heads.isdisjoint(trunk)
    # --freeze-backbone freezes exactly the trunk.
    frozen = {layer.name for layer in model.layers if not layer.trainable and not isinstance(layer, keras.layers.InputLayer)}
    assert frozen == trunk
    assert all(model.get_layer(head).trainable for head in heads)
    if name == "vgg16":
        # 13 convs and 5 pools; the trainable parameters are the pyramid's and the heads', by hand:
        # C5_reduced 512*32+32, C4_reduced 512*32+32, C3_reduced 256*32+32, P3-P5 and P7 3*3*32*32+32,
        # P6 3*3*512*32+32; regression 3*3*32*16+16 + 3*(3*3*16*16+16) + 3*3*16*36+36,
        # classification the same but 3*3*16*18+18 last.
        assert len(trunk) == 18
        pyramid = 2 * (512 * 32 + 32) + (256 * 32 + 32) + 4 * (9 * 32 * 32 + 32) + (9 * 512 * 32 + 32)
        subnets = 2 * (9 * 32 * 16 + 16 + 3 * (9 * 16 * 16 + 16)) + (9 * 16 * 36 + 36) + (9 * 16 * 18 + 18)
        assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == pyramid + subnets
    if name == "densenet121":
        # stem (pad, conv, bn, relu, pad, pool) + 58 dense layers of 7 + 3 transitions of 4.
        assert len(trunk) == 6 + 58 * 7 + 3 * 4

    # ImageNet weights from a Keras 2 style file load into exactly the trunk.
    make_application, rename = IMAGENET_FILES[name]
    application = make_application()
    path = tmp_path / f"{name}_notop.h5"
    stored = write_keras2_weights(path, application, rename)
    heads_before = {head: [w.copy() for w in model.get_layer(head).get_weights()] for head in heads}
    loaded = backbone.load_imagenet_weights(model, str(path))
    checked = 0
    for layer_name, values in stored.items():
        if layer_name not in trunk:
            continue  # e.g. DenseNet's final 'bn', which RetinaNet does not use
        layer = model.get_layer(layer_name)
        if isinstance(layer, keras.layers.Normalization):
            continue  # EfficientNet's input statistics are fixed, not read from the file
        for expected, found in zip(values, layer.get_weights()):
            np.testing.assert_array_equal(found, expected)
        checked += 1
    assert checked == loaded > 0
    for head, values in heads_before.items():
        for before, after in zip(values, model.get_layer(head).get_weights()):
            np.testing.assert_array_equal(after, before)


def test_imagenet_weights_errors(tmp_path):
    backbone = models.backbone("vgg19")
    model = backbone.retinanet(num_classes=1, **NARROW)

    missing = tmp_path / "absent_notop.h5"
    with pytest.raises(ModelFileError, match="absent_notop.h5"):
        backbone.load_imagenet_weights(model, str(missing))

    not_keras = tmp_path / "not_keras.h5"
    with h5py.File(not_keras, "w") as handle:
        handle.create_dataset("x", data=np.zeros(3))
    with pytest.raises(ModelFileError, match="not_keras.h5"):
        backbone.load_imagenet_weights(model, str(not_keras))

    # VGG16's file lacks VGG19's extra convs (block3_conv4, ...).
    vgg16_file = tmp_path / "vgg16_notop.h5"
    write_keras2_weights(vgg16_file, keras.applications.VGG16(include_top=False, weights=None), lambda n: n)
    with pytest.raises(ModelFileError, match="vgg16_notop.h5") as error:
        backbone.load_imagenet_weights(model, str(vgg16_file))
    assert "block3_conv4" in str(error.value)
    assert "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5" in str(error.value)


def test_imagenet_weights_of_another_width_are_refused(tmp_path):
    backbone = models.backbone("mobilenet128_0.5")
    model = backbone.retinanet(num_classes=1, **NARROW)
    path = tmp_path / "mobilenet_2_5_128_tf_no_top.h5"
    application = keras.applications.MobileNet(alpha=0.25, include_top=False, weights=None, input_shape=(128, 128, 3))
    write_keras2_weights(path, application, lambda n: n)
    with pytest.raises(ModelFileError, match="mobilenet_2_5_128_tf_no_top.h5.*shape"):
        backbone.load_imagenet_weights(model, str(path))


def test_keras2_mobilenetv3_names_map_to_keras3():
    backbone = models.backbone("mobilenetv3large")
    assert backbone.stored_layer_name("Conv/BatchNorm") == "conv_bn"
    assert backbone.stored_layer_name("Conv_1") == "conv_1"
    assert backbone.stored_layer_name("expanded_conv/depthwise/BatchNorm") == "expanded_conv_depthwise_bn"
    assert backbone.stored_layer_name("expanded_conv_4/squeeze_excite/Conv_1") == "expanded_conv_4_squeeze_excite_conv_1"
    assert models.backbone("densenet121").stored_layer_name("conv1/bn") == "conv1_bn"


def test_mobilenetv3_hard_sigmoid_layer_computes_as_keras():
    """The savable hard sigmoid (one layer) gives Keras' MobileNetV3 outputs for the same weights."""
    from keras.src.applications import mobilenet_v3

    from keras_retinanet.models.mobilenet import savable_hard_sigmoid

    original = mobilenet_v3.hard_sigmoid
    options = {"include_top": False, "weights": None, "input_shape": (None, None, 3), "include_preprocessing": False}
    reference = keras.applications.MobileNetV3Small(**options)
    with savable_hard_sigmoid():
        savable = keras.applications.MobileNetV3Small(**options)
    assert mobilenet_v3.hard_sigmoid is original
    by_name = {layer.name: layer for layer in savable.layers if layer.weights}
    for layer in reference.layers:
        if layer.weights:
            by_name[layer.name].set_weights(layer.get_weights())
    x = np.random.default_rng(5).uniform(-1, 1, (1, 69, 71, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(savable(x)), np.asarray(reference(x)), rtol=1e-5, atol=1e-6)
