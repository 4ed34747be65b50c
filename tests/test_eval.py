"""Pascal-VOC evaluation (keras_retinanet.evaluation, keras-retinanet's utils.eval) against APs worked out by hand.

The dataset and model are test doubles of this project's own objects (tests/helpers/evaluation_doubles.py): a
dataset with keras-retinanet's Generator API over numpy images, and a model whose detections are injected per image.
"""

import io
import os

import cv2
import numpy as np
import pytest

from keras_retinanet import evaluation
from keras_retinanet.evaluation.average_precision import _compute_ap
from keras_retinanet.evaluation.detections import _get_detections
from keras_retinanet.utils.colors import label_color
from helpers.evaluation_doubles import InjectedModel, ToyDataset, blank, hand_dataset, hand_model


def test_compute_ap_by_hand():
    recall, precision = np.array([1 / 3, 1 / 3, 2 / 3, 2 / 3]), np.array([1, 0.5, 2 / 3, 0.5])
    assert _compute_ap(recall, precision) == pytest.approx(5 / 9)
    # Everything found at precision 1: the whole square.
    assert _compute_ap(np.array([0.5, 1.0]), np.array([1.0, 1.0])) == pytest.approx(1.0)
    # Only false positives: no area.
    assert _compute_ap(np.array([0.0, 0.0]), np.array([0.0, 0.0])) == 0.0
    # Precision rising later lifts the earlier part of the curve: 0.5 at recall .5 becomes 2/3.
    assert _compute_ap(np.array([0.0, 0.5, 1.0]), np.array([0.0, 0.5, 2 / 3])) == pytest.approx(2 / 3)


def test_evaluate_matches_ap_worked_out_by_hand():
    dataset, model = hand_dataset(), hand_model()
    average_precisions, inference_time, curves = evaluation.evaluate(
        dataset, model, iou_threshold=0.5, score_threshold=0.05, return_curves=True, verbose=0
    )

    assert sorted(average_precisions) == [0, 1]  # label 2 is not a class of the dataset
    ap, num_annotations = average_precisions[0]
    assert ap == pytest.approx(5 / 9)
    assert num_annotations == 3
    assert average_precisions[1] == (0.0, 0.0)
    assert inference_time >= 0.0

    np.testing.assert_allclose(curves[0].precision, [1, 1 / 2, 2 / 3, 1 / 2])
    np.testing.assert_allclose(curves[0].recall, [1 / 3, 1 / 3, 2 / 3, 2 / 3])
    np.testing.assert_allclose(curves[0].scores, [0.9, 0.8, 0.7, 0.6], rtol=1e-6)

    # The model saw the preprocessed image (uint8 40 - 100 = -60) resized twice as large, as one batch.
    (batch,) = model.batches
    assert batch.shape == (1, 128, 192, 3)
    assert batch.dtype == np.float32
    np.testing.assert_allclose(batch, -60.0)


def test_get_detections_scales_boxes_back_and_keeps_best_first():
    all_detections, all_inferences = _get_detections(hand_dataset(), hand_model(), verbose=0)
    circles = all_detections[0][0]
    np.testing.assert_allclose(
        circles,
        [[10, 20, 30, 40, 0.9], [10, 20, 30, 30, 0.8], [44, 20, 64, 40, 0.7], [70, 45, 90, 60, 0.6]],
        rtol=1e-6,
    )
    np.testing.assert_allclose(all_detections[0][1], [[5, 45, 15, 55, 0.95]], rtol=1e-6)
    assert all_detections[0][2] is None  # not a label of the dataset
    assert len(all_inferences) == 1


def test_max_detections_keeps_only_the_best():
    # Only 0.95 (square) and 0.9 (circle = A) survive: circle TP, so precision [1], recall [1/3]: AP 1/3.
    average_precisions, _ = evaluation.evaluate(hand_dataset(), hand_model(), max_detections=2, verbose=0)
    assert average_precisions[0][0] == pytest.approx(1 / 3)


def test_iou_threshold_is_inclusive():
    # A single detection whose IoU with A is exactly 0.5 (top half of A).
    detections = [(10, 20, 30, 30, 0.8, 0)]
    at_half, _ = evaluation.evaluate(hand_dataset(), hand_model(detections), iou_threshold=0.5, verbose=0)
    above_half, _ = evaluation.evaluate(hand_dataset(), hand_model(detections), iou_threshold=0.51, verbose=0)
    # TP at 0.5: precision 1 up to recall 1/3, so AP 1/3. At 0.51 it is a false positive: AP 0.
    assert at_half[0][0] == pytest.approx(1 / 3)
    assert above_half[0][0] == 0.0


def test_detections_are_ranked_over_all_images_and_matched_per_image():
    # Two images, one annotation each at the same place. Image 0: 0.5 on its annotation (TP).
    # Image 1: 0.9 far away (FP), 0.7 on its annotation (TP; being matched in image 0 does not count here).
    # By score: FP TP TP, precision 0, 1/2, 2/3, recall 0, 1/2, 1: AP = 1/2 * 2/3 + 1/2 * 2/3 = 2/3.
    box = (10, 10, 30, 30)
    dataset = ToyDataset(
        [blank(64, 64), blank(64, 80)], [([box], [0]), ([box], [0])], {0: "circle"}
    )
    model = InjectedModel({
        (64, 64): [(*box, 0.5, 0)],
        (64, 80): [(40, 40, 60, 60, 0.9, 0), (*box, 0.7, 0)],
    })
    average_precisions, _, curves = evaluation.evaluate(dataset, model, return_curves=True, verbose=0)
    assert average_precisions == {0: (pytest.approx(2 / 3), 2.0)}
    np.testing.assert_allclose(curves[0].precision, [0, 1 / 2, 2 / 3])
    np.testing.assert_allclose(curves[0].recall, [0, 1 / 2, 1])


def test_mean_average_precision_weighted_and_unweighted():
    average_precisions = {0: (0.5, 2.0), 1: (1.0, 6.0), 2: (0.0, 0.0)}
    weighted, unweighted = evaluation.mean_average_precision(average_precisions)
    assert weighted == pytest.approx((0.5 * 2 + 1.0 * 6) / 8)
    # The class without annotations does not count in the plain mean.
    assert unweighted == pytest.approx((0.5 + 1.0) / 2)
    assert evaluation.mean_average_precision({0: (0.0, 0.0)}) == (0.0, 0.0)


def test_print_evaluation_uses_keras_retinanet_wording():
    out = io.StringIO()
    names = {0: "circle", 1: "square"}
    evaluation.print_evaluation({0: (0.5, 2.0), 1: (1.0, 6.0)}, names.get, inference_time=0.25, num_images=4, file=out)
    assert out.getvalue().splitlines() == [
        "2 instances of class circle with average precision: 0.5000",
        "6 instances of class square with average precision: 1.0000",
        "Inference time for 4 images: 0.2500",
        "mAP using the weighted average of precisions among classes: 0.8750",
        "mAP: 0.7500",
    ]
    out = io.StringIO()
    evaluation.print_evaluation({0: (0, 0)}, names.get, file=out)
    assert out.getvalue().splitlines()[-1] == "No test instances found."


def test_save_path_writes_images_with_annotations_and_detections(tmp_path):
    save_path = tmp_path / "drawn"
    evaluation.evaluate(hand_dataset(), hand_model(), save_path=str(save_path), verbose=0)
    drawn = cv2.imread(str(save_path / "0.png"))
    assert drawn is not None and drawn.shape == (64, 96, 3)
    # The annotation C (never detected above threshold) is outlined in green along its bottom edge ...
    assert tuple(drawn[40, 80]) == (0, 255, 0)
    # ... and the 0.6 detection below it in the circle class colour along its bottom edge.
    assert tuple(drawn[60, 80]) == tuple(label_color(0))
    # The interior of that detection is untouched background.
    assert tuple(drawn[52, 80]) == (40, 40, 40)


def test_precision_recall_plots_are_valid_pngs(tmp_path):
    _, _, curves = evaluation.evaluate(hand_dataset(), hand_model(), return_curves=True, verbose=0)
    names = {0: "circle", 1: "square"}
    paths = evaluation.save_precision_recall_plots(curves, str(tmp_path / "pr"), label_to_name=names.get)
    assert sorted(paths) == [0, 1]
    for path in paths.values():
        assert os.path.basename(path).startswith("precision_recall_")
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        image = cv2.imread(path)
        assert image is not None and image.shape == (360, 480, 3)
        # Something was drawn: not a blank canvas.
        assert image.min() < 128


def test_training_model_outputs_are_refused_clearly():
    class TrainingLikeModel:
        def predict_on_batch(self, batch):
            return [np.zeros((1, 10, 4), np.float32), np.zeros((1, 10, 3), np.float32)]

    with pytest.raises(ValueError, match="convert"):
        evaluation.evaluate(hand_dataset(), TrainingLikeModel(), verbose=0)


def test_evaluate_runs_on_the_real_tiny_inference_model():
    from keras_retinanet import models

    training = models.backbone("resnet50").retinanet(
        num_classes=3, pyramid_feature_size=32, classification_feature_size=16, regression_feature_size=16
    )
    inference = models.convert_model(training)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, size=(64, 64, 3), dtype=np.uint8) for _ in range(2)]
    dataset = ToyDataset(
        images,
        [([(8, 8, 40, 40)], [0]), ([(20, 10, 60, 50), (4, 4, 20, 20)], [1, 2])],
        {0: "a", 1: "b", 2: "c"},
        resize_factor=1.0,
    )
    average_precisions, inference_time = evaluation.evaluate(dataset, inference, verbose=0)
    assert sorted(average_precisions) == [0, 1, 2]
    for ap, _ in average_precisions.values():
        assert 0.0 <= ap <= 1.0
    assert [average_precisions[label][1] for label in range(3)] == [1, 1, 1]
    assert inference_time > 0.0
