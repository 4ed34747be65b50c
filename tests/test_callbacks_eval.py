"""Evaluation callbacks (keras_retinanet.callbacks.eval.Evaluate, keras_retinanet.callbacks.coco.CocoEval)."""

import glob
import logging
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_retinanet.callbacks import RedirectModel
from keras_retinanet.callbacks.coco import CocoEval
from keras_retinanet.callbacks.eval import Evaluate
from keras_retinanet.evaluation import COCO_STAT_NAMES
from helpers.evaluation_doubles import HAND_DETECTIONS, A, B, C, InjectedModel, ToyDataset, blank

# The hand-worked image of test_eval plus one 'square' annotation that the 0.95 square detection finds exactly:
# circle AP 5/9 over 3 annotations, square AP 1 over 1.
SQUARE = (5, 45, 15, 55)
UNWEIGHTED = (5 / 9 + 1) / 2
WEIGHTED = (3 * 5 / 9 + 1 * 1) / 4


def two_class_dataset():
    return ToyDataset(
        [blank(64, 96)], [([A, B, C, SQUARE], [0, 0, 0, 1])], {0: "circle", 1: "square"}, num_classes=3
    )


def model():
    return InjectedModel({(64, 96): HAND_DETECTIONS})


def read_scalars(log_dir):
    """{tag: [(step, value)]} from every event file under log_dir."""
    scalars = {}
    for path in glob.glob(os.path.join(str(log_dir), "**", "events.out.tfevents.*"), recursive=True):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, float(tf.make_ndarray(value.tensor))))
    return scalars


def test_evaluate_sets_map_in_logs():
    callback = Evaluate(two_class_dataset(), verbose=0)
    callback.set_model(model())
    logs = {"loss": 1.0}
    callback.on_epoch_end(0, logs)
    assert logs["mAP"] == pytest.approx(UNWEIGHTED)
    assert logs["loss"] == 1.0
    assert callback.average_precisions[0] == (pytest.approx(5 / 9), 3.0)


def test_evaluate_weighted_average():
    callback = Evaluate(two_class_dataset(), weighted_average=True, verbose=0)
    callback.set_model(model())
    logs = {}
    callback.on_epoch_end(0, logs)
    assert logs["mAP"] == pytest.approx(WEIGHTED)


def test_evaluate_prints_per_class_table(capsys):
    callback = Evaluate(two_class_dataset(), verbose=1)
    callback.set_model(model())
    callback.on_epoch_end(0, {})
    lines = capsys.readouterr().out.splitlines()
    assert "3 instances of class circle with average precision: 0.5556" in lines
    assert "1 instances of class square with average precision: 1.0000" in lines
    assert "mAP: {:.4f}".format(UNWEIGHTED) in lines


def test_evaluate_writes_map_to_tensorboard(tmp_path):
    callback = Evaluate(two_class_dataset(), tensorboard=str(tmp_path / "logs"), verbose=1)
    callback.set_model(model())
    callback.on_epoch_end(0, {})
    callback.on_epoch_end(1, {})
    scalars = read_scalars(tmp_path / "logs")
    assert [step for step, _ in scalars["mAP"]] == [0, 1]
    assert [value for _, value in scalars["mAP"]] == pytest.approx([UNWEIGHTED] * 2)
    assert scalars["AP_circle"][0][1] == pytest.approx(5 / 9)
    # One writer for the whole run: one event file.
    assert len(glob.glob(str(tmp_path / "logs" / "events.out.tfevents.*"))) == 1


def test_evaluate_through_redirect_model_in_fit():
    # fit trains a trivial model; RedirectModel makes the callback evaluate the injected detection model, and
    # the mAP it puts in the logs reaches the History like any metric.
    trained = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    trained.compile(optimizer="sgd", loss="mse")
    evaluation = RedirectModel(Evaluate(two_class_dataset(), verbose=0), model())
    history = trained.fit(
        np.zeros((4, 2), np.float32), np.zeros((4, 1), np.float32), epochs=2, verbose=0, callbacks=[evaluation]
    )
    assert history.history["mAP"] == pytest.approx([UNWEIGHTED] * 2)


def test_coco_eval_callback_logs_the_12_stats(tmp_path):
    perfect = {(64, 96): [(*box, 1.0, label) for box, label in zip([A, B, C, SQUARE], [0, 0, 0, 1])]}
    callback = CocoEval(two_class_dataset(), tensorboard=str(tmp_path / "logs"), output_dir=str(tmp_path), verbose=0)
    callback.set_model(InjectedModel(perfect))
    logs = {}
    callback.on_epoch_end(4, logs)
    assert sorted(logs) == sorted(COCO_STAT_NAMES + ("mAP",))
    assert logs["AP @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]"] == pytest.approx(1.0)
    assert logs["AP @[ IoU=0.50:0.95 | area= large | maxDets=100 ]"] == -1.0  # no large box
    scalars = read_scalars(tmp_path / "logs")
    assert scalars["AP @[ IoU=0.50      | area=   all | maxDets=100 ]"] == [(4, pytest.approx(1.0))]
    assert os.path.exists(tmp_path / "dataset_bbox_results.json")


def test_coco_eval_callback_logs_map_as_ap_50_95_for_best_snapshot_and_early_stopping():
    # The hand-worked detections: AP@[.5:.95] is neither 0 nor 1, and differs from AP@.5, so mAP must be
    # the first stat and no other.
    callback = CocoEval(two_class_dataset(), output_dir=None, verbose=0)
    callback.set_model(model())
    logs = {}
    callback.on_epoch_end(0, logs)
    ap_50_95 = logs["AP @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]"]
    assert 0.0 < ap_50_95 < 1.0
    assert ap_50_95 != logs["AP @[ IoU=0.50      | area=   all | maxDets=100 ]"]
    assert logs["mAP"] == ap_50_95 == callback.stats[0]
    # the run record's AP/<class> columns: both classes have annotations, so COCO's headline is their mean
    per_class = callback.class_average_precisions
    assert sorted(per_class) == ["circle", "square"]
    assert (per_class["circle"] + per_class["square"]) / 2 == pytest.approx(ap_50_95)
    assert per_class["circle"] != per_class["square"]

    # In fit, the 'mAP' the snapshot and EarlyStopping monitor reaches them as for Evaluate.
    trained = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    trained.compile(optimizer="sgd", loss="mse")
    early_stopping = keras.callbacks.EarlyStopping(monitor="mAP", mode="max", patience=5)
    evaluation = RedirectModel(CocoEval(two_class_dataset(), output_dir=None, verbose=0), model())
    history = trained.fit(
        np.zeros((4, 2), np.float32), np.zeros((4, 1), np.float32), epochs=2, verbose=0,
        callbacks=[evaluation, early_stopping],
    )
    assert history.history["mAP"] == pytest.approx([ap_50_95] * 2)
    assert early_stopping.best == pytest.approx(ap_50_95)


def test_tensorboard_argument_of_wrong_type_is_refused():
    callback = Evaluate(two_class_dataset(), tensorboard=42, verbose=0)
    callback.set_model(model())
    with pytest.raises(TypeError, match="tensorboard must be"):
        callback.on_epoch_end(0, {})


def test_evaluate_accepts_a_keras_tensorboard_callback(tmp_path):
    # As in keras-retinanet's train script: the TensorBoard callback is passed and its log_dir is used.
    tensorboard = keras.callbacks.TensorBoard(log_dir=str(tmp_path / "tb"))
    callback = Evaluate(two_class_dataset(), tensorboard=tensorboard, verbose=0)
    callback.set_model(model())
    callback.on_epoch_end(2, {})
    assert read_scalars(tmp_path / "tb")["mAP"] == [(2, pytest.approx(UNWEIGHTED))]


def test_early_stopping_says_why_it_ended_the_run(caplog):
    from keras_retinanet.callbacks.snapshot import callback_state
    from keras_retinanet.callbacks.training_run import ExplainedEarlyStopping

    model = keras.Sequential([keras.layers.Input((1,)), keras.layers.Dense(1)])
    model.stop_training = False  # as fit sets it
    stopper = ExplainedEarlyStopping(monitor="mAP", patience=5, mode="max", min_delta=0.01)
    stopper.set_model(model)
    stopper.set_params({"epochs": 50})
    stopper.on_train_begin()
    # The first epoch sets the best (0.001); none of the next five beats it by 0.01: the sixth stops the run.
    for epoch, value in enumerate([0.001, 0.002, 0.004, 0.003, 0.008, 0.009]):
        assert not model.stop_training
        stopper.on_epoch_end(epoch, {"mAP": value})
    assert model.stop_training
    with caplog.at_level(logging.INFO, logger="keras_retinanet"):
        stopper.on_train_end()
    assert "Stopped early after epoch 6 of 50: the mAP did not improve by 0.01 in 5 epochs" in caplog.text
    assert set(callback_state(stopper)) == {"wait", "best", "best_epoch"}  # resumable as Keras' own
