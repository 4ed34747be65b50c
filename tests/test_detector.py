"""load_detector and Detector (issue 15): the spec travels with the file, predict equals the hand-assembled pipeline."""

import cv2
import keras
import numpy as np
import pytest

from keras_retinanet import Detections, load_detector, models
from keras_retinanet.errors import ModelError

from helpers.detector_models import (
    BACKBONE,
    CLASS_NAMES,
    MAX_SIDE,
    MIN_SIDE,
    OWN_THRESHOLD,
    hand_detections,
    make_spec,
    sample_images,
    training_model,
)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The same network saved four ways: training and inference model, .keras and .h5, all with a spec."""
    folder = tmp_path_factory.mktemp("detector")
    training = training_model(make_spec())
    inference = models.convert_model(training, score_threshold=OWN_THRESHOLD)
    paths = {}
    for kind, model in (("training", training), ("inference", inference)):
        for extension in ("keras", "h5"):
            paths[kind, extension] = str(folder / f"{kind}.{extension}")
            model.save(paths[kind, extension])
    return dict(paths=paths, training=training, inference=inference)


@pytest.mark.parametrize("kind", ["training", "inference"])
@pytest.mark.parametrize("extension", ["keras", "h5"])
def test_spec_round_trips_through_load_detector(files, kind, extension):
    detector = load_detector(files["paths"][kind, extension])
    expected = files["inference"].spec if kind == "inference" else make_spec().with_filter(
        nms=True, class_specific_filter=True, nms_threshold=0.5, score_threshold=0.05, max_detections=300
    )
    assert detector.spec == expected
    assert detector.spec.class_names == CLASS_NAMES and detector.spec.backbone == BACKBONE
    assert len(detector.model.outputs) == 3  # an inference model: boxes, scores, labels
    assert detector.notes == []


@pytest.mark.slow
def test_predict_equals_the_hand_assembled_pipeline_on_three_sizes(files):
    images = sample_images()
    detector = load_detector(files["paths"]["inference", "keras"])
    results = detector.predict(images)
    assert isinstance(results, list) and len(results) == 3
    reference = keras.models.load_model(files["paths"]["inference", "h5"])
    for image, result in zip(images, results):
        boxes, scores, labels = hand_detections(reference, image)
        assert len(scores) > 0
        assert result["boxes"].dtype == np.float32 and result["boxes"].shape == (len(scores), 4)
        np.testing.assert_allclose(result["boxes"], boxes, atol=1e-3)
        np.testing.assert_allclose(result["scores"], scores, atol=1e-5)
        np.testing.assert_array_equal(result["labels"], labels)
        assert list(result["names"]) == [CLASS_NAMES[label] for label in labels]
        assert np.all(np.diff(result["scores"]) <= 0) and np.all(result["scores"] > OWN_THRESHOLD)
        # in the image's own pixels: boxes fit in the image, not in the resized network input
        height, width = image.shape[:2]
        assert result["boxes"][:, 2].max() <= width + 1e-3 and result["boxes"][:, 3].max() <= height + 1e-3
    # one image (a path works too) gives one Detections (read as the dict it was: result["scores"]), equal to its
    # entry in the list
    single = detector.predict(images[1])
    assert isinstance(single, Detections) and set(single.keys()) == {"boxes", "scores", "labels", "names", "counts"}
    np.testing.assert_array_equal(single["scores"], results[1]["scores"])


def test_predict_reads_image_files(files, tmp_path):
    image = sample_images()[2]
    path = str(tmp_path / "photo.png")
    cv2.imwrite(path, image)
    detector = load_detector(files["paths"]["inference", "h5"])
    from_file, from_array = detector.predict(path), detector.predict(image)
    np.testing.assert_array_equal(from_file["boxes"], from_array["boxes"])


@pytest.mark.slow
def test_threshold_below_the_models_own_rebuilds_the_filter(files):
    images = sample_images()
    detector = load_detector(files["paths"]["inference", "keras"])
    lower = 0.2
    by_hand = models.convert_model(files["training"], score_threshold=lower)
    for image in images:
        own = detector.predict(image)
        more = detector.predict(image, score_threshold=lower)
        assert len(more["scores"]) > len(own["scores"]) > 0
        assert more["scores"].min() <= OWN_THRESHOLD < own["scores"].min()
        boxes, scores, labels = hand_detections(by_hand, image, threshold=lower)
        np.testing.assert_allclose(more["boxes"], boxes, atol=1e-3)
        np.testing.assert_allclose(more["scores"], scores, atol=1e-5)
        np.testing.assert_array_equal(more["labels"], labels)
    # a threshold above the model's own only filters
    high = detector.predict(images[0], score_threshold=0.8)
    own = detector.predict(images[0])
    np.testing.assert_array_equal(high["scores"], own["scores"][own["scores"] > 0.8])
    # load_detector's score_threshold is the default of predict
    by_default = load_detector(files["paths"]["inference", "keras"], score_threshold=lower).predict(images[0])
    np.testing.assert_array_equal(by_default["scores"], detector.predict(images[0], score_threshold=lower)["scores"])


def test_training_snapshot_converts_itself(files):
    images = sample_images()
    detector = load_detector(files["paths"]["training", "h5"], score_threshold=OWN_THRESHOLD)
    by_hand = models.convert_model(files["training"])
    result = detector.predict(images[0])
    boxes, scores, labels = hand_detections(by_hand, images[0], threshold=OWN_THRESHOLD)
    np.testing.assert_allclose(result["boxes"], boxes, atol=1e-3)
    np.testing.assert_allclose(result["scores"], scores, atol=1e-5)


@pytest.mark.slow
def test_overridden_image_sides_are_used_and_noted(files):
    detector = load_detector(files["paths"]["inference", "keras"], image_min_side=112, image_max_side=160)
    assert (detector.spec.image_min_side, detector.spec.image_max_side) == (112, 160)
    assert any("--image-min-side 112" in note for note in detector.notes)
    image = sample_images()[0]
    reference = keras.models.load_model(files["paths"]["inference", "keras"])
    boxes, scores, _ = hand_detections(reference, image, min_side=112, max_side=160)
    np.testing.assert_allclose(detector.predict(image)["scores"], scores, atol=1e-5)


def test_contradicting_arguments_are_one_line_model_errors(files):
    path = files["paths"]["inference", "keras"]
    with pytest.raises(ModelError) as caught:
        load_detector(path, backbone="resnet101")
    assert "resnet101" in str(caught.value) and "resnet50" in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(ModelError) as caught:
        load_detector(path, class_names=["a", "b", "c"])
    assert "3 classes" in str(caught.value) and "2" in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.slow
def test_a_file_without_spec_is_described_by_the_arguments(files, tmp_path):
    model = models.convert_model(training_model(None), score_threshold=OWN_THRESHOLD)
    model.set_weights(files["inference"].get_weights())
    path = str(tmp_path / "no_spec.h5")
    model.save(path)
    detector = load_detector(path, class_names=["a", "b"], image_min_side=MIN_SIDE, image_max_side=MAX_SIDE)
    assert not detector.from_file and detector.spec.class_names == ("a", "b")
    assert detector.spec.filter["score_threshold"] == OWN_THRESHOLD
    image = sample_images()[1]
    result = detector.predict(image)
    boxes, scores, labels = hand_detections(files["inference"], image)
    np.testing.assert_allclose(result["scores"], scores, atol=1e-5)
    assert list(result["names"]) == [["a", "b"][label] for label in labels]
    defaults = load_detector(path)
    assert defaults.spec.class_names == ("0", "1") and defaults.spec.image_min_side == 800
    with pytest.raises(ModelError):
        load_detector(path, class_names=["a"])


def test_importing_the_package_does_not_import_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys, keras_retinanet; assert 'tensorflow' not in sys.modules; "
        "print(callable(keras_retinanet.load_detector))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "True", result.stderr
