"""Average precision with tied scores: keras-retinanet 1.0.0's depends on numpy's argsort, this package's does not.

    python benchmarks/check_tied_scores_ap.py --venv /work/venv38/bin/python

One seeded set of detections with many equal scores (as an undertrained model gives: scores on a coarse grid), one
class, 40 images of 3 objects, each object found twice (a true and a duplicate detection, tied) plus false
detections. The same detections go, through a stand-in dataset and model (numpy only), to

* keras-retinanet 1.0.0's own ``keras_retinanet.utils.eval.evaluate``, in its venv (numpy 1.18.5);
* a transcription of that function's ranking and AP (``np.argsort(-scores)``, numpy's default unstable sort, in
  ``_get_detections`` and ``evaluate``), run both in the venv (where it must equal the real function) and here
  (this environment's numpy: on CPUs with AVX-512, numpy >= 2 sorts with SIMD kernels that order ties otherwise);
* this package's ``keras_retinanet.evaluation.voc.evaluate`` here, and the same transcription with a stable sort
  (this package's ranking) in both environments.

Writes benchmarks/results/tied_scores_ap.json (bench_shared.write_result).
"""

import argparse
import json
import os
import subprocess
import sys

from bench_shared import write_result  # first: it reads the load average at the start

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPOSITORY = os.path.dirname(HERE)
SEED = 0
IMAGES = 40


def tied_case(seed=SEED, images=IMAGES):
    """[(annotations (A, 4), boxes (D, 4), scores (D,))] per image; scores on a 0.05 grid (many ties)."""
    rng = np.random.RandomState(seed)
    case = []
    for _ in range(images):
        corners = rng.uniform(0, 150, (3, 2))
        annotations = np.concatenate([corners, corners + rng.uniform(30, 50, (3, 2))], axis=1)
        found = annotations + rng.uniform(-2, 2, annotations.shape)
        duplicates = annotations + rng.uniform(-4, 4, annotations.shape)
        corners = rng.uniform(0, 150, (3, 2))
        false = np.concatenate([corners, corners + rng.uniform(20, 50, (3, 2))], axis=1)
        boxes = np.concatenate([found, duplicates, false])
        scores = np.round(rng.uniform(0.1, 0.6, len(boxes)) / 0.05) * 0.05
        case.append((annotations, boxes, scores))
    return case


class Dataset:
    """A stand-in for keras-retinanet's Generator: image i is an 8x8 image filled with i; one class."""

    def __init__(self, case):
        self.case = case

    def size(self):
        return len(self.case)

    def num_classes(self):
        return 1

    def has_label(self, label):
        return label == 0

    def label_to_name(self, label):
        return "object"

    def load_image(self, index):
        return np.full((8, 8, 3), index, dtype=np.uint8)

    def load_annotations(self, index):
        annotations = self.case[index][0]
        return {"bboxes": annotations, "labels": np.zeros(len(annotations), dtype=np.int64)}

    def preprocess_image(self, image):
        return image.astype(np.float32)

    def resize_image(self, image):
        return image, 1.0


class Model:
    """A stand-in inference model: the detections of the image it is given, padded to 100 with -1."""

    def __init__(self, case):
        self.case = case

    def predict_on_batch(self, batch):
        _, boxes, scores = self.case[int(np.asarray(batch)[0, 0, 0, 0])]
        padded_boxes, padded_scores = -np.ones((1, 100, 4), np.float32), -np.ones((1, 100), np.float32)
        padded_boxes[0, :len(boxes)], padded_scores[0, :len(scores)] = boxes, scores
        labels = np.where(padded_scores > -1, 0, -1).astype(np.int32)
        return [padded_boxes, padded_scores, labels]


def _iou(box, boxes):
    width = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])
    height = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])
    intersection = np.clip(width, 0, None) * np.clip(height, 0, None)
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return intersection / (union - intersection)


def transcribed_ap(case, kind=None, iou_threshold=0.5):
    """keras-retinanet 1.0.0's utils/eval.py ranking and AP for one class, its argsort's kind a parameter.

    As there: per image the scores above 0.05 sorted by ``np.argsort(-scores)`` (top 100), each detection a true
    positive if its best annotation (IoU >= 0.5) is not yet taken; then all detections sorted again by
    ``np.argsort(-scores)``, cumulated, and the AP of py-faster-rcnn's precision envelope. The model's float32
    scores are used, as keras-retinanet receives them.
    """
    false_positives, true_positives, all_scores, num_annotations = [], [], [], 0.0
    for annotations, boxes, scores in case:
        scores = scores.astype(np.float32)
        order = np.argsort(-scores, kind=kind)[:100]
        num_annotations += len(annotations)
        detected = []
        for box, score in zip(boxes.astype(np.float32)[order], scores[order]):
            all_scores.append(score)
            overlaps = _iou(box.astype(np.float64), annotations)
            assigned = int(np.argmax(overlaps))
            if overlaps[assigned] >= iou_threshold and assigned not in detected:
                false_positives.append(0)
                true_positives.append(1)
                detected.append(assigned)
            else:
                false_positives.append(1)
                true_positives.append(0)
    indices = np.argsort(-np.asarray(all_scores, dtype=np.float64), kind=kind)
    false_positives = np.cumsum(np.asarray(false_positives, dtype=np.float64)[indices])
    true_positives = np.cumsum(np.asarray(true_positives, dtype=np.float64)[indices])
    recall = true_positives / num_annotations
    precision = true_positives / np.maximum(true_positives + false_positives, np.finfo(np.float64).eps)
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def transcriptions(case):
    return {"numpy": np.__version__, "default_argsort": transcribed_ap(case), "stable_argsort": transcribed_ap(case, "stable")}


def venv_side():
    """keras-retinanet 1.0.0's evaluate and the transcriptions, under the venv's numpy; prints one JSON line."""
    from keras_retinanet.utils.eval import evaluate  # keras-retinanet 1.0.0

    case = tied_case()
    average_precisions, _ = evaluate(Dataset(case), Model(case))
    print(json.dumps(dict(transcriptions(case), keras_retinanet_evaluate=float(average_precisions[0][0]))))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", default=os.path.join(os.environ["KERAS_RETINANET_VENV38"], "bin", "python")
                        if os.environ.get("KERAS_RETINANET_VENV38") else None,
                        help="Python of the keras-retinanet 1.0.0 venv (default: $KERAS_RETINANET_VENV38/bin/python)")
    parser.add_argument("--venv-side", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.venv_side:
        venv_side()
        return 0
    if not args.venv or not os.path.exists(args.venv):
        parser.error("no venv Python: pass --venv or set KERAS_RETINANET_VENV38")
    done = subprocess.run([args.venv, os.path.abspath(__file__), "--venv-side"], capture_output=True, text=True,
                          cwd=HERE, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    if done.returncode != 0:
        raise RuntimeError("the venv side failed:\n" + done.stderr[-3000:])
    venv = json.loads(done.stdout.strip().splitlines()[-1])

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path[:0] = [REPOSITORY, HERE]
    from keras_retinanet.evaluation.voc import evaluate

    case = tied_case()
    average_precisions, _ = evaluate(Dataset(case), Model(case), verbose=0)
    scores = np.concatenate([c[2] for c in case])
    results = {
        "case": {"images": len(case), "detections": int(len(scores)), "distinct_scores": int(len(np.unique(scores))),
                 "annotations": int(sum(len(c[0]) for c in case)), "seed": SEED},
        "keras_retinanet_venv": venv,
        "here": dict(transcriptions(case), this_package_evaluate=float(average_precisions[0][0])),
    }
    print(json.dumps(results, indent=1))

    write_result("tied_scores_ap", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
