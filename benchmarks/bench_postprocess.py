"""Post-processing (FilterDetections) alone: keras-retinanet's exact filter against a per-level candidate cap, and
against keras-retinanet 1.0.0 itself, on the same inputs in one run.

The inputs are what a ResNet50 RetinaNet's filter sees on an 800x1067 image (160,956 anchors on P3-P7, 80 classes),
generated with a fixed seed:

- sparse: 30 objects, each scored high by 6 anchors, and about 2,000 background scores above 0.05 (a trained model
  on an ordinary photo);
- crowded: 600 objects, each scored high by 6 anchors of P3 (3,600 high scores in one level), and the same
  background (a trained model on a crowded photo), with room for 1,000 detections;
- dense_5000: 5,000 objects, each scored high by 6 anchors of P3 (30,000 high scores), with room for 5,000
  detections (blood cells, crowds);
- saturated: every one of the 12.9 million scores above 0.05 (an untrained model).

For each case: the median time of our filter (default, and capped at 1,000 candidates per level), keras-retinanet
1.0.0's time on the same arrays (with --reference-python, its Python 3.8 environment), whether our default's
detections equal keras-retinanet's, how many of them the cap keeps, and (crowded) how many of the 600 objects each
finds. Writes benchmarks/results/postprocess.json.

Run: python benchmarks/bench_postprocess.py [--runs 5] [--reference-python /path/to/py38/bin/python]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

from bench_shared import median_seconds, write_result  # first: it reads the load average at the start

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

LEVEL_SIZES = [120600, 30150, 7650, 1989, 567]  # 800x1067: 100x134, 50x67, 25x34, 13x17, 7x9 positions, 9 anchors
NUM_CLASSES = 80
IMAGE = (800, 1067)
HIGH_SCORE = 0.6
MAX_DETECTIONS = {"sparse": 300, "crowded": 1000, "dense_5000": 5000, "saturated": 300}
OBJECTS = {"sparse": 30, "crowded": 600, "dense_5000": 5000}


def case_inputs(name, seed=0):
    """(boxes (1, N, 4), classification (1, N, C), number of objects) of one case."""
    rng = np.random.default_rng(seed)
    total = sum(LEVEL_SIZES)
    corner = rng.uniform(0, [IMAGE[1] - 60, IMAGE[0] - 60], (total, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(8, 60, (total, 2))], axis=1)
    if name == "saturated":
        return boxes[None].astype(np.float32), rng.uniform(0.06, 1.0, (1, total, NUM_CLASSES)).astype(np.float32), 0
    classification = np.zeros((total, NUM_CLASSES), np.float32)
    background = rng.choice(total * NUM_CLASSES, 2000, replace=False)
    classification.reshape(-1)[background] = rng.uniform(0.05, 0.3, 2000)
    objects = OBJECTS[name]
    columns = {30: 6, 600: 30, 5000: 100}[objects]
    pitch = 10.5 if objects == 5000 else 35.0  # 5,000 objects of 8 px on a 100 x 50 grid; else 28 px ones
    size = 8.0 if objects == 5000 else 28.0
    anchors = rng.choice(LEVEL_SIZES[0], objects * 6, replace=False).reshape(objects, 6)
    for number, object_anchors in enumerate(anchors):
        x, y = pitch * (number % columns) + 5, (pitch + 3) * (number // columns) + 5
        label = number % NUM_CLASSES
        for anchor in object_anchors:
            boxes[anchor] = [x, y, x + size, y + size + 2] + rng.uniform(-size / 20, size / 20, 4)
            classification[anchor, label] = rng.uniform(HIGH_SCORE, 0.99)
    return boxes[None].astype(np.float32), classification[None], objects


def ours(boxes, classification, runs, **options):
    """(median seconds, (boxes, scores, labels)) of this package's FilterDetections in a compiled function."""
    import tensorflow as tf

    from keras_retinanet.layers import FilterDetections

    layer = FilterDetections(**options)
    level_anchors = [tf.zeros((1, size, 4)) for size in LEVEL_SIZES]
    run = tf.function(lambda b, c: layer([b, c], level_anchors=level_anchors))
    boxes, classification = tf.constant(boxes), tf.constant(classification)
    outputs = [np.asarray(t)[0] for t in run(boxes, classification)]
    return median_seconds(lambda: run(boxes, classification)[1].numpy(), runs)[0], outputs


REFERENCE = """
import sys, time, numpy as np, tensorflow as tf
from keras_retinanet.layers import FilterDetections
inputs, output, runs, max_detections = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
data = np.load(inputs)
layer = FilterDetections(max_detections=max_detections)
run = tf.function(lambda b, c: layer([b, c]))
boxes, classification = tf.constant(data["boxes"]), tf.constant(data["classification"])
result = [t.numpy()[0] for t in run(boxes, classification)]
times = []
for _ in range(runs + 2):
    start = time.perf_counter(); run(boxes, classification)[1].numpy(); times.append(time.perf_counter() - start)
np.savez(output, boxes=result[0], scores=result[1], labels=result[2], seconds=np.median(times[2:]),
         tensorflow=tf.__version__)
"""


def reference(python, boxes, classification, runs, max_detections):
    """(median seconds, (boxes, scores, labels)) of keras-retinanet 1.0.0's FilterDetections, in its environment."""
    with tempfile.TemporaryDirectory() as folder:
        inputs, output = os.path.join(folder, "inputs.npz"), os.path.join(folder, "output.npz")
        np.savez(inputs, boxes=boxes, classification=classification)
        subprocess.run([python, "-c", REFERENCE, inputs, output, str(runs), str(max_detections)], check=True, cwd=folder,
                       env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES=""))  # fmt: skip
        with np.load(output) as result:
            return float(result["seconds"]), (result["boxes"], result["scores"], result["labels"])


def detections(outputs):
    boxes, scores, labels = outputs
    valid = labels >= 0
    return boxes[valid], scores[valid], labels[valid]


def identical(a, b):
    """Whether two filters gave the same detections in the same order (boxes to 1e-4 px, scores to 1e-6)."""
    (boxes_a, scores_a, labels_a), (boxes_b, scores_b, labels_b) = detections(a), detections(b)
    return (len(labels_a) == len(labels_b) and bool(np.array_equal(labels_a, labels_b))
            and bool(np.allclose(scores_a, scores_b, rtol=0, atol=1e-6))
            and bool(np.allclose(boxes_a, boxes_b, rtol=0, atol=1e-4)))  # fmt: skip


def kept_fraction(reference_outputs, outputs):
    """The fraction of ``reference_outputs``' detections that ``outputs`` has too (same label, box and score)."""
    boxes_r, scores_r, labels_r = detections(reference_outputs)
    boxes, scores, labels = detections(outputs)
    found = {(int(label), round(float(score), 5), tuple(np.round(box, 2))) for box, score, label in
             zip(boxes, scores, labels)}  # fmt: skip
    keys = [(int(label), round(float(score), 5), tuple(np.round(box, 2))) for box, score, label in
            zip(boxes_r, scores_r, labels_r)]  # fmt: skip
    return sum(key in found for key in keys) / max(1, len(keys))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cases", nargs="+", default=list(MAX_DETECTIONS), choices=list(MAX_DETECTIONS))
    parser.add_argument("--reference-python", help="Python of an environment with keras-retinanet 1.0.0.")
    parser.add_argument("--output", help="Result file (default: benchmarks/results/postprocess.json).")
    args = parser.parse_args(argv)
    results = {"image": list(IMAGE), "anchors": sum(LEVEL_SIZES), "classes": NUM_CLASSES, "cases": {}}
    for name in args.cases:
        boxes, classification, objects = case_inputs(name)
        limit = MAX_DETECTIONS[name]
        exact_s, exact = ours(boxes, classification, args.runs, max_detections=limit)
        capped_s, capped = ours(boxes, classification, args.runs, max_detections=limit, max_candidates_per_level=1000)
        case = {
            "scores_above_threshold": int(np.sum(classification > 0.05)),
            "objects": objects,
            "max_detections": limit,
            "default_s": exact_s,
            "cap_1000_s": capped_s,
            "cap_1000_over_default": capped_s / exact_s,
            "default_detections": int(np.sum(exact[2] >= 0)),
            "cap_1000_keeps_of_default": kept_fraction(exact, capped),
        }
        if objects:
            case["objects_found_default"] = int(np.sum(exact[1] >= HIGH_SCORE))
            case["objects_found_cap_1000"] = int(np.sum(capped[1] >= HIGH_SCORE))
        if args.reference_python:
            reference_s, reference_outputs = reference(args.reference_python, boxes, classification, args.runs, limit)
            case["keras_retinanet_s"] = reference_s
            case["default_over_keras_retinanet"] = exact_s / reference_s
            case["default_equals_keras_retinanet"] = identical(exact, reference_outputs)
            case["keras_retinanet_keeps_of_default"] = kept_fraction(exact, reference_outputs)
        results["cases"][name] = case
        print(name, json.dumps(case), flush=True)
    write_result("postprocess", results, output=args.output)


if __name__ == "__main__":
    main()
