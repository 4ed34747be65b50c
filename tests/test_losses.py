"""Focal and smooth L1 losses against values computed here from their definitions."""

import math

import keras
import numpy as np
import pytest

from keras_retinanet import losses

EPS = 1e-7  # Keras 2's binary_crossentropy: clip to [eps, 1 - eps], add eps inside the logs
# Keras 2 computed the upper clip in float32, where 1 - 1e-7 rounds to 1 - 2^-23.
ONE_MINUS_EPS = float(np.float32(1.0) - np.float32(EPS))


def hand_focal(labels, states, scores, alpha=0.25, gamma=2.0, cutoff=0.5):
    """-alpha_t (1 - p_t)^gamma log(p_t), written as loops over plain floats."""
    total = 0.0
    positives = 0
    for b in range(len(states)):
        for n in range(len(states[b])):
            if states[b][n] == 1:
                positives += 1
            if states[b][n] == -1:
                continue
            for c in range(len(labels[b][n])):
                y = labels[b][n][c]
                p = scores[b][n][c]
                foreground = y > cutoff
                a = alpha if foreground else 1 - alpha
                weight = a * ((1 - p) if foreground else p) ** gamma
                q = min(max(p, EPS), ONE_MINUS_EPS)
                ce = -(y * math.log(q + EPS) + (1 - y) * math.log(1 - q + EPS))
                total += weight * ce
    return total / max(1, positives)


def hand_smooth_l1(targets, states, outputs, sigma=3.0):
    total = 0.0
    positives = 0
    for b in range(len(states)):
        for n in range(len(states[b])):
            if states[b][n] != 1:
                continue
            positives += 1
            for k in range(4):
                x = abs(outputs[b][n][k] - targets[b][n][k])
                total += 0.5 * (sigma * x) ** 2 if x < 1 / sigma ** 2 else x - 0.5 / sigma ** 2
    return total / max(1, positives)


def classification_case():
    # batch 2, 4 anchors, 2 classes; states: positive, negative, ignored, positive / negative x3, ignored
    labels = [[[1, 0], [0, 0], [0, 1], [0, 1]], [[0, 0], [0, 0], [0, 0], [1, 0]]]
    states = [[1, 0, -1, 1], [0, 0, 0, -1]]
    scores = [[[0.9, 0.2], [0.1, 0.05], [0.3, 0.99], [0.4, 0.6]], [[0.7, 0.01], [0.0, 1.0], [0.5, 0.5], [0.2, 0.8]]]
    y_true = np.concatenate([np.array(labels, np.float32), np.array(states, np.float32)[..., None]], axis=-1)
    return labels, states, scores, y_true, np.array(scores, np.float32)


def test_focal_value_by_hand():
    labels, states, scores, y_true, y_pred = classification_case()
    expected = hand_focal(labels, states, scores)
    # one term by hand: anchor (0,0) class 0 is a positive with p = 0.9: -0.25 * 0.1^2 * log(0.9 + eps)
    assert expected > 0.25 * 0.01 * -math.log(0.9 + EPS)
    value = float(losses.focal()(y_true, y_pred))
    np.testing.assert_allclose(value, expected, rtol=1e-5)
    np.testing.assert_allclose(float(losses.focal_loss(y_true, y_pred)), expected, rtol=1e-5)


def test_focal_other_alpha_gamma():
    labels, states, scores, y_true, y_pred = classification_case()
    expected = hand_focal(labels, states, scores, alpha=0.5, gamma=0.0)
    np.testing.assert_allclose(float(losses.focal(alpha=0.5, gamma=0.0)(y_true, y_pred)), expected, rtol=1e-5)
    # with gamma 0 and alpha 0.5 the focal loss is half the binary cross-entropy over non-ignored anchors / #pos
    ce = 0.0
    for b in range(2):
        for n in range(4):
            if states[b][n] == -1:
                continue
            for c in range(2):
                q = min(max(scores[b][n][c], EPS), ONE_MINUS_EPS)
                y = labels[b][n][c]
                ce += -(y * math.log(q + EPS) + (1 - y) * math.log(1 - q + EPS))
    np.testing.assert_allclose(expected, 0.5 * ce / 2, rtol=1e-9)


def test_focal_ignored_anchors_do_not_count():
    labels, states, scores, y_true, y_pred = classification_case()
    changed = y_pred.copy()
    changed[0, 2] = [0.999, 0.001]  # anchor (0, 2) is ignored
    changed[1, 3] = [0.001, 0.001]
    np.testing.assert_allclose(float(losses.focal()(y_true, changed)), float(losses.focal()(y_true, y_pred)), rtol=1e-6)


def test_focal_normaliser_without_positives():
    # only negatives: the sum is divided by max(1, 0) = 1
    y_true = np.array([[[0, 0, 0], [0, 0, 0], [0, 0, -1]]], np.float32)
    scores = [[[0.2, 0.3], [0.6, 0.1], [0.9, 0.9]]]
    expected = 0.0
    for p in [0.2, 0.3, 0.6, 0.1]:
        expected += 0.75 * p ** 2 * -math.log(1 - p + EPS)
    value = float(losses.focal()(y_true, np.array(scores, np.float32)))
    np.testing.assert_allclose(value, expected, rtol=1e-5)
    assert value == pytest.approx(hand_focal([[[0, 0], [0, 0], [0, 0]]], [[0, 0, -1]], scores), rel=1e-5)


def test_focal_cutoff():
    # a soft label 0.6 is foreground with cutoff 0.5 and background with cutoff 0.7
    y_true = np.array([[[0.6, 1.0]]], np.float32)
    y_pred = np.array([[[0.3]]], np.float32)
    for cutoff in (0.5, 0.7):
        expected = hand_focal([[[0.6]]], [[1.0]], [[[0.3]]], cutoff=cutoff)
        np.testing.assert_allclose(float(losses.focal(cutoff=cutoff)(y_true, y_pred)), expected, rtol=1e-5)
    fg = hand_focal([[[0.6]]], [[1.0]], [[[0.3]]], cutoff=0.5)
    bg = hand_focal([[[0.6]]], [[1.0]], [[[0.3]]], cutoff=0.7)
    # foreground: 0.25 * 0.7^2 * ce ; background: 0.75 * 0.3^2 * ce
    ce = -(0.6 * math.log(0.3 + EPS) + 0.4 * math.log(0.7 + EPS))
    np.testing.assert_allclose([fg, bg], [0.25 * 0.49 * ce, 0.75 * 0.09 * ce], rtol=1e-9)


def test_focal_extreme_scores_are_finite():
    y_true = np.array([[[1, 0, 1], [0, 1, 0]]], np.float32)
    y_pred = np.array([[[0.0, 1.0], [1.0, 0.0]]], np.float32)
    value = float(losses.focal()(y_true, y_pred))
    assert np.isfinite(value)
    # worst case per term: 0.25 * 1 * -log(2 eps) for the positive, 0.75 * 1 * -log(2 eps) for the negative
    expected = hand_focal([[[1, 0], [0, 1]]], [[1, 0]], [[[0.0, 1.0], [1.0, 0.0]]])
    np.testing.assert_allclose(value, expected, rtol=1e-4)


def regression_case():
    targets = [[[0.0, 0.0, 0.0, 0.0], [1.0, -1.0, 0.5, 0.0], [3.0, 3.0, 3.0, 3.0]],
               [[0.2, 0.0, -0.3, 1.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]]
    states = [[1, 1, -1], [1, 0, 0]]
    outputs = [[[0.05, -0.1, 0.5, 0.0], [0.95, -2.0, 0.5, 0.11], [0.0, 0.0, 0.0, 0.0]],
               [[0.2, 0.02, 0.3, 1.0], [5.0, 5.0, 5.0, 5.0], [1.0, 1.0, 1.0, 1.0]]]
    y_true = np.concatenate([np.array(targets, np.float32), np.array(states, np.float32)[..., None]], axis=-1)
    return targets, states, outputs, y_true, np.array(outputs, np.float32)


def test_smooth_l1_by_hand():
    targets, states, outputs, y_true, y_pred = regression_case()
    expected = hand_smooth_l1(targets, states, outputs)
    # by hand, sigma^2 = 9, the switch is at |x| = 1/9:
    # anchor (0,0): 0.05 and 0.1 are quadratic: 4.5*(0.0025 + 0.01); 0.5 is linear: 0.5 - 1/18
    # anchor (0,1): 0.05 quadratic, 1.0 linear, 0, 0.11 quadratic
    # anchor (1,0): 0, 0.02 quadratic, 0.6 linear, 0
    by_hand = (4.5 * (0.0025 + 0.01) + (0.5 - 1 / 18)
               + 4.5 * 0.0025 + (1.0 - 1 / 18) + 4.5 * 0.11 ** 2
               + 4.5 * 0.02 ** 2 + (0.6 - 1 / 18)) / 3
    np.testing.assert_allclose(expected, by_hand, rtol=1e-9)
    np.testing.assert_allclose(float(losses.smooth_l1()(y_true, y_pred)), by_hand, rtol=1e-5)
    np.testing.assert_allclose(float(losses.smooth_l1_loss(y_true, y_pred)), by_hand, rtol=1e-5)


def test_smooth_l1_sigma_and_no_positives():
    targets, states, outputs, y_true, y_pred = regression_case()
    np.testing.assert_allclose(float(losses.smooth_l1(sigma=1.0)(y_true, y_pred)),
                               hand_smooth_l1(targets, states, outputs, sigma=1.0), rtol=1e-5)
    no_positive = y_true.copy()
    no_positive[..., -1] = np.where(no_positive[..., -1] == 1, 0, no_positive[..., -1])
    assert float(losses.smooth_l1()(no_positive, y_pred)) == 0.0


def test_loss_classes_serialise():
    _, _, _, y_true, y_pred = classification_case()
    for loss in (losses.FocalLoss(alpha=0.3, gamma=1.5, cutoff=0.6), losses.SmoothL1Loss(sigma=2.0)):
        if isinstance(loss, losses.SmoothL1Loss):
            _, _, _, y_true, y_pred = regression_case()
        config = keras.losses.serialize(loss)
        restored = keras.losses.deserialize(config)
        assert type(restored) is type(loss)
        assert restored.get_config() == loss.get_config()
        np.testing.assert_allclose(float(restored(y_true, y_pred)), float(loss(y_true, y_pred)), rtol=1e-7)
    assert losses.FocalLoss(alpha=0.3, gamma=1.5, cutoff=0.6).get_config()["gamma"] == 1.5
    assert losses.SmoothL1Loss(sigma=2.0).get_config()["sigma"] == 2.0
    # the factory functions and the classes agree
    _, _, _, y_true, y_pred = classification_case()
    np.testing.assert_allclose(float(losses.focal(0.3, 1.5, 0.6)(y_true, y_pred)),
                               float(losses.FocalLoss(0.3, 1.5, 0.6)(y_true, y_pred)), rtol=1e-7)


def test_losses_compile_and_train_finite():
    inputs = keras.Input((4, 3))
    regression = keras.layers.Dense(4, name="regression")(inputs)
    classification = keras.layers.Dense(2, activation="sigmoid", name="classification")(inputs)
    model = keras.Model(inputs, [regression, classification])
    model.compile(optimizer=keras.optimizers.Adam(1e-3, clipnorm=0.001),
                  loss={"regression": losses.smooth_l1(), "classification": losses.focal()})
    _, _, _, y_cls, _ = classification_case()
    _, _, _, y_reg, _ = regression_case()
    x = np.random.default_rng(0).normal(size=(2, 4, 3)).astype(np.float32)
    y_reg = np.concatenate([y_reg, y_reg[:, :1]], axis=1)  # 4 anchors
    history = model.fit(x, {"regression": y_reg, "classification": y_cls}, epochs=2, verbose=0)
    assert all(np.isfinite(v) for values in history.history.values() for v in values)
    # the compiled loss equals the sum of the two losses on the same predictions
    reg_pred, cls_pred = model.predict(x, verbose=0)
    total = model.evaluate(x, {"regression": y_reg, "classification": y_cls}, verbose=0, return_dict=True)["loss"]
    expected = float(losses.smooth_l1()(y_reg, reg_pred)) + float(losses.focal()(y_cls, cls_pred))
    np.testing.assert_allclose(total, expected, rtol=1e-4)
