"""Crowded images: the default filter keeps keras-retinanet 1.0.0's detections, in Keras and in every export.

keras-retinanet's ``filter_detections`` takes, per class, every score above the threshold, runs NMS on them
(at most max_detections kept), concatenates the classes in label order and keeps the best max_detections.
``keras_retinanet_filter`` below is that algorithm written again in numpy from its description, and every
check here compares against it. A per-level candidate cap (torchvision's 1,000) must differ on these images:
that is what the tests catch.
"""

import os

import keras
import numpy as np
import pytest

from keras_retinanet import export, layers, load_detector, models
from keras_retinanet.config import DetectorSpec
from keras_retinanet.export.metadata import read_exported_metadata
from keras_retinanet.inference.runtimes import open_runner

BACKBONE = "mobilenet128_0.25"
NUM_CLASSES = 3
SIDE = 256


def iou(box, others):
    """IoU of one box with each of ``others`` (K, 4), in float64, without +1 (keras-retinanet's)."""
    width = np.maximum(0.0, np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]))
    height = np.maximum(0.0, np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]))
    intersection = width * height
    union = (box[2] - box[0]) * (box[3] - box[1]) + (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return intersection / (union - intersection)


def greedy_nms(boxes, scores, max_output, nms_threshold):
    """Indices kept by greedy NMS: best score first, equal scores lower index first; IoU > threshold suppresses."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    kept = []
    for index in order:
        if len(kept) == max_output:
            break
        if not kept or np.all(iou(boxes[index], boxes[kept]) <= nms_threshold):
            kept.append(index)
    return kept


def keras_retinanet_filter(boxes, classification, score_threshold=0.05, nms_threshold=0.5, max_detections=300):
    """keras-retinanet 1.0.0's class-specific filter of one image: (boxes (D, 4), scores (D,), labels (D,))."""
    boxes = np.asarray(boxes, np.float64)
    all_indices, all_labels, all_scores = [], [], []
    for label in range(classification.shape[1]):
        candidates = np.flatnonzero(classification[:, label] > score_threshold)
        kept = candidates[greedy_nms(boxes[candidates], classification[candidates, label], max_detections,
                                     nms_threshold)]  # fmt: skip
        all_indices += list(kept)
        all_labels += [label] * len(kept)
        all_scores += list(classification[kept, label])
    # tf.nn.top_k: the best first, equal values in their order of the concatenation
    order = sorted(range(len(all_scores)), key=lambda i: (-all_scores[i], i))[:max_detections]
    indices = np.asarray([all_indices[i] for i in order], np.int64)
    return boxes[indices], np.asarray([all_scores[i] for i in order]), np.asarray([all_labels[i] for i in order])


def assert_same_detections(boxes, scores, labels, expected, box_tolerance=1e-4, score_tolerance=1e-6):
    """One image's padded outputs equal the expected detections, in the same order."""
    expected_boxes, expected_scores, expected_labels = expected
    count = int(np.sum(labels >= 0))
    assert count == len(expected_labels), f"{count} detections, keras-retinanet's filter gives {len(expected_labels)}"
    np.testing.assert_array_equal(labels[:count], expected_labels)
    np.testing.assert_allclose(scores[:count], expected_scores, rtol=0, atol=score_tolerance)
    np.testing.assert_allclose(boxes[:count], expected_boxes, rtol=0, atol=box_tolerance)
    assert np.all(labels[count:] == -1) and np.all(scores[count:] == -1)


def crowded_level_outputs(num_objects=400, anchors_per_object=4, seed=0):
    """Boxes and scores of three pyramid levels where ``num_objects`` objects each light up several anchors of the
    first level: 1,600 high scores in one level, more than a 1,000-per-level cap lets through.

    Returns:
        boxes (1, N, 4), classification (1, N, C), level sizes.
    """
    rng = np.random.default_rng(seed)
    level_sizes = [6000, 1500, 400]
    total = sum(level_sizes)
    # Background anchors: small boxes scattered over a 2000 px image, low scores (some above 0.05).
    corner = rng.uniform(0, 1960, (total, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(8, 40, (total, 2))], axis=1)
    classification = rng.uniform(0, 0.08, (total, NUM_CLASSES))
    # Objects on a grid (no two overlap), each seen by a few anchors of level 0 with slightly shifted boxes.
    anchors = rng.permutation(level_sizes[0])[: num_objects * anchors_per_object].reshape(num_objects, -1)
    for number, object_anchors in enumerate(anchors):
        x, y = 50.0 * (number % 20) + 10, 50.0 * (number // 20) + 10
        label = number % NUM_CLASSES
        for anchor in object_anchors:
            boxes[anchor] = [x, y, x + 30, y + 30] + rng.uniform(-1.5, 1.5, 4)
            classification[anchor] = rng.uniform(0, 0.05, NUM_CLASSES)
            classification[anchor, label] = rng.uniform(0.6, 0.99)
    return boxes[np.newaxis].astype(np.float32), classification[np.newaxis].astype(np.float32), level_sizes


def filtered(boxes, classification, level_sizes, **options):
    layer = layers.FilterDetections(**options)
    level_anchors = [np.zeros((1, size, 4), np.float32) for size in level_sizes]
    return [np.asarray(output)[0] for output in layer([boxes, classification], level_anchors=level_anchors)]


@pytest.mark.parametrize("max_detections", [300, 1000])
def test_crowded_level_gives_keras_retinanets_detections(max_detections):
    boxes, classification, level_sizes = crowded_level_outputs()
    expected = keras_retinanet_filter(boxes[0], classification[0], max_detections=max_detections)
    assert len(expected[2]) == max_detections  # the scene saturates the output
    assert_same_detections(*filtered(boxes, classification, level_sizes, max_detections=max_detections), expected)
    # All 400 objects are among the detections when there is room for them.
    if max_detections >= 400:
        assert np.sum(expected[1] >= 0.6) == 400


def test_a_per_level_cap_loses_objects_of_a_crowded_level():
    """The opt-in cap gives other detections here: the comparison above would catch it as a default."""
    boxes, classification, level_sizes = crowded_level_outputs()
    expected = keras_retinanet_filter(boxes[0], classification[0], max_detections=1000)
    capped_boxes, capped_scores, capped_labels = filtered(
        boxes, classification, level_sizes, max_detections=1000, max_candidates_per_level=1000
    )
    assert np.sum(capped_scores >= 0.6) < 400 == np.sum(expected[1] >= 0.6)
    with pytest.raises(AssertionError):
        assert_same_detections(capped_boxes, capped_scores, capped_labels, expected)
    # The earlier keyword still sets the cap.
    alias = filtered(boxes, classification, level_sizes, max_detections=1000, candidates_per_level=1000)
    np.testing.assert_array_equal(alias[1], capped_scores)


def test_saturated_scores_and_ties_follow_keras_retinanets_order():
    """Every score above the threshold, many equal: ties go to the lower class, then the lower anchor."""
    rng = np.random.default_rng(3)
    corner = rng.uniform(0, 500, (1, 700, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(5, 60, (1, 700, 2))], axis=2).astype(np.float32)
    classification = rng.choice([0.2, 0.4, 0.6, 0.8], size=(1, 700, NUM_CLASSES)).astype(np.float32)
    expected = keras_retinanet_filter(boxes[0], classification[0], max_detections=150)
    assert_same_detections(*filtered(boxes, classification, [700], max_detections=150), expected)


def test_files_that_stored_the_old_default_cap_load_with_keras_retinanets_filter():
    layer = layers.FilterDetections(max_detections=20)
    old_config = dict(layer.get_config(), candidates_per_level=1000)
    del old_config["max_candidates_per_level"]
    assert layers.FilterDetections.from_config(old_config).max_candidates_per_level is None
    explicit = dict(layer.get_config(), max_candidates_per_level=500)
    assert layers.FilterDetections.from_config(explicit).max_candidates_per_level == 500


def crowded_training_model():
    """A narrow random MobileNet RetinaNet whose classification head scores thousands of anchors above 0.05.

    Random backbone features are tiny, so each head is rescaled by the spread its output has on the image: its
    logits then spread by about 2 around -2.5 (scores from ~0.005 to ~0.9, all different).
    """
    keras.utils.set_random_seed(1)
    model = models.backbone(BACKBONE).retinanet(
        num_classes=NUM_CLASSES, pyramid_feature_size=16, classification_feature_size=16, regression_feature_size=16
    )
    rng = np.random.default_rng(1)
    heads = {"classification_submodel": (-2.5, 2.0), "regression_submodel": (0.0, 0.5)}
    convs = {name: [layer for layer in model.get_layer(name).layers if isinstance(layer, keras.layers.Conv2D)]
             for name in heads}  # fmt: skip
    for name, (final_bias, _) in heads.items():
        for layer in convs[name]:
            kernel, bias = layer.get_weights()
            kernel = rng.normal(0.0, np.sqrt(2.0 / np.prod(kernel.shape[:3])), kernel.shape).astype(np.float32)
            layer.set_weights([kernel, np.full_like(bias, final_bias) if layer is convs[name][-1] else bias])
    regression, classification = model(crowded_image()[np.newaxis])
    logits = np.log(np.asarray(classification) / (1.0 - np.asarray(classification))) + 2.5
    for name, output in (("classification_submodel", logits), ("regression_submodel", np.asarray(regression))):
        # Hidden biases are zero and ReLU commutes with positive scaling: scaling each of the five convs by the
        # fifth root scales the head's output (not its last bias) by the whole factor.
        factor = (heads[name][1] / output.std()) ** (1.0 / len(convs[name]))
        for layer in convs[name]:
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel * factor, bias])
    model.spec = DetectorSpec(backbone=BACKBONE, preprocessing="tf", class_names=("a", "b", "c"),
                              image_min_side=SIDE, image_max_side=SIDE, pyramid_feature_size=16,
                              classification_feature_size=16, regression_feature_size=16)  # fmt: skip
    return model


def crowded_image(seed=5):
    return np.random.default_rng(seed).integers(0, 255, (SIDE, SIDE, 3)).astype(np.float32) / 127.5 - 1.0


@pytest.fixture(scope="module")
def crowded_model():
    """The training model, its default inference model, one preprocessed image and the expected detections."""
    training = crowded_training_model()
    inference = models.convert_model(training)
    images = crowded_image()[np.newaxis]
    parts = keras.Model(
        inference.input, [inference.get_layer("clipped_boxes").output, inference.get_layer("classification").output]
    )
    boxes, classification = (np.asarray(output) for output in parts(images))
    return {"training": training, "inference": inference, "images": images, "boxes": boxes,
            "classification": classification}  # fmt: skip


def test_the_crowded_model_is_crowded(crowded_model):
    """Precondition of the model checks: thousands of candidates, and their choice changes the detections (a random
    network's best scores are spread out, so here it takes a cap of 100 to show it; the crowded level above
    shows it for 1,000)."""
    classification = crowded_model["classification"][0]
    assert np.sum(classification > 0.05) > 5000
    capped = models.convert_model(crowded_model["training"], max_candidates_per_level=100)
    capped_scores = np.asarray(capped(crowded_model["images"])[1])[0]
    default_scores = np.asarray(crowded_model["inference"](crowded_model["images"])[1])[0]
    assert not np.array_equal(capped_scores, default_scores)


def test_converted_model_gives_keras_retinanets_detections(crowded_model):
    boxes, scores, labels = (np.asarray(output)[0] for output in crowded_model["inference"](crowded_model["images"]))
    expected = keras_retinanet_filter(crowded_model["boxes"][0], crowded_model["classification"][0])
    assert len(expected[2]) == 300
    assert_same_detections(boxes, scores, labels, expected)


def test_the_cap_is_stored_and_travels_with_the_file(crowded_model, tmp_path):
    capped = models.convert_model(crowded_model["training"], max_candidates_per_level=1000)
    assert capped.spec.filter["max_candidates_per_level"] == 1000
    path = tmp_path / "capped.keras"
    capped.save(path)
    detector = load_detector(path)
    assert detector.spec.filter["max_candidates_per_level"] == 1000
    # An inference file's filter is rebuilt with what the caller asks for, on the same weights.
    recapped = load_detector(path, max_candidates_per_level=100)
    assert recapped.spec.filter["max_candidates_per_level"] == 100
    expected = models.convert_model(crowded_model["training"], max_candidates_per_level=100)(crowded_model["images"])
    np.testing.assert_array_equal(recapped.model(crowded_model["images"])[1], expected[1])
    # Asked for keras-retinanet's filter again, the detector rebuilds it (an override of the file's setting).
    uncapped = load_detector(crowded_model_file(crowded_model, tmp_path), max_detections=50)
    assert uncapped.spec.filter["max_detections"] == 50
    assert uncapped.spec.filter["max_candidates_per_level"] is None


def crowded_model_file(crowded_model, folder):
    path = os.path.join(folder, "crowded_training.keras")
    if not os.path.exists(path):
        crowded_model["training"].save(path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("export_format", ["savedmodel", "tflite", "onnx"])
def test_exports_give_keras_retinanets_detections(crowded_model, tmp_path, export_format):
    """Each export, run by its own runtime, keeps every detection of the crowded image."""
    if export_format == "onnx":
        pytest.importorskip("tf2onnx")
    suffix = {"savedmodel": "", "tflite": ".tflite", "onnx": ".onnx"}[export_format]
    path = str(tmp_path / f"crowded{suffix}")
    export.export_model(crowded_model["inference"], path, export_format)
    runner = open_runner(path, read_exported_metadata(path))
    boxes, scores, labels = (np.asarray(output)[0] for output in runner.predict_on_batch(crowded_model["images"]))
    expected = keras_retinanet_filter(crowded_model["boxes"][0], crowded_model["classification"][0])
    # The runtimes compute the network with their own kernels: boxes and scores agree to float32 rounding.
    assert_same_detections(boxes, scores, labels, expected, box_tolerance=1e-3, score_tolerance=1e-5)


@pytest.mark.slow
def test_soft_nms_exports_where_the_format_has_it(crowded_model, tmp_path):
    """SavedModel and TFLite run TensorFlow's Soft-NMS; ONNX (which would silently run hard NMS) and keras-retinanet's
    h5 refuse it in one line."""
    soft = models.convert_model(crowded_model["training"], nms_method="soft", soft_nms_sigma=0.5)
    expected = [np.asarray(output)[0] for output in soft(crowded_model["images"])]
    hard_scores = np.asarray(crowded_model["inference"](crowded_model["images"])[1])[0]
    assert not np.allclose(expected[1], hard_scores)
    path = str(tmp_path / "soft.tflite")
    export.export_model(soft, path, "tflite")
    boxes, scores, labels = (np.asarray(t)[0] for t in open_runner(path, read_exported_metadata(path))
                             .predict_on_batch(crowded_model["images"]))  # fmt: skip
    np.testing.assert_array_equal(labels, expected[2])
    np.testing.assert_allclose(scores, expected[1], rtol=0, atol=1e-5)
    np.testing.assert_allclose(boxes, expected[0], rtol=0, atol=1e-3)
    for export_format, name in (("onnx", "soft.onnx"), ("h5-keras2", "soft.h5")):
        with pytest.raises(export.ExportError, match="Soft-NMS"):
            export.export_model(soft, str(tmp_path / name), export_format)
        assert not (tmp_path / name).exists()
