"""keras-retinanet 1.0.0's own files and outputs against this package's, measured (docs/compatibility.md).

    python benchmarks/check_keras_retinanet.py --venv /work/venv38/bin/python

With the Python of a venv that has keras-retinanet 1.0.0 (TensorFlow 2.3.4, Keras 2.4.3, keras-resnet 0.2.0;
recipe in ../shared/REFERENCE.md; default: $KERAS_RETINANET_VENV38/bin/python). Three parts:

  resnet50   keras-retinanet 1.0.0 builds a ResNet50 RetinaNet with 80 classes (random weights, seeded: He-scaled
             kernels, BatchNorm statistics moved; the last regression layer scaled so box deltas spread 0.5, the last
             classification layer set so that about 2,000 class scores pass 0.05, bench_shared.plain_setting) and saves
             it as its train.py does: the training model (keras-resnet 0.2.0's 'same' conv1), the same weights in
             keras-resnet 0.1.0's layout ('padding_conv1' ZeroPadding(3) and a 'valid' conv1, as in
             resnet50_coco_best_v2.1.0.h5), and an inference model converted with non-default filter options. It
             runs each on the same preprocessed 320x416 image (bench_shared.benchmark_image, caffe preprocessing):
             raw regression and classification outputs, and detections (a training file through its
             convert_model with the defaults). Here models.load_model reads each file and runs it on the same input:
             detections matched one to one (same label, score within 1e-4, nearest box), the largest box, score and
             raw-output differences.
  mobilenet  tests/data's MobileNet file written by keras-retinanet 1.0.0 (conv1_pad + 'valid' conv1) and its stored
             outputs on six images of odd and even sides: loaded here (with the file's padding), and as a model built
             with Keras 3's own 'same' conv1 holding the file's weights (what a loader that ignores the padding
             gives): anchors, raw-output differences, detections.
  839        fizyr/keras-retinanet#839 in keras-retinanet 1.0.0 itself: on a 100x140 image a MobileNet RetinaNet's
             outputs and its anchor targets count different anchors, and one training step fails; the counts and
             the error's first line.

Writes benchmarks/results/keras_retinanet_outputs.json (bench_shared.write_result); exit status 1 if a file loaded
here does not give keras-retinanet's detections (the 'mobilenet' part's Keras 3 'same' rebuild is expected to differ).
The venv side is this same file run by the venv's Python (``--venv-side``), so it stays Python 3.8.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

from bench_shared import benchmark_image, plain_setting, write_result  # first: it reads the load average at the start

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPOSITORY = os.path.dirname(HERE)
IMAGE_SHAPE = (320, 416)
NUM_CLASSES = 80
SEED = 3
NMS_OPTIONS = {"nms_threshold": 0.3, "score_threshold": 0.1, "max_detections": 200}  # non-default filter options
LEGACY_MOBILENET = os.path.join(REPOSITORY, "tests", "data", "keras_retinanet_mobilenet128_0.25.h5")
LEGACY_OUTPUTS = os.path.join(REPOSITORY, "tests", "data", "keras_retinanet_mobilenet128_0.25_outputs.npz")
BOX_TOLERANCE, SCORE_TOLERANCE = 1e-3, 1e-4


def network_input():
    """The preprocessed 320x416 image both sides run (caffe: BGR minus the ImageNet means), (1, H, W, 3)."""
    sys.path.insert(0, HERE)

    image = benchmark_image(IMAGE_SHAPE, seed=SEED)
    return (image - np.array([103.939, 116.779, 123.68], np.float32))[None].astype(np.float32)


# --------------------------------------------------------------------------- the venv side (Python 3.8)


def randomize(model, seed):
    """He-scaled kernels, moved BatchNorm statistics (small ends of residual branches), a classification bias of -4."""
    rng = np.random.RandomState(seed)
    layers = list(model.layers)
    for name in ("regression_submodel", "classification_submodel"):
        layers += model.get_layer(name).layers
    for layer in layers:
        values = layer.get_weights()
        if not values or hasattr(layer, "layers"):
            continue
        if len(values) == 4:  # batch normalisation: gamma, beta, mean, variance
            low, high = (0.05, 0.15) if layer.name.endswith("branch2c") else (0.5, 1.5)
            values = [rng.uniform(low, high, values[0].shape), rng.normal(0, 0.1, values[1].shape),
                      rng.normal(0, 0.1, values[2].shape), rng.uniform(0.5, 1.5, values[3].shape)]
        else:
            kernel = values[0]
            values[0] = rng.normal(0, np.sqrt(2.0 / int(np.prod(kernel.shape[:-1]))), kernel.shape)
            values[1:] = [rng.normal(0, 0.1, v.shape) for v in values[1:]]
        layer.set_weights([np.asarray(v, np.float32) for v in values])
    for submodel, final, scale, bias in (("regression_submodel", "pyramid_regression", 0.1, None),
                                         ("classification_submodel", "pyramid_classification", 0.1, -4.0)):
        head = model.get_layer(submodel).get_layer(final)
        kernel, head_bias = head.get_weights()
        head.set_weights([kernel * scale, head_bias if bias is None else np.full_like(head_bias, bias)])


def _resnet_v010(models):
    """keras-retinanet 1.0.0's ResNet50 RetinaNet with keras-resnet 0.1.0's conv1 (ZeroPadding 3, 'valid' conv1)."""
    import keras_resnet.models._2d as resnet_2d

    layers = resnet_2d.keras.layers
    original = layers.Conv2D

    def conv2d(*args, **kwargs):
        if kwargs.get("name") != "conv1":
            return original(*args, **kwargs)
        kwargs["padding"] = "valid"
        conv = original(*args, **kwargs)
        pad = layers.ZeroPadding2D(padding=3, name="padding_conv1")
        return lambda x: conv(pad(x))

    layers.Conv2D = conv2d
    try:
        return models.backbone("resnet50").retinanet(num_classes=NUM_CLASSES)
    finally:
        layers.Conv2D = original


def venv_side(job_path):
    """In the keras-retinanet 1.0.0 venv: write the ResNet50 files, run them, and reproduce #839."""
    import tensorflow as tf
    from keras_retinanet import losses, models  # keras-retinanet 1.0.0, not this repository's package
    from keras_retinanet.utils.anchors import anchor_targets_bbox, anchors_for_shape

    with open(job_path) as stream:
        job = json.load(stream)
    folder = job["folder"]
    x = network_input()

    tf.random.set_seed(SEED)
    model = models.backbone("resnet50").retinanet(num_classes=NUM_CLASSES)
    randomize(model, SEED)
    regression_layer = model.get_layer("regression_submodel").get_layer("pyramid_regression")
    kernel, bias = regression_layer.get_weights()
    deltas = model.predict_on_batch(x)[0]
    regression_layer.set_weights([kernel * (0.5 / max(float(np.std(deltas)), 1e-12)), bias])
    classification_layer = model.get_layer("classification_submodel").get_layer("pyramid_classification")

    def predict_scores(new_kernel, new_bias):
        classification_layer.set_weights([new_kernel, new_bias])
        return model.predict_on_batch(x)[1]

    kernel, bias, _ = plain_setting(*classification_layer.get_weights(), predict_scores)
    classification_layer.set_weights([kernel, bias])
    old_layout = _resnet_v010(models)
    for layer in old_layout.layers:
        if layer.get_weights():
            layer.set_weights(model.get_layer(layer.name).get_weights())
    outputs = {}
    for name, training in (("resnet50", model), ("resnet50_keras_resnet_0.1.0", old_layout)):
        training.compile(loss={"regression": losses.smooth_l1(), "classification": losses.focal()},
                         optimizer=tf.keras.optimizers.Adam(lr=1e-5, clipnorm=0.001))
        training.save(os.path.join(folder, name + ".h5"))
        regression, classification = training.predict_on_batch(x)
        detections = models.convert_model(training).predict_on_batch(x)[:3]
        outputs.update({name + "/regression": regression, name + "/classification": classification})
        outputs.update({name + "/" + part: np.asarray(value) for part, value in zip(("boxes", "scores", "labels"),
                                                                                    detections)})
    inference = models.convert_model(model, **NMS_OPTIONS)
    inference.save(os.path.join(folder, "resnet50_inference_nms.h5"))
    detections = inference.predict_on_batch(x)[:3]
    outputs.update({"resnet50_inference_nms/" + part: np.asarray(value)
                    for part, value in zip(("boxes", "scores", "labels"), detections)})
    np.savez(os.path.join(folder, "venv_outputs.npz"), **outputs)

    # fizyr/keras-retinanet#839: a MobileNet RetinaNet on a 100x140 image
    mobilenet = models.backbone("mobilenet128_0.25").retinanet(num_classes=2)
    mobilenet.compile(loss={"regression": losses.smooth_l1(), "classification": losses.focal()},
                      optimizer=tf.keras.optimizers.Adam(lr=1e-5, clipnorm=0.001))
    image = np.random.RandomState(5).uniform(-1, 1, (1, 100, 140, 3)).astype(np.float32)
    anchors = anchors_for_shape(image.shape[1:])
    annotations = [{"bboxes": np.array([[8.0, 10.0, 60.0, 70.0]]), "labels": np.array([1])}]
    regression_target, labels_target = anchor_targets_bbox(anchors, image, annotations, num_classes=2)
    model_anchors = int(mobilenet.predict_on_batch(image)[0].shape[1])
    try:
        mobilenet.train_on_batch(image, [regression_target, labels_target])
        error = None
    except Exception as caught:  # the failure being reproduced
        error = "%s: %s" % (type(caught).__name__, str(caught).strip().splitlines()[0])
    with open(os.path.join(folder, "venv_839.json"), "w") as stream:
        json.dump({"image": [100, 140], "target_anchors": int(len(anchors)), "model_anchors": model_anchors,
                   "training_error": error}, stream)


# --------------------------------------------------------------------------- this side (Keras 3)


def match(reference, detections):
    """check_keras2_export.match_detections: counts and the largest differences of one-to-one matched detections."""
    sys.path.insert(0, HERE)
    from check_keras2_export import match_detections

    return match_detections(reference, detections)


def _fits(comparison):
    return (comparison["unmatched"] == 0 and comparison["max_box_difference"] <= BOX_TOLERANCE
            and comparison["max_score_difference"] <= SCORE_TOLERANCE)


def resnet_part(folder):
    from keras_retinanet import models

    x = network_input()
    venv = np.load(os.path.join(folder, "venv_outputs.npz"))
    results = {}
    for name in ("resnet50", "resnet50_keras_resnet_0.1.0", "resnet50_inference_nms"):
        loaded = models.load_model(os.path.join(folder, name + ".h5"), backbone_name="resnet50", compile=False)
        entry = {}
        if name == "resnet50_inference_nms":
            inference = loaded
            entry["filter_options"] = NMS_OPTIONS
        else:
            regression, classification = [np.asarray(t) for t in loaded.predict_on_batch(x)]
            entry["max_regression_difference"] = float(np.abs(regression - venv[name + "/regression"]).max())
            entry["max_classification_difference"] = float(
                np.abs(classification - venv[name + "/classification"]).max())
            entry["anchors"] = int(regression.shape[1])
            inference = models.convert_model(loaded)
        ours = [np.asarray(t)[0] for t in inference.predict_on_batch(x)[:3]]
        theirs = [venv[f"{name}/{part}"][0] for part in ("boxes", "scores", "labels")]
        entry.update(match(theirs, ours))
        entry["keras_retinanet_lowest_score"] = float(theirs[1][theirs[1] > -1].min())
        entry["ok"] = _fits(entry)
        results[name] = entry
    return results


def mobilenet_part():
    from keras_retinanet import models
    from keras_retinanet.models.legacy.builder import assign_legacy_weights
    from keras_retinanet.models.legacy.reader import read_legacy_file

    reference = np.load(LEGACY_OUTPUTS)
    backbone = models.backbone("mobilenet128_0.25")
    loaded = models.load_model(LEGACY_MOBILENET, backbone_name="mobilenet128_0.25", compile=False)
    info = read_legacy_file(LEGACY_MOBILENET)
    same_conv1 = backbone.retinanet(**info.builder_options())  # Keras 3's MobileNet, the file's weights
    assign_legacy_weights(same_conv1, info, backbone)
    results = {}
    for name, model in (("loaded", loaded), ("keras3_same_conv1", same_conv1)):
        inference = models.convert_model(model)
        images = []
        for index in range(int(reference["count"])):
            image = reference[f"image_{index}"]
            regression, classification = [np.asarray(t) for t in model.predict_on_batch(image)]
            theirs = [reference[f"{part}_{index}"][0] for part in ("boxes", "scores", "labels")]
            ours = [np.asarray(t)[0] for t in inference.predict_on_batch(image)[:3]]
            entry = {"image": list(image.shape[1:3]), "anchors": int(regression.shape[1]),
                     "keras_retinanet_anchors": int(reference[f"regression_{index}"].shape[1])}
            if entry["anchors"] == entry["keras_retinanet_anchors"]:
                entry["max_regression_difference"] = float(np.abs(regression - reference[f"regression_{index}"]).max())
                entry["max_classification_difference"] = float(
                    np.abs(classification - reference[f"classification_{index}"]).max())
            entry.update(match(theirs, ours))
            images.append(entry)
        results[name] = {"images": images, "ok": all(_fits(e) and e["anchors"] == e["keras_retinanet_anchors"]
                                                     for e in images)}
    return results


def summary(results):
    lines = []
    for name, entry in results["resnet50"].items():
        raw = ""
        if "max_regression_difference" in entry:
            raw = ", raw outputs within %.1e / %.1e" % (entry["max_regression_difference"],
                                                          entry["max_classification_difference"])
        lines.append("%-30s %d of keras-retinanet's %d detections matched, boxes within %.1e px, scores within %.1e%s"
                     " %s" % (name, entry["reference_count"] - entry["unmatched"], entry["reference_count"],
                              entry["max_box_difference"], entry["max_score_difference"], raw,
                              "ok" if entry["ok"] else "DIFFERENT"))
    for name, entry in results["mobilenet"].items():
        for image in entry["images"]:
            raw = ""
            if "max_regression_difference" in image:
                raw = ", raw %.1e / %.1e" % (image["max_regression_difference"], image["max_classification_difference"])
            lines.append("mobilenet %-18s %3dx%-3d anchors %d (theirs %d), detections %d (theirs %d), boxes %.1e px, "
                         "scores %.1e%s" % (name, image["image"][0], image["image"][1], image["anchors"],
                                            image["keras_retinanet_anchors"], image["count"],
                                            image["reference_count"], image["max_box_difference"],
                                            image["max_score_difference"], raw))
    lines.append("#839 in keras-retinanet 1.0.0: %s" % json.dumps(results["keras_retinanet_839"]))
    return "\n".join(lines)


def default_venv_python():
    venv = os.environ.get("KERAS_RETINANET_VENV38")
    return os.path.join(venv, "bin", "python") if venv else None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", default=default_venv_python(),
                        help="Python of the keras-retinanet 1.0.0 venv (default: $KERAS_RETINANET_VENV38/bin/python)")
    parser.add_argument("--out", help="Write the results here (default: benchmarks/results/keras_retinanet_outputs.json).")
    parser.add_argument("--venv-side", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.venv_side:
        venv_side(args.venv_side)
        return 0
    if not args.venv or not os.path.exists(args.venv):
        parser.error("no venv Python: pass --venv or set KERAS_RETINANET_VENV38")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, REPOSITORY)
    with tempfile.TemporaryDirectory() as folder:
        job = os.path.join(folder, "job.json")
        with open(job, "w") as stream:
            json.dump({"folder": folder}, stream)
        done = subprocess.run([args.venv, os.path.abspath(__file__), "--venv-side", job], capture_output=True,
                              text=True, cwd=HERE, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
        if done.returncode != 0:
            raise RuntimeError("the venv side failed:\n" + done.stderr[-3000:])
        results = {"image": list(IMAGE_SHAPE), "num_classes": NUM_CLASSES, "resnet50": resnet_part(folder)}
        with open(os.path.join(folder, "venv_839.json")) as stream:
            results["keras_retinanet_839"] = json.load(stream)
    results["mobilenet"] = mobilenet_part()
    results["ok"] = all(e["ok"] for e in results["resnet50"].values()) and results["mobilenet"]["loaded"]["ok"]
    print(summary(results))
    sys.path.insert(0, HERE)

    write_result("keras_retinanet_outputs", results, output=args.out)
    print("ok" if results["ok"] else "FAILED")
    return 0 if results["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
