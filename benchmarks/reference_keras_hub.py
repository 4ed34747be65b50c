"""The inference figures of bench_retinanet.py for keras-hub's RetinaNet, for a comparison in one run.

Runs in its own environment, never this project's: a virtual environment with keras-hub installed next to the same
TensorFlow and Keras (python3 -m venv --system-site-packages /path/to/venv-hub; /path/to/venv-hub/bin/pip install
keras-hub). Builds keras_hub.models.RetinaNetObjectDetector the way keras-hub's retinanet_resnet50_fpn_coco preset is
laid out (ResNet50, FPN P3-P7 with P6 from the FPN's P5, four 256-wide conv layers per head, 9 anchors), with random
weights (nothing is downloaded) and 80 classes.

The benchmark image (800x1067, BGR, given as RGB in [0, 255]) goes through keras-hub's own image converter, set to
800x1088, a width divisible by 32, which keras-hub's FPN needs (it upsamples by exactly 2, so every level must halve
evenly); the preset's own converter would shrink the image to 800x800. The image keeps its 800 px short side: Keras'
pad_to_aspect_ratio pads 10 columns on each side (1087) and resamples to 1088, a 0.09% stretch. Boxes come out in
the 800x1088 input's coordinates (mapping them back, a shift and a scale, is not timed).
Post-processing is keras-hub's NonMaxSuppression set to this project's thresholds (scores above 0.05, IoU 0.5,
at most 300 detections); unlike ours it is class-agnostic (one box per anchor, its best class).

As in bench_retinanet.py, the final classification kernel and bias are set so that about 2000 class-anchor scores
pass 0.05 (bench_shared.plain_setting), so the post-processing gets the same amount of work.

Prints one JSON line: end to end (the RGB image in, detections out: the preprocessor, then the detector's compiled
predict step with its decoder, which is what predict_on_batch does), the same through detector.predict, and the
network alone; medians of --runs after warm-up.

Run: /path/to/venv-hub/bin/python benchmarks/reference_keras_hub.py [--runs 5]
"""

import argparse
import json
import os
import resource

# first: it reads the load average at the start
from bench_shared import THRESHOLD, benchmark_image, median_seconds, plain_setting

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench_retinanet import model_flops  # noqa: E402  (TensorFlow's profiler, as for our model)

NUM_CLASSES = 80
MAX_DETECTIONS = 300
IOU_THRESHOLD = 0.5
# ImageNet statistics of torchvision's transform, which keras-hub's converted RetinaNet presets keep.
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)
STRIDE = 32  # the coarsest level the FPN upsamples from


def padded_side(side, stride=STRIDE):
    """The smallest multiple of ``stride`` that is at least ``side``."""
    return -(-side // stride) * stride


def resnet50_image_encoder():
    """keras-hub's ResNet50 (v1, bottleneck blocks), the configuration of its resnet_50_imagenet preset."""
    return keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[7],
        stackwise_num_filters=[64, 128, 256, 512],
        stackwise_num_blocks=[3, 4, 6, 3],
        stackwise_num_strides=[1, 2, 2, 2],
        block_type="bottleneck_block",
        use_pre_activation=False,
    )


def build_detector(image_size):
    """RetinaNetObjectDetector with random weights, its preprocessor resizing/padding to ``image_size`` (H, W).

    Returns: the detector (predict_on_batch takes (1, h, w, 3) RGB in [0, 255] and returns a dict of boxes (yxyx),
        confidence, labels and num_detections).
    """
    backbone = keras_hub.models.RetinaNetBackbone(
        image_encoder=resnet50_image_encoder(), min_level=3, max_level=7, use_p5=False
    )
    converter = keras_hub.layers.RetinaNetImageConverter(
        image_size=image_size,
        pad_to_aspect_ratio=True,
        crop_to_aspect_ratio=False,
        scale=[1.0 / 255.0 / s for s in IMAGE_STD],
        offset=[-m / s for m, s in zip(IMAGE_MEAN, IMAGE_STD)],
    )
    preprocessor = keras_hub.models.RetinaNetObjectDetectorPreprocessor(image_converter=converter)
    decoder = keras_hub.layers.NonMaxSuppression(
        bounding_box_format="yxyx",
        from_logits=True,
        iou_threshold=IOU_THRESHOLD,
        confidence_threshold=THRESHOLD,
        max_detections=MAX_DETECTIONS,
    )
    return keras_hub.models.RetinaNetObjectDetector(
        backbone=backbone,
        num_classes=NUM_CLASSES,
        bounding_box_format="yxyx",
        preprocessor=preprocessor,
        prediction_decoder=decoder,
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-flops", action="store_true", help="skip counting the network's FLOPs")
    args = parser.parse_args()
    keras.utils.set_random_seed(0)

    image = benchmark_image()  # (800, 1067, 3) BGR float32
    image_size = (padded_side(image.shape[0]), padded_side(image.shape[1]))
    detector = build_detector(image_size)
    # The network without the decoder: the same functional graph, whose predict_on_batch skips the preprocessor too.
    network = keras.Model(detector.inputs, detector.output)  # output: the dict {"bbox_regression", "cls_logits"}

    def rgb_batch():
        return np.ascontiguousarray(image[None, :, :, ::-1])

    network_input = np.asarray(detector.preprocessor(rgb_batch()))
    result = {
        "keras_hub": keras_hub.__version__,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "image": list(image.shape[:2]),
        "network_input": list(network_input.shape[1:3]),
        "num_classes": NUM_CLASSES,
        "parameters": int(detector.count_params()),
        "decoder": {"score_threshold": THRESHOLD, "iou_threshold": IOU_THRESHOLD, "max_detections": MAX_DETECTIONS,
                    "class_specific": False},
    }

    layer = detector.classification_head.prediction_layer

    def predict_scores(kernel, bias):
        layer.set_weights([kernel, bias])
        logits = np.asarray(network.predict_on_batch(network_input)["cls_logits"], np.float64)
        return 1.0 / (1.0 + np.exp(-logits))

    kernel, bias, result["scores_above_0.05"] = plain_setting(*layer.get_weights(), predict_scores)
    layer.set_weights([kernel, bias])

    # What predict_on_batch does (the preprocessor eagerly, then one compiled predict step with the decoder); called
    # directly because keras-hub 0.32's predict_on_batch fails under Keras 3.15 (decode_predictions gets the batch as
    # a 1-tuple and unpacks it as (images, labels)). XLA as Keras decides for the detector's own predict function
    # (off on a CPU-only machine).
    predict_step = tf.function(detector.predict_step, reduce_retracing=True, jit_compile=bool(detector.jit_compile))

    def end_to_end():
        detections = predict_step(detector.preprocessor(rgb_batch()))
        return {key: value.numpy() for key, value in detections.items()}

    result["end_to_end_s"], result["end_to_end_runs"] = median_seconds(end_to_end, args.runs)
    # The documented call, detector.predict: the same work plus a tf.data pipeline built on every call.
    result["predict_s"], result["predict_runs"] = median_seconds(lambda: detector.predict(rgb_batch(), verbose=0),
                                                                 args.runs)
    result["network_s"], result["network_runs"] = median_seconds(lambda: network.predict_on_batch(network_input),
                                                                 args.runs)
    result["detections"] = int(np.asarray(end_to_end()["num_detections"])[0])
    if not args.no_flops:
        result["flops"] = model_flops(network, network_input.shape[1:3])
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps(result))


if __name__ == "__main__":
    main()
