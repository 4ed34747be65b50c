"""A MobileNet file written by keras-retinanet 1.0.0 gives keras-retinanet's outputs here, at odd sizes too.

tests/data/keras_retinanet_mobilenet128_0.25.h5 and its reference outputs were made by keras-retinanet
1.0.0 itself (TensorFlow 2.3.4, Keras 2.4.3) with tests/data/make_keras_retinanet_mobilenet.py. Its
MobileNet pads conv1 with a ((0, 1), (0, 1)) 'conv1_pad' before a 'valid' stride-2 conv, which halves
odd sides rounding down; Keras 3's 'same' conv1 rounds them up and pads (1, 1) there, so a model built
without the file's padding differs on every image with an odd side (and has more anchors on some).
"""

import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_retinanet import models
from keras_retinanet.models.legacy import reader as legacy_reader

DATA = Path(__file__).parent / "data"
MODEL_FILE = DATA / "keras_retinanet_mobilenet128_0.25.h5"
OUTPUTS_FILE = DATA / "keras_retinanet_mobilenet128_0.25_outputs.npz"


@pytest.fixture(scope="module")
def reference():
    with np.load(OUTPUTS_FILE) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def loaded():
    """(training model, the warnings its loading gave), rebuilt from the keras-retinanet file."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = models.load_model(str(MODEL_FILE), backbone_name="mobilenet128_0.25", compile=False)
    return model, [str(warning.message) for warning in caught]


def test_the_file_pads_conv1_as_tensorflow_23_built_it():
    info = legacy_reader.read_legacy_file(MODEL_FILE)
    assert info.backbone_name == "mobilenet_0.25" and info.keras_version.startswith("2.4")
    assert info.mobilenet_conv1_pad
    assert info.paddings["conv1_pad"] == ((0, 1), (0, 1)) and info.padding_consumers["conv1_pad"] == ["conv1"]
    assert info.paddings["conv1"] == "valid"
    # The strided depthwise blocks pad (0, 1) as well, in TensorFlow 2.3 as in Keras 3.
    assert {name: info.paddings[name] for name in ("conv_pad_2", "conv_pad_12")} == {
        "conv_pad_2": ((0, 1), (0, 1)),
        "conv_pad_12": ((0, 1), (0, 1)),
    }
    assert info.padding_consumers["conv_pad_2"] == ["conv_dw_2"] and info.paddings["conv_dw_2"] == "valid"


def test_the_model_is_rebuilt_with_the_files_padding(loaded):
    model, messages = loaded
    assert not [message for message in messages if "conv1_pad" in message]
    pad = model.get_layer("conv1_pad")
    assert isinstance(pad, keras.layers.ZeroPadding2D) and tuple(map(tuple, pad.padding)) == ((0, 1), (0, 1))
    assert model.get_layer("conv1").padding == "valid"
    assert model.get_layer("conv1").input is pad.output
    # 97 rows: (97 + 1 - 3) // 2 + 1 = 48 after conv1 (a 'same' conv1 gives 49).
    trunk = keras.Model(model.inputs, model.get_layer("conv1").output)
    assert tuple(trunk(np.zeros((1, 97, 64, 3), np.float32)).shape) == (1, 48, 32, 8)


def test_outputs_and_detections_are_keras_retinanets_at_odd_and_even_sizes(loaded, reference):
    model, _ = loaded
    inference = models.convert_model(model)
    # One graph for both: the inference model is built on the training model's layers.
    both = keras.Model(model.inputs, list(model.outputs) + list(inference.outputs[:3]))
    shapes = []
    for index in range(int(reference["count"])):
        image = reference[f"image_{index}"]
        shapes.append(image.shape[1:3])
        regression, classification, boxes, scores, labels = [np.asarray(t) for t in both(image, training=False)]
        # Same anchors (a 'same' conv1 gives 3852 instead of 3537 for 127 x 161), same values.
        assert regression.shape == reference[f"regression_{index}"].shape, image.shape
        np.testing.assert_allclose(regression, reference[f"regression_{index}"], rtol=0, atol=2e-5)
        np.testing.assert_allclose(classification, reference[f"classification_{index}"], rtol=0, atol=1e-5)

        count = int((reference[f"scores_{index}"] > -1).sum())
        assert count > 0 and int((scores > -1).sum()) == count, image.shape
        np.testing.assert_allclose(boxes[0, :count], reference[f"boxes_{index}"][0, :count], rtol=0, atol=1e-3)
        # a score is a classification output, which is within 1e-5 above (measured: 9e-7)
        np.testing.assert_allclose(scores[0, :count], reference[f"scores_{index}"][0, :count], rtol=0, atol=1e-5)
        np.testing.assert_array_equal(labels[0, :count], reference[f"labels_{index}"][0, :count])
    assert any(h % 2 for h, _ in shapes) and any(w % 2 for _, w in shapes) and (96, 96) in shapes


# --------------------------------------------------------------------------- sizes keras-retinanet cannot train


def test_trains_mobilenet_where_keras_retinanet_fails():
    """keras-retinanet 1.0.0 cannot train a MobileNet on 100 x 140 images (fizyr/keras-retinanet#839).

    Its targets come from sizes rounded up at every halving (``guess_shapes``: 13x18, 7x9, 4x5, 2x3,
    1x2 -> 325 positions, 2925 anchors) while MobileNet's strided steps round down (50x70, 25x35, then
    12x17, 6x8, 3x4, with P6 2x2 and P7 1x1 rounding up -> 269 positions, 2421 anchors), and its focal loss
    fails with "indices[2422] = [0, 2915] does not index into param shape [1,2421,2]". Here the targets
    are made for the backbone's own feature shapes.
    """
    from keras_retinanet.anchors import anchor_targets_bbox, anchors_for_shape
    from keras_retinanet.checkpoint.optimizer import compile_training_model

    backbone = models.backbone("mobilenet128_0.25")
    model = backbone.retinanet(
        num_classes=2, pyramid_feature_size=16, classification_feature_size=16, regression_feature_size=16
    )
    compile_training_model(model, learning_rate=1e-3, clipnorm=0.001)
    model.run_eagerly = True  # one step: tracing the train function would take longer than the step
    image = np.random.default_rng(5).uniform(0, 255, (100, 140, 3))
    assert len(anchors_for_shape(image.shape)) == 325 * 9  # keras-retinanet's count
    anchors = anchors_for_shape(image.shape, shapes_callback=backbone.feature_shapes)
    assert len(anchors) == (12 * 17 + 6 * 8 + 3 * 4 + 2 * 2 + 1 * 1) * 9 == 2421
    annotations = {"bboxes": np.array([[8.0, 10.0, 60.0, 70.0]]), "labels": np.array([1])}
    regression_target, labels_target = anchor_targets_bbox(anchors, [image], [annotations], num_classes=2)
    assert (labels_target[0, :, -1] == 1).sum() >= 1

    x = backbone.preprocess_image(image[np.newaxis])
    regression, classification = model(x, training=False)
    assert tuple(regression.shape) == (1, 2421, 4) and tuple(classification.shape) == (1, 2421, 2)
    result = model.train_on_batch(x, {"regression": regression_target, "classification": labels_target}, return_dict=True)
    assert all(np.isfinite(value) for value in result.values()) and result["loss"] > 0, result


@pytest.mark.slow
def test_resuming_a_keras_retinanet_mobilenet_file_trains_at_odd_sizes(tmp_path):
    # 127x161: both sides 3 more than a multiple of 4, where a conv1 that rounds up gives 3852 anchors and the
    # file's 'conv1_pad' + 'valid' conv1 3537 (the reference outputs above): the targets must count the latter.
    from keras_retinanet.bin import train
    import cv2

    rows = []
    for index, (label, box) in enumerate([("a", (10, 20, 60, 80)), ("b", (50, 30, 120, 100))]):
        image = np.full((127, 161, 3), 30, dtype=np.uint8)
        image[box[1] : box[3], box[0] : box[2]] = 220
        cv2.imwrite(str(tmp_path / f"{index}.png"), image)
        rows.append(f"{index}.png,{box[0]},{box[1]},{box[2]},{box[3]},{label}\n")
    (tmp_path / "annotations.csv").write_text("".join(rows))
    (tmp_path / "classes.csv").write_text("a,0\nb,1\n")
    backbone = models.backbone("mobilenet128_0.25")
    assert backbone.follow_model_padding(models.load_model(str(MODEL_FILE), backbone_name="mobilenet128_0.25"))
    assert sum(int(np.prod(shape)) for shape in backbone.feature_shapes((127, 161))) * 9 == 3537

    history = train.main([
        "--snapshot", str(MODEL_FILE), "--backbone", "mobilenet128_0.25", "--no-resize", "--batch-size", "1",
        "--steps", "2", "--epochs", "1", "--no-evaluation", "--workers", "0", "--run-dir", str(tmp_path / "run"),
        "csv", str(tmp_path / "annotations.csv"), str(tmp_path / "classes.csv"),
    ])  # fmt: skip
    assert np.isfinite(history.history["loss"]).all()
