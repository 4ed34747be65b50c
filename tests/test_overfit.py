"""A tiny RetinaNet learns a two-image batch: targets, heads and losses work together."""

import pytest
import keras
import numpy as np
import tensorflow as tf

from keras_retinanet import losses, models
from keras_retinanet.models.retinanet import retinanet
from keras_retinanet.anchors import anchor_targets_bbox, anchors_for_shape, compute_overlap

SIZE = 128
# (x1, y1, x2, y2, class): boxes sized like the P3/P4 anchors so that each has positive anchors
BOXES = [
    [(20, 20, 52, 52, 0), (56, 66, 120, 98, 1)],
    [(70, 12, 102, 76, 1), (8, 80, 48, 120, 0)],
]
STEPS = 100
COLOURS = [(1.0, -1.0, -1.0), (-1.0, 1.0, -1.0)]


def render(boxes):
    image = np.full((SIZE, SIZE, 3), -0.5, np.float32)
    for x1, y1, x2, y2, label in boxes:
        image[y1:y2, x1:x2] = COLOURS[label]
    return image


def small_backbone(inputs):
    """A five-conv trunk giving C3-C5 at strides 8, 16, 32, so the test runs in seconds on a CPU."""
    x = inputs
    outputs = {}
    for level, width in zip([1, 2, 3, 4, 5], [8, 16, 32, 32, 32]):
        x = keras.layers.Conv2D(width, 3, strides=2, padding="same", use_bias=False, name=f"trunk_{level}")(x)
        x = keras.layers.BatchNormalization(momentum=0.5, name=f"trunk_{level}_bn")(x)
        x = keras.layers.Activation("relu", name=f"trunk_{level}_relu")(x)
        outputs[f"C{level}"] = x
    return {name: outputs[name] for name in ("C3", "C4", "C5")}


@pytest.mark.slow
def test_tiny_retinanet_overfits_two_images():
    keras.utils.set_random_seed(0)
    images = np.stack([render(b) for b in BOXES])
    annotations = [
        {"bboxes": np.array([b[:4] for b in boxes], np.float64), "labels": np.array([b[4] for b in boxes])}
        for boxes in BOXES
    ]
    anchors = anchors_for_shape(images.shape[1:])
    for annotation in annotations:  # every object is learnable: some anchor overlaps it by >= 0.5
        assert (compute_overlap(anchors, annotation["bboxes"]).max(axis=0) >= 0.5).all()
    regression_targets, labels_targets = anchor_targets_bbox(anchors, list(images), annotations, num_classes=2)
    assert (labels_targets[..., -1] == 1).sum() >= 4

    inputs = keras.Input((None, None, 3))
    model = retinanet(inputs, small_backbone(inputs), num_classes=2, pyramid_feature_size=32,
                      classification_feature_size=32, regression_feature_size=32)
    model.compile(loss={"regression": losses.smooth_l1(), "classification": losses.focal()},
                  optimizer=keras.optimizers.Adam(1e-3), steps_per_execution=20)
    targets = {"regression": regression_targets, "classification": labels_targets}

    def total_loss():
        regression, classification = model(images, training=False)
        return float(losses.smooth_l1()(regression_targets, regression) + losses.focal()(labels_targets, classification))

    start = total_loss()
    # one epoch of 100 steps on the same batch: far less overhead than 100 one-step epochs
    batches = tf.data.Dataset.from_tensors((images, targets)).repeat()
    history = model.fit(batches, steps_per_epoch=STEPS, epochs=1, shuffle=False, verbose=0)
    end = total_loss()
    assert np.isfinite(history.history["loss"]).all()
    assert end * 5 <= start, (start, end)

    # and the converted model finds the objects it was shown (focal loss leaves scores near 0.5 this early)
    inference = models.convert_model(model)
    boxes, scores, labels = inference.predict_on_batch(images)
    for image, objects in enumerate(BOXES):
        for x1, y1, x2, y2, label in objects:
            confident = scores[image] > 0.3
            found = compute_overlap(boxes[image][confident], np.array([[x1, y1, x2, y2]], np.float64))[:, 0]
            assert ((found > 0.7) & (labels[image][confident] == label)).any(), (image, label)
