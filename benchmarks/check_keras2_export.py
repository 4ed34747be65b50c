"""Round trip through keras-retinanet 1.0.0: our model -> Keras 2 .h5 (h5-keras2) -> keras-retinanet -> back here.

    python benchmarks/check_keras2_export.py --venv /work/venv38/bin/python [--out results.json] [--resnet]

With the Python of a venv that has keras-retinanet 1.0.0 (TensorFlow 2.3, Keras 2.4; recipe in
../shared/REFERENCE.md; default: $KERAS_RETINANET_VENV38/bin/python). For each model (a MobileNet
rebuilt from keras-retinanet's own file in tests/data, a MobileNet and with --resnet a ResNet50 built
here, random weights, narrow heads), the training and the inference model are written with
``export_model(..., export_format="h5-keras2")``, and

1. the venv loads each file with ``keras_retinanet.models.load_model(path, backbone_name=...)``,
   converts the training model with ``models.convert_model`` and detects on images of odd and even
   sides; its boxes must be within 1e-3 px and its scores within 1e-4 of ours;
2. each file is loaded back here (the legacy loader) and must give the same detections.

It prints one line per file and writes the numbers as JSON to benchmarks/results/keras2_export.json (--out: another
path; bench_shared.write_result); exit status 1 if a check fails.
The venv side is this same file run by the venv's Python (``--venv-side``), so it stays Python 3.8.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

from bench_shared import write_result  # first: it reads the load average at the start

import numpy as np

IMAGE_SHAPES = ((97, 128), (128, 96), (101, 133), (96, 96))
BOX_TOLERANCE = 1e-3
SCORE_TOLERANCE = 1e-4
REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEGACY_FILE = os.path.join(REPOSITORY, "tests", "data", "keras_retinanet_mobilenet128_0.25.h5")


def match_detections(reference, detections):
    """Largest box and score differences between two detection sets, matched one to one.

    Each reference detection is paired with the unused detection of the same label whose score is
    within SCORE_TOLERANCE and whose box is nearest (equal scores may come in another order).

    Args:
        reference, detections: (boxes (N, 4), scores (N,), labels (N,)), -1 padded.

    Returns:
        dict: counts, max_box_difference, max_score_difference, unmatched.
    """
    ref_boxes, ref_scores, ref_labels = [np.asarray(a) for a in reference]
    boxes, scores, labels = [np.asarray(a) for a in detections]
    ref_valid, valid = np.flatnonzero(ref_scores > -1), np.flatnonzero(scores > -1)
    used, box_difference, score_difference, unmatched = set(), 0.0, 0.0, 0
    for i in ref_valid:
        candidates = [j for j in valid if j not in used and labels[j] == ref_labels[i]
                      and abs(scores[j] - ref_scores[i]) <= SCORE_TOLERANCE]
        if not candidates:
            unmatched += 1
            continue
        j = min(candidates, key=lambda k: float(np.abs(boxes[k] - ref_boxes[i]).max()))
        used.add(j)
        box_difference = max(box_difference, float(np.abs(boxes[j] - ref_boxes[i]).max()))
        score_difference = max(score_difference, float(abs(scores[j] - ref_scores[i])))
    return {
        "reference_count": int(len(ref_valid)),
        "count": int(len(valid)),
        "max_box_difference": box_difference,
        "max_score_difference": score_difference,
        "unmatched": unmatched + abs(int(len(valid)) - int(len(ref_valid))),
    }


def detections_fit(comparison):
    return (
        comparison["unmatched"] == 0
        and comparison["reference_count"] > 0
        and comparison["max_box_difference"] <= BOX_TOLERANCE
        and comparison["max_score_difference"] <= SCORE_TOLERANCE
    )


# --------------------------------------------------------------------------- the venv side (Python 3.8)


def venv_side(job_path):
    """In the keras-retinanet 1.0.0 venv: load every file of the job, detect, save the detections."""
    from keras_retinanet import models  # keras-retinanet 1.0.0, not this repository's package

    with open(job_path) as stream:
        job = json.load(stream)
    images = np.load(job["images"])
    results = {}
    for entry in job["files"]:
        model = models.load_model(entry["path"], backbone_name=entry["backbone"])
        if entry["kind"] == "training":
            model = models.convert_model(model)
        for index in range(int(images["count"])):
            boxes, scores, labels = model.predict_on_batch(images["image_%d" % index])
            results["%s/%d/boxes" % (entry["name"], index)] = np.asarray(boxes)[0]
            results["%s/%d/scores" % (entry["name"], index)] = np.asarray(scores)[0]
            results["%s/%d/labels" % (entry["name"], index)] = np.asarray(labels)[0]
    np.savez(job["output"], **results)


# --------------------------------------------------------------------------- this side (Keras 3)


def randomize(model, seed):
    """He-scaled random kernels, moved batch-norm statistics and scaled final head layers, so that outputs vary."""
    rng = np.random.RandomState(seed)
    layers = list(model.layers)
    for name in ("regression_submodel", "classification_submodel"):
        layers += model.get_layer(name).layers
    for layer in layers:
        values = layer.get_weights()
        if not values or hasattr(layer, "layers"):
            continue
        if len(values) == 4:  # batch normalisation: gamma, beta, mean, variance
            # A ResNet's residual branches end small, so that 16 blocks do not blow the activations up.
            low, high = (0.05, 0.15) if layer.name.endswith("branch2c") else (0.5, 1.5)
            values = [rng.uniform(low, high, values[0].shape), rng.normal(0, 0.1, values[1].shape),
                      rng.normal(0, 0.1, values[2].shape), rng.uniform(0.5, 1.5, values[3].shape)]
        else:
            kernel = values[0]
            fan_in = int(np.prod(kernel.shape[:-1])) if kernel.shape[-1] != 1 or kernel.ndim != 4 else 9
            values[0] = rng.normal(0, np.sqrt(2.0 / fan_in), kernel.shape)
            values[1:] = [rng.normal(0, 0.1, v.shape) for v in values[1:]]
        layer.set_weights([np.asarray(v, np.float32) for v in values])
    for submodel, final, scale, bias in (("regression_submodel", "pyramid_regression", 0.1, None),
                                         ("classification_submodel", "pyramid_classification", 0.15, -4.0)):
        head = model.get_layer(submodel).get_layer(final)
        kernel, head_bias = head.get_weights()
        head.set_weights([kernel * scale, head_bias if bias is None else np.full_like(head_bias, bias)])


def build_models(with_resnet):
    """[(name, backbone name, training model)]."""
    from keras_retinanet import models

    narrow = {"pyramid_feature_size": 16, "classification_feature_size": 16, "regression_feature_size": 16}
    built = [("legacy_mobilenet128_0.25", "mobilenet128_0.25",
              models.load_model(LEGACY_FILE, backbone_name="mobilenet128_0.25", compile=False))]
    names = ["mobilenet128_0.25"] + (["resnet50"] if with_resnet else [])
    for seed, backbone_name in enumerate(names):
        model = models.backbone(backbone_name).retinanet(num_classes=3, **narrow)
        randomize(model, seed)
        built.append((backbone_name, backbone_name, model))
    return built


def images_file(folder):
    rng = np.random.RandomState(7)
    arrays = {"count": len(IMAGE_SHAPES)}
    for index, (height, width) in enumerate(IMAGE_SHAPES):
        coarse = rng.uniform(-1.0, 1.0, (1, (height + 7) // 8, (width + 7) // 8, 3))
        image = np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2)[:, :height, :width]
        arrays["image_%d" % index] = (image + rng.normal(0, 0.05, image.shape)).astype(np.float32)
    path = os.path.join(folder, "images.npz")
    np.savez(path, **arrays)
    return path, arrays


def detect(model, image):
    return [np.asarray(t)[0] for t in model(image, training=False)[:3]]


def run(venv_python, with_resnet, folder):
    """Write the files, run the venv, load them back; returns the results dict."""
    from keras_retinanet import models
    from keras_retinanet.export import export_model

    images_path, images = images_file(folder)
    files, ours = [], {}
    for name, backbone_name, training in build_models(with_resnet):
        inference = models.convert_model(training)
        for kind, model in (("training", training), ("inference", inference)):
            path = os.path.join(folder, "%s_%s_keras2.h5" % (name, kind))
            export_model(model, path, export_format="h5-keras2")
            entry = {"name": "%s/%s" % (name, kind), "path": path, "backbone": backbone_name, "kind": kind,
                     "megabytes": round(os.path.getsize(path) / 2**20, 2)}
            files.append(entry)
            for index in range(int(images["count"])):
                ours["%s/%d" % (entry["name"], index)] = detect(inference, images["image_%d" % index])
    job = {"images": images_path, "files": files, "output": os.path.join(folder, "venv_detections.npz")}
    job_path = os.path.join(folder, "job.json")
    with open(job_path, "w") as stream:
        json.dump(job, stream)
    completed = subprocess.run([venv_python, os.path.abspath(__file__), "--venv-side", job_path],
                               capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError("the venv side failed:\n" + completed.stderr[-3000:])
    venv = np.load(job["output"])

    results = {"venv_python": venv_python, "image_shapes": [list(s) for s in IMAGE_SHAPES], "files": []}
    for entry in files:
        back = models.load_model(entry["path"], backbone_name=entry["backbone"], compile=False)
        if entry["kind"] == "training":
            back = models.convert_model(back)
        keras_retinanet, round_trip = [], []
        for index in range(int(images["count"])):
            key = "%s/%d" % (entry["name"], index)
            theirs = [venv["%s/%s" % (key, part)] for part in ("boxes", "scores", "labels")]
            keras_retinanet.append(match_detections(ours[key], theirs))
            round_trip.append(match_detections(ours[key], detect(back, images["image_%d" % index])))
        results["files"].append(dict(entry, keras_retinanet=keras_retinanet, loaded_back=round_trip,
                                     ok=all(map(detections_fit, keras_retinanet + round_trip))))
    results["ok"] = all(entry["ok"] for entry in results["files"])
    return results


def summary(entry):
    def worst(comparisons, key):
        return max(c[key] for c in comparisons)

    return "%-45s %5.1f MB  keras-retinanet: %s dets, box %.2e px, score %.2e, unmatched %d;  back here: box %.2e, score %.2e  %s" % (
        entry["name"], entry["megabytes"], [c["reference_count"] for c in entry["keras_retinanet"]],
        worst(entry["keras_retinanet"], "max_box_difference"), worst(entry["keras_retinanet"], "max_score_difference"),
        worst(entry["keras_retinanet"], "unmatched"), worst(entry["loaded_back"], "max_box_difference"),
        worst(entry["loaded_back"], "max_score_difference"), "ok" if entry["ok"] else "FAILED")


def default_venv_python():
    venv = os.environ.get("KERAS_RETINANET_VENV38")
    return os.path.join(venv, "bin", "python") if venv else None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", default=default_venv_python(),
                        help="Python of the keras-retinanet 1.0.0 venv (default: $KERAS_RETINANET_VENV38/bin/python)")
    parser.add_argument("--out", help="Write the results here (default: benchmarks/results/keras2_export.json).")
    parser.add_argument("--resnet", action="store_true", help="Also a ResNet50 (a 95 MB file, slower).")
    parser.add_argument("--venv-side", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.venv_side:
        venv_side(args.venv_side)
        return 0
    if not args.venv or not os.path.exists(args.venv):
        parser.error("no venv Python: pass --venv or set KERAS_RETINANET_VENV38")
    with tempfile.TemporaryDirectory() as folder:
        results = run(args.venv, args.resnet, folder)
    for entry in results["files"]:
        print(summary(entry))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

    write_result("keras2_export", results, output=args.out)
    print("ok" if results["ok"] else "FAILED")
    return 0 if results["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
