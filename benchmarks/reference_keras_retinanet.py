"""The figures of bench_retinanet.py for fizyr's keras-retinanet 1.0.0, for a comparison in one run.

Runs in its own environment, never this project's: Python 3.8 with tensorflow-cpu 2.3.4, keras-resnet 0.2.0 and
keras-retinanet 1.0.0 (pip install keras-retinanet==1.0.0 tensorflow-cpu==2.3.4 keras-resnet==0.2.0 ...). Prints one
JSON line: end-to-end inference (plain and saturated scores), the network alone, and one training step (batch 2,
512x512, 10 boxes an image), medians of --runs after warm-up.

Run: /path/to/py38/bin/python benchmarks/reference_keras_retinanet.py [--runs 5]
"""

import argparse
import json
import os
import resource

# first: it reads the load average at the start
from bench_shared import benchmark_image, median_seconds, plain_setting, saturated_setting

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras_retinanet import losses, models  # noqa: E402
from keras_retinanet.utils.anchors import anchor_targets_bbox, anchors_for_shape  # noqa: E402
from keras_retinanet.utils.image import preprocess_image, resize_image  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    np.random.seed(0)
    tf.random.set_seed(0)
    result = {"keras_retinanet": "1.0.0", "tensorflow": tf.__version__}

    model = models.backbone("resnet50").retinanet(num_classes=80)
    image = benchmark_image()
    network_input = resize_image(preprocess_image(image.copy()))[0][None]
    layer = model.get_layer("classification_submodel").get_layer("pyramid_classification")
    kernel, bias = layer.get_weights()

    def predict_scores(new_kernel, new_bias):
        layer.set_weights([new_kernel, new_bias])
        return model.predict_on_batch(network_input)[1]

    for name, setting in (("plain", plain_setting), ("saturated", saturated_setting)):
        new_kernel, new_bias, count = setting(kernel, bias, predict_scores)
        layer.set_weights([new_kernel, new_bias])
        inference = models.convert_model(model)

        def end_to_end(inference=inference):
            x, scale = resize_image(preprocess_image(image.copy()))
            boxes, scores, labels = inference.predict_on_batch(x[None])[:3]
            return boxes / scale, scores, labels

        result["%s_scores_above" % name] = count
        result["%s_end_to_end_s" % name] = median_seconds(end_to_end, args.runs)[0]
    result["network_s"] = median_seconds(lambda: model.predict_on_batch(network_input), args.runs)[0]

    layer.set_weights([kernel, bias])
    model.compile(
        loss={"regression": losses.smooth_l1(), "classification": losses.focal()},
        optimizer=tf.keras.optimizers.Adam(lr=1e-5, clipnorm=0.001),
    )
    images, annotations = [], []
    for seed in range(2):
        picture = benchmark_image((512, 512), seed=seed)
        rng = np.random.RandomState(seed + 10)
        xy = rng.uniform(0, 400, size=(10, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(30, 110, size=(10, 2))], axis=1)
        images.append(preprocess_image(picture))
        annotations.append({"bboxes": boxes, "labels": np.arange(10) % 80})
    inputs = np.stack(images).astype(np.float32)
    anchors = anchors_for_shape(inputs.shape[1:])
    regression, labels = anchor_targets_bbox(anchors, inputs, annotations, num_classes=80)
    result["train_step_s"] = median_seconds(lambda: model.train_on_batch(inputs, [regression, labels]), args.runs)[0]
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps(result))


if __name__ == "__main__":
    main()
