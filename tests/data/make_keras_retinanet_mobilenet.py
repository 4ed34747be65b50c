"""Make the keras-retinanet 1.0.0 MobileNet file and its reference outputs that tests/test_legacy_mobilenet.py checks.

Run with the Python 3.8 venv that has keras-retinanet 1.0.0 (TensorFlow 2.3.4, Keras 2.4.3; see
../shared/REFERENCE.md for the recipe), from the repository root:

    /work/venv38/bin/python tests/data/make_keras_retinanet_mobilenet.py tests/data

It writes

* ``keras_retinanet_mobilenet128_0.25.h5``: a keras-retinanet 1.0.0 training model (mobilenet128_0.25,
  2 classes, pyramid and subnets 16 wide), compiled as keras-retinanet's train.py compiles it, with
  random but fixed weights (batch-norm statistics and the classification bias moved off their
  initial values, so that the batch norms matter and some scores pass the 0.05 threshold);
* ``keras_retinanet_mobilenet128_0.25_outputs.npz``: for images of odd and even sides, the images
  themselves (already preprocessed, 'tf' mode) and what keras-retinanet 1.0.0 gives for them:
  ``regression_i`` / ``classification_i`` of the training model and ``boxes_i`` / ``scores_i`` /
  ``labels_i`` of ``models.convert_model(model)`` (NMS, 300 detections).

Its MobileNet is TensorFlow 2.3's: conv1 is a ((0, 1), (0, 1)) ZeroPadding2D 'conv1_pad' and a 'valid'
stride-2 conv, which rounds odd sides down where Keras 3's 'same' conv1 rounds them up.
"""

import functools
import os
import sys

import numpy as np

# Sides (height, width): odd and even, none a multiple of 32 but two, so that every pyramid level rounds.
IMAGE_SHAPES = ((97, 128), (128, 96), (101, 133), (96, 96), (127, 161), (64, 65))
NUM_CLASSES = 2
WIDTH = 16
SEED = 1234
FILE_NAME = "keras_retinanet_mobilenet128_0.25.h5"
OUTPUTS_NAME = "keras_retinanet_mobilenet128_0.25_outputs.npz"


def build_model():
    """A keras-retinanet 1.0.0 MobileNet RetinaNet with narrow heads, random but fixed weights."""
    import tensorflow as tf
    from keras_retinanet import losses, models
    from keras_retinanet.models import retinanet

    tf.random.set_seed(SEED)
    pyramid = functools.partial(getattr(retinanet, "__create_pyramid_features"), feature_size=WIDTH)
    submodels = [
        ("regression", retinanet.default_regression_model(4, 9, pyramid_feature_size=WIDTH, regression_feature_size=WIDTH)),
        (
            "classification",
            retinanet.default_classification_model(
                NUM_CLASSES, 9, pyramid_feature_size=WIDTH, classification_feature_size=WIDTH
            ),
        ),
    ]
    model = models.backbone("mobilenet128_0.25").retinanet(
        num_classes=NUM_CLASSES, create_pyramid_features=pyramid, submodels=submodels
    )
    randomize(model)
    # As keras-retinanet's train.py compiles it, so that the file has its training config.
    model.compile(
        loss={"regression": losses.smooth_l1(), "classification": losses.focal()},
        optimizer=tf.keras.optimizers.Adam(lr=1e-5, clipnorm=0.001),
    )
    return model


def randomize(model):
    """He-scaled kernels everywhere (keras-retinanet's N(0, 0.01) heads would give near-constant outputs),
    batch-norm statistics and scales moved off their initial values, a classification bias that lets
    some scores pass the 0.05 threshold."""
    rng = np.random.RandomState(SEED)
    layers = list(model.layers)
    for name in ("regression_submodel", "classification_submodel"):
        layers += model.get_layer(name).layers
    for layer in layers:
        kind = type(layer).__name__
        if kind == "BatchNormalization":
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape).astype(np.float32),
                    rng.normal(0.0, 0.1, beta.shape).astype(np.float32),
                    rng.normal(0.0, 0.1, mean.shape).astype(np.float32),
                    rng.uniform(0.5, 1.5, variance.shape).astype(np.float32),
                ]
            )
        elif kind in ("Conv2D", "DepthwiseConv2D"):
            values = layer.get_weights()
            kernel = values[0]
            fan_in = kernel.shape[0] * kernel.shape[1] * (1 if kind == "DepthwiseConv2D" else kernel.shape[2])
            values[0] = rng.normal(0.0, np.sqrt(2.0 / fan_in), kernel.shape).astype(np.float32)
            if len(values) > 1:
                values[1] = rng.normal(0.0, 0.1, values[1].shape).astype(np.float32)
            layer.set_weights(values)
    # Final layers scaled down: box deltas of about one standard deviation, a few dozen scores above 0.05.
    head = model.get_layer("regression_submodel").get_layer("pyramid_regression")
    kernel, bias = head.get_weights()
    head.set_weights([(kernel * 0.1).astype(np.float32), bias])
    head = model.get_layer("classification_submodel").get_layer("pyramid_classification")
    kernel, bias = head.get_weights()
    head.set_weights([(kernel * 0.15).astype(np.float32), np.full(bias.shape, -4.0, np.float32)])


def main(output_dir):
    from keras_retinanet import models

    model = build_model()
    inference = models.convert_model(model)
    rng = np.random.RandomState(SEED)
    arrays = {}
    for index, (height, width) in enumerate(IMAGE_SHAPES):
        # Smooth images ('tf' preprocessing: [-1, 1]) rather than white noise, so that boxes vary.
        coarse = rng.uniform(-1.0, 1.0, (1, (height + 7) // 8, (width + 7) // 8, 3))
        image = np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2)[:, :height, :width].astype(np.float32)
        image += rng.normal(0.0, 0.05, image.shape).astype(np.float32)
        regression, classification = model.predict_on_batch(image)
        boxes, scores, labels = inference.predict_on_batch(image)
        arrays.update(
            {
                f"image_{index}": image,
                f"regression_{index}": np.asarray(regression),
                f"classification_{index}": np.asarray(classification),
                f"boxes_{index}": np.asarray(boxes),
                f"scores_{index}": np.asarray(scores),
                f"labels_{index}": np.asarray(labels),
            }
        )
        print(f"{height}x{width}: {regression.shape[1]} anchors, {int((np.asarray(scores) > -1).sum())} detections")
    model.save(os.path.join(output_dir, FILE_NAME))
    np.savez_compressed(os.path.join(output_dir, OUTPUTS_NAME), count=len(IMAGE_SHAPES), **arrays)
    print(f"wrote {FILE_NAME} and {OUTPUTS_NAME} to {output_dir}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
