"""The modern training recipe's pieces, each against values worked out by hand: the GIoU loss, GroupNorm heads, the
warm-up and cosine schedule, AdamW's decay, the weights' moving average (and that snapshots hold it), the top-down
augmentation and scale jitter, the recipe's configuration and which snapshots stay."""

import math
import os

import keras
import numpy as np
import pytest

from keras_retinanet import losses, models, optimizers
from keras_retinanet.anchors import anchor_targets_bbox, anchor_targets_with_anchors, anchors_for_shape
from keras_retinanet.callbacks.ema import AverageWeightsIn, AverageWeightsOut
from keras_retinanet.callbacks.snapshot import Snapshot
from keras_retinanet.checkpoint import rebind_optimizer
from keras_retinanet.config import RetinaNetConfig
from keras_retinanet.config.defaults import RECIPES
from keras_retinanet.data.augmentation import Augmentation, scale_jitter_matrix, training_augmentation, turn_boxes
from keras_retinanet.models.retinanet import default_classification_model, default_regression_model, head_norm_groups

BACKBONE = "mobilenet128_0.25"
PRIOR_BIAS = -math.log((1 - 0.01) / 0.01)


def _targets(anchors, target_deltas, states):
    """(1, N, 4 + 4 + 1) GIoU targets from anchors, coded targets and states."""
    return np.concatenate([target_deltas, anchors, np.asarray(states, float)[:, None]], axis=1)[None].astype("float32")


# --------------------------------------------------------------------------------------
# GIoU


def test_giou_loss_of_two_boxes_by_hand():
    # anchor (0, 0, 2, 2), 2 wide and high; the box (1, 1, 3, 3) is each corner + 1 px = 0.5 widths = 2.5 std (0.2).
    # Predicting zero offsets predicts the anchor: intersection 1, union 4 + 4 - 1 = 7, enclosing box (0, 0, 3, 3) 9:
    # GIoU = 1/7 - (9 - 7)/9 = -5/63, loss 1 + 5/63 = 68/63.
    # A second positive predicts its box exactly (loss 0); an ignored and a background anchor count for nothing.
    anchors = np.array([[0, 0, 2, 2], [0, 0, 2, 2], [0, 0, 2, 2], [4, 4, 6, 6]], float)
    deltas = np.array([[2.5] * 4, [2.5] * 4, [2.5] * 4, [1.0, -1.0, 0.5, 0.0]])
    predictions = np.array([[0.0] * 4, [2.5] * 4, [0.0] * 4, [0.0] * 4], "float32")[None]
    y_true = _targets(anchors, deltas, [1, 1, -1, 0])
    value = float(losses.giou_loss(y_true, predictions))
    assert value == pytest.approx((68 / 63) / 2, rel=1e-6)  # summed over positives, divided by the 2 positives


def test_giou_of_disjoint_boxes_is_minus_the_empty_share_of_the_enclosing_box():
    # (0, 0, 1, 1) and (2, 0, 3, 1): no intersection, union 2, enclosing (0, 0, 3, 1) 3: GIoU = 0 - 1/3
    value = losses.generalized_iou(np.array([[0, 0, 1, 1]], "float32"), np.array([[2, 0, 3, 1]], "float32"))
    assert float(value[0]) == pytest.approx(-1 / 3, rel=1e-6)
    # a prediction that crossed over (x2 < x1) is an empty box: GIoU stays finite
    crossed = losses.generalized_iou(np.array([[3, 3, 1, 1]], "float32"), np.array([[0, 0, 2, 2]], "float32"))
    assert np.isfinite(float(crossed[0]))


def test_giou_targets_carry_the_anchors_and_smooth_l1_reads_either_layout():
    anchors = np.array([[0, 0, 16, 16], [8, 8, 40, 40], [50, 50, 60, 70]], float)
    image = np.zeros((64, 64, 3))
    annotations = [{"bboxes": np.array([[10, 10, 38, 42]], float), "labels": np.array([1])}]
    plain, labels = anchor_targets_bbox(anchors, [image], annotations, 2)
    with_anchors, same_labels = anchor_targets_with_anchors(anchors, [image], annotations, 2)
    assert plain.shape == (1, 3, 5) and with_anchors.shape == (1, 3, 9)
    np.testing.assert_array_equal(with_anchors[..., :4], plain[..., :4])
    np.testing.assert_array_equal(with_anchors[0, :, 4:8], anchors.astype("float32"))
    np.testing.assert_array_equal(with_anchors[..., 8], plain[..., 4])
    np.testing.assert_array_equal(labels, same_labels)
    prediction = np.random.default_rng(0).normal(size=(1, 3, 4)).astype("float32")
    assert float(losses.smooth_l1_loss(with_anchors, prediction)) == float(losses.smooth_l1_loss(plain, prediction))


def test_giou_refuses_targets_without_anchors():
    with pytest.raises(Exception, match="needs box targets with the anchors"):
        losses.giou_loss(np.zeros((1, 2, 5), "float32"), np.zeros((1, 2, 4), "float32"))


def test_giou_loss_serialises_and_compiles():
    loss = keras.losses.deserialize(keras.losses.serialize(losses.giou()))
    assert isinstance(loss, losses.GIoULoss) and loss.name == "giou"
    assert isinstance(losses.box_loss("smooth_l1"), losses.SmoothL1Loss)
    with pytest.raises(ValueError, match="unknown box loss 'l2'"):
        losses.box_loss("l2")


# --------------------------------------------------------------------------------------
# GroupNorm heads


def test_group_norm_head_matches_numpy():
    """The first hidden layer of a GroupNorm head: convolution, then per-group normalisation over (H, W, channels of
    the group) with eps 1e-5, then scale, offset and ReLU, computed here in numpy from the convolution's output."""
    keras.utils.set_random_seed(0)
    head = default_regression_model(4, 9, pyramid_feature_size=8, regression_feature_size=64, head_norm="group")
    norm = head.get_layer("pyramid_regression_0_norm")
    assert norm.groups == 32 and head_norm_groups(64) == 32 and head_norm_groups(8) == 8
    rng = np.random.default_rng(1)
    gamma, beta = rng.normal(1, 0.3, 64).astype("float32"), rng.normal(0, 0.3, 64).astype("float32")
    norm.set_weights([gamma, beta])
    features = rng.normal(size=(2, 5, 6, 8)).astype("float32")
    conv = keras.Model(head.input, head.get_layer("pyramid_regression_0").output)(features).numpy()
    got = keras.Model(head.input, head.get_layer("pyramid_regression_0_relu").output)(features).numpy()

    grouped = conv.reshape(2, 5, 6, 32, 2)
    mean = grouped.mean(axis=(1, 2, 4), keepdims=True)
    variance = grouped.var(axis=(1, 2, 4), keepdims=True)
    want = ((grouped - mean) / np.sqrt(variance + 1e-5)).reshape(2, 5, 6, 64) * gamma + beta
    np.testing.assert_allclose(got, np.maximum(want, 0), rtol=1e-4, atol=1e-4)


def test_group_norm_heads_keep_the_prior_and_the_layer_names():
    plain = default_classification_model(3, 9, pyramid_feature_size=16, classification_feature_size=16)
    grouped = default_classification_model(3, 9, pyramid_feature_size=16, classification_feature_size=16,
                                           head_norm="group")  # fmt: skip
    plain_names = {layer.name for layer in plain.layers if layer.weights or "pyramid" in layer.name}
    grouped_names = {layer.name for layer in grouped.layers if layer.weights or "pyramid" in layer.name}
    assert plain_names < grouped_names
    assert grouped_names - plain_names == {f"pyramid_classification_{i}_{kind}" for i in range(4) for kind in ("norm", "relu")}
    np.testing.assert_allclose(grouped.get_layer("pyramid_classification").get_weights()[1], PRIOR_BIAS, rtol=1e-6)
    with pytest.raises(Exception, match="unknown head norm 'batch'"):
        default_classification_model(3, 9, head_norm="batch")


def _tiny(head_norm="none", classes=2):
    return models.backbone(BACKBONE).retinanet(classes, pyramid_feature_size=16, classification_feature_size=16,
                                               regression_feature_size=16, head_norm=head_norm)  # fmt: skip


def test_weights_load_between_head_norms_by_layer(tmp_path, capsys):
    from keras_retinanet.checkpoint.weights import read_layer_weight_names, read_layer_weights
    from keras_retinanet.engine.initial_weights import transfer_layer_weights

    keras.utils.set_random_seed(2)
    plain = _tiny(classes=3)
    path = str(tmp_path / "plain.h5")
    plain.save(path)
    grouped = _tiny("group", classes=2)
    loaded, notes = transfer_layer_weights(grouped, read_layer_weights(path), path, names=read_layer_weight_names(path))
    head = grouped.get_layer("regression_submodel")
    np.testing.assert_array_equal(head.get_layer("pyramid_regression_2").get_weights()[0],
                                  plain.get_layer("regression_submodel").get_layer("pyramid_regression_2").get_weights()[0])
    assert sum("not in" in note for note in notes) == 8  # four norms in each subnet start from (1, 0)
    assert any("detects 3 classes, this run trains 2" in note for note in notes)
    np.testing.assert_array_equal(head.get_layer("pyramid_regression_2_norm").get_weights()[0], np.ones(16, "float32"))


# --------------------------------------------------------------------------------------
# schedule, AdamW, moving average


def test_warmup_cosine_schedule_by_hand():
    schedule = optimizers.learning_rate_schedule(1e-3, "cosine", warmup_steps=10, total_steps=110)
    # warm-up: a line from 0.001 * lr (step 0) to lr (step 10); then lr * (0.01 + 0.99 * (1 + cos(pi t / 100)) / 2)
    expected = {0: 1e-6, 5: 1e-6 + 0.5 * (1e-3 - 1e-6), 10: 1e-3, 60: 1e-3 * (0.01 + 0.99 * 0.5), 110: 1e-5, 500: 1e-5}
    for step, value in expected.items():
        assert float(schedule(step)) == pytest.approx(value, rel=1e-5), step
    assert optimizers.learning_rate_schedule(1e-3, "plateau") == 1e-3
    round_trip = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    assert float(round_trip(60)) == pytest.approx(expected[60], rel=1e-5)


def test_adamw_decays_kernels_and_leaves_biases_and_norms():
    inputs = keras.Input((3,))
    outputs = keras.layers.GroupNormalization(groups=1)(keras.layers.Dense(2)(inputs))
    model = keras.Model(inputs, outputs)
    optimizer = optimizers.make_optimizer(0.1, clipnorm=None, weight_decay=0.5)
    before = [np.array(variable) for variable in model.trainable_variables]
    optimizer.apply([np.zeros(variable.shape, "float32") for variable in model.trainable_variables], model.trainable_variables)
    after = [np.array(variable) for variable in model.trainable_variables]
    kernel, bias, gamma, beta = range(4)
    # a zero gradient moves nothing but the decay: w - lr * decay * w = 0.95 w, for the kernel alone
    np.testing.assert_allclose(after[kernel], 0.95 * before[kernel], rtol=1e-6)
    for index in (bias, gamma, beta):
        np.testing.assert_array_equal(after[index], before[index])


def test_snapshots_hold_the_moving_average_computed_by_hand(tmp_path):
    """Three steps of a tiny model: the average after step t is m_t * average + (1 - m_t) * weights, m_0 = 0 and
    m_t = 0.9 * (1 - exp(-t / 2)); the snapshot written at the epoch's end holds it as the model's weights, the
    model trains on from its own, and swapping back restores them exactly (a resumed run)."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer=optimizers.make_optimizer(0.1, None, ema=0.9, ema_warmup_steps=2),
                  loss=keras.losses.MeanSquaredError())  # fmt: skip
    x = np.array([[1.0, 2.0], [0.5, -1.0], [2.0, 0.0], [-1.0, 1.0], [0.0, 3.0], [1.5, 0.5]], "float32")
    y = np.array([[1.0], [0.0], [2.0], [-1.0], [0.5], [1.0]], "float32")
    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append([np.array(variable) for variable in model.trainable_variables])

    template = str(tmp_path / "tiny_{epoch:02d}")
    snapshot = Snapshot(template, extra_state={"average_weights_in_model": True})
    model.fit(x, y, batch_size=2, epochs=1, shuffle=False, verbose=0,
              callbacks=[Record(), AverageWeightsIn(), snapshot, AverageWeightsOut()])  # fmt: skip
    average = [np.array(value) for value in seen[0]]
    for step in (1, 2):
        momentum = 0.9 * (1 - math.exp(-step / 2))
        average = [momentum * mean + (1 - momentum) * value for mean, value in zip(average, seen[step])]
    saved = keras.models.load_model(template.format(epoch=1) + ".h5")
    rebind_optimizer(saved, template.format(epoch=1) + ".h5")  # Keras 3's .h5 loader leaves the averages out
    for want, got in zip(average, saved.trainable_variables):
        np.testing.assert_allclose(np.array(got), want, rtol=1e-6)
    optimizers.swap_average_weights(saved)  # what a resumed run does: its own weights back, the average to the optimizer
    for want, got in zip(seen[-1], saved.trainable_variables):
        np.testing.assert_array_equal(np.array(got), want)
    assert optimizers.has_average_weights(saved)


# --------------------------------------------------------------------------------------
# augmentation


def test_quarter_turns_and_vertical_flips_move_boxes_with_the_pixels():
    image = np.zeros((40, 60, 3), np.uint8)
    image[5:15, 10:30] = 255  # the box (10, 5, 30, 15)
    box = np.array([[10.0, 5.0, 30.0, 15.0]])
    # by hand: upside down in a 40-high image -> (10, 25, 30, 35); a quarter turn counter-clockwise of a 60-wide
    # image maps (x, y) to (y, 60 - x): (5, 30, 15, 50)
    np.testing.assert_array_equal(turn_boxes(box, image.shape, True, 0), [[10, 25, 30, 35]])
    np.testing.assert_array_equal(turn_boxes(box, image.shape, False, 1), [[5, 30, 15, 50]])
    augmentation = Augmentation(top_down=True)
    rng = np.random.RandomState(0)
    for _ in range(8):
        turned, annotations = augmentation(image, {"bboxes": box, "labels": np.array([0])}, rng)
        rows, columns = np.nonzero(turned[..., 0])
        x1, y1, x2, y2 = annotations["bboxes"][0]
        assert (columns.min(), rows.min(), columns.max() + 1, rows.max() + 1) == (x1, y1, x2, y2)


def test_scale_jitter_keeps_the_size_and_the_boxes_on_their_pixels():
    matrix = scale_jitter_matrix((0.5, 0.5), np.random.RandomState(0))
    assert matrix[0, 0] == matrix[1, 1] == 0.5 and np.all(np.abs(matrix[:2, 2]) <= 0.25)
    augmentation = training_augmentation(False, scale_jitter=(0.6, 1.4))
    assert augmentation.transform_parameters.fill_mode == "constant"
    image = np.zeros((64, 64, 3), np.uint8)
    image[20:36, 24:40] = 255
    rng = np.random.RandomState(1)
    for _ in range(6):
        warped, annotations = augmentation(image, {"bboxes": np.array([[24.0, 20.0, 40.0, 36.0]]), "labels": np.array([0])}, rng)
        assert warped.shape == image.shape
        rows, columns = np.nonzero(warped[..., 0] > 127)
        np.testing.assert_allclose(annotations["bboxes"][0], (columns.min(), rows.min(), columns.max() + 1, rows.max() + 1), atol=1.01)


def test_keras_retinanets_augmentation_is_unchanged_without_the_new_options():
    from keras_retinanet.data.augmentation import HORIZONTAL_FLIP_RANGES

    ours = training_augmentation(False).draw(np.random.RandomState(5), 4)
    theirs = Augmentation(transform=HORIZONTAL_FLIP_RANGES).draw(np.random.RandomState(5), 4)
    assert ours.turns is None and ours.effects is None
    np.testing.assert_array_equal(np.array(ours.transforms), np.array(theirs.transforms))
    assert training_augmentation(True).scale_jitter is None and not training_augmentation(True).top_down


# --------------------------------------------------------------------------------------
# configuration and snapshots


def test_the_recipe_fills_in_settings_the_user_and_the_preset_did_not_give():
    modern = RetinaNetConfig.build({"training.recipe": "modern", "training.lr": 3e-4})
    assert modern.model.head_norm == "group" and modern.training.box_loss == "giou" and modern.training.lr == 3e-4
    assert modern.training.ema == RECIPES["modern"]["training"]["ema"] and modern.training.optimizer_clipnorm == 10.0
    assert modern.data.scale_jitter is None  # an option of its own
    assert RetinaNetConfig.from_json(modern.to_json()) == modern
    assert RetinaNetConfig.build({"training.recipe": "modern", "training.ema": None}).training.ema is None
    default = RetinaNetConfig.build()
    assert (default.training.recipe, default.model.head_norm, default.training.lr_schedule) == ("keras-retinanet", "none", "plateau")
    with pytest.raises(ValueError, match="unknown recipe 'fast'"):
        RetinaNetConfig.build({"training.recipe": "fast"})
    with pytest.raises(ValueError, match="training.box_loss must be one of smooth_l1, giou"):
        RetinaNetConfig.build({"training.box_loss": "l1"})


def test_train_flags_set_the_recipe_and_its_pieces():
    from keras_retinanet.bin import train as train_command

    config = train_command.parse_args(["--recipe", "modern", "--ema", "none", "--scale-jitter", "0.5,2", "--top-down",
                                       "--warmup-steps", "7", "--keep-snapshots", "last", "demo"]).config  # fmt: skip
    assert config.training.recipe == "modern" and config.training.ema is None and config.data.scale_jitter == (0.5, 2.0)
    assert config.data.top_down and config.training.warmup_steps == 7 and config.training.keep_snapshots == "last"
    assert config.model.head_norm == "group"  # the recipe's
    plain = train_command.parse_args(["--recipe", "keras-retinanet", "--head-norm", "group", "--box-loss", "giou",
                                      "demo"]).config  # fmt: skip
    assert plain.training.recipe == "keras-retinanet" and plain.model.head_norm == "group"
    assert plain.training.box_loss == "giou" and plain.training.optimizer == "adam"  # the rest keras-retinanet's
    demo = train_command.parse_args(["demo"]).config  # keras-retinanet's recipe (measured faster to mAP 0.95 here)
    assert (demo.training.recipe, demo.model.head_norm, demo.training.keep_snapshots) == ("keras-retinanet", "none", "best")


@pytest.mark.parametrize("keep, files", [
    ("all", ["m_01.h5", "m_02.h5", "m_03.h5", "m_best.h5"]),
    ("best", ["m_03.h5", "m_best.h5"]),
    ("last", ["m_03.h5"]),
])  # fmt: skip
def test_keep_snapshots(tmp_path, keep, files):
    inputs = keras.Input((1,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    snapshot = Snapshot(str(tmp_path / "m_{epoch:02d}"), best_monitor="mAP", keep=keep)
    snapshot.set_model(model)
    for epoch, value in enumerate((0.2, 0.5, 0.4)):  # the best is epoch 2
        snapshot.on_epoch_end(epoch, {"mAP": value})
    assert sorted(os.listdir(tmp_path)) == files


# --------------------------------------------------------------------------------------
# a model of either recipe: saved, loaded, converted, exported and predicting alike


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["keras-retinanet", "modern"])
def test_a_model_of_either_recipe_loads_converts_exports_and_predicts_alike(recipe, tmp_path):
    from keras_retinanet import load_detector
    from keras_retinanet.config import DatasetConfig
    from keras_retinanet.engine.trainer import build_training_model
    from keras_retinanet.export.writers import export_model
    from keras_retinanet.engine.run_setup import anchor_targets_function

    dataset = DatasetConfig(type="csv", annotations="unused.csv", classes="unused.csv")
    # A random MobileNet's pyramid features vanish (1e-6 and below): GroupNorm heads rescale them, but a plain head
    # would score every anchor alike, so keras-retinanet's recipe runs on a random ResNet-50, whose features spread.
    backbone_name = "resnet50" if recipe == "keras-retinanet" else BACKBONE
    config = RetinaNetConfig.build({
        "training.recipe": recipe, "model.backbone": backbone_name, "training.imagenet_weights": "none",
        "model.pyramid_feature_size": 16, "model.classification_feature_size": 16, "model.regression_feature_size": 16,
        "data.image_min_side": 96, "data.image_max_side": 128, "data.dataset": dataset, "training.lr": 1e-3,
    })  # fmt: skip
    keras.utils.set_random_seed(4)
    backbone = models.backbone(backbone_name)
    model = build_training_model(config, backbone, ["cat", "dog"], total_steps=20)
    assert model.spec.head_norm == config.model.head_norm
    head = model.get_layer("classification_submodel").get_layer("pyramid_classification")
    kernel, bias = head.get_weights()  # logits spread around -3.5: a few dozen scores above 0.05
    head.set_weights([np.random.default_rng(0).normal(0, 0.05, kernel.shape).astype("float32"), np.full_like(bias, -3.5)])

    image = np.random.default_rng(1).integers(0, 255, (96, 128, 3)).astype(np.uint8)
    image[20:60, 30:90] = 250
    inputs = backbone.preprocess_image(image.astype("float32"))[None]
    anchors = anchors_for_shape(inputs.shape[1:], shapes_callback=backbone.feature_shapes)
    annotations = [{"bboxes": np.array([[30.0, 20.0, 90.0, 60.0]]), "labels": np.array([1])}]
    targets = anchor_targets_function(config)(anchors, [image], annotations, 2)
    model.train_on_batch(inputs, targets)  # the optimizer's state (moments, averages) exists

    path = str(tmp_path / "snapshot.h5")
    model.save(path)
    loaded = models.load_model(path)
    box_loss = "GIoULoss" if recipe == "modern" else "SmoothL1Loss"
    assert sorted(type(loss).__name__ for loss in keras.tree.flatten(loaded.loss)) == sorted(["FocalLoss", box_loss])
    assert optimizers.has_average_weights(loaded) == (recipe == "modern")
    for want, got in zip(model(inputs), loaded(inputs)):
        np.testing.assert_array_equal(np.asarray(want), np.asarray(got))

    detector = load_detector(path)
    assert detector.spec.head_norm == config.model.head_norm
    expected = detector.predict(image, score_threshold=0.05)
    assert 5 <= len(expected["scores"]) < 300
    tflite = export_model(models.convert_model(loaded), str(tmp_path / "model.tflite"))
    exported = load_detector(tflite).predict(image, score_threshold=0.05)
    order, exported_order = np.argsort(-expected["scores"]), np.argsort(-exported["scores"])
    assert len(exported["scores"]) == len(expected["scores"])
    np.testing.assert_allclose(exported["boxes"][exported_order], expected["boxes"][order], atol=2e-4)
    np.testing.assert_allclose(exported["scores"][exported_order], expected["scores"][order], atol=5e-6)


@pytest.mark.slow
def test_a_modern_run_resumes_exactly_without_naming_its_recipe_again(tmp_path):
    """Two epochs straight, and one then a resume from its snapshot given no recipe option: the same weights, weight
    averages, moments and step count. The snapshots hold the averaged weights; the recipe comes from the state."""
    from keras_retinanet.bin import train as train_command
    from keras_retinanet.checkpoint import read_h5_optimizer_weights, read_training_state

    from helpers.datasets import write_square_dataset

    dataset = write_square_dataset(tmp_path)
    common = ["--backbone", BACKBONE, "--batch-size", "2", "--steps", "2", "--image-min-side", "64", "--image-max-side",
              "64", "--no-evaluation", "--pyramid-feature-size", "16", "--classification-feature-size", "16",
              "--regression-feature-size", "16", "--workers", "0", "--deterministic"]  # fmt: skip
    modern = ["--recipe", "modern", "--warmup-steps", "1", "--ema-warmup-steps", "2", "--seed", "5", "--top-down"]
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    train_command.main([*common, *modern, "--epochs", "2", "--snapshot-path", straight, "csv", *dataset])
    keras.utils.clear_session()
    first = os.path.join(straight, f"{BACKBONE}_csv_01.h5")
    assert read_training_state(first)["recipe"]["training.box_loss"] == "giou"
    train_command.main([*common, "--epochs", "2", "--snapshot", first, "--snapshot-path", resumed, "csv", *dataset])
    want, got = (os.path.join(folder, f"{BACKBONE}_csv_02.h5") for folder in (straight, resumed))
    expected, actual = keras.models.load_model(want, compile=False), keras.models.load_model(got, compile=False)
    for a, b in zip(expected.weights, actual.weights):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-6, atol=1e-7, err_msg=a.path)
    strip = lambda values: {path.split("/", 1)[-1]: value for path, value in values.items()}  # noqa: E731
    want_optimizer, got_optimizer = strip(read_h5_optimizer_weights(want)), strip(read_h5_optimizer_weights(got))
    assert set(want_optimizer) == set(got_optimizer) and any(key.endswith("_average") for key in want_optimizer)
    for key, value in want_optimizer.items():
        np.testing.assert_allclose(got_optimizer[key], value, rtol=1e-6, atol=1e-9, err_msg=key)
    assert int(got_optimizer["iteration"]) == 4
