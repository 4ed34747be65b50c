"""Test doubles of evaluation's inputs, with detections worked out by hand.

``ToyDataset`` has keras-retinanet's Generator API over numpy images; ``InjectedModel`` is an inference model whose
detections are given per image. ``hand_dataset``/``hand_model`` are the Pascal-VOC case of test_eval (AP 5/9),
``toy_dataset``/``DETECTIONS`` the COCO case of test_coco_eval.
"""

import json

import cv2
import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


class ToyDataset:
    """keras-retinanet's Generator API over in-memory images.

    Args:
        images: list of (H, W, 3) uint8 BGR images; their sizes must differ (the model tells them apart so).
        annotations: per image, (bboxes (K, 4) x1y1x2y2, labels (K,)).
        class_names: {label: name}; labels not in it are ones the dataset does not have.
        num_classes: number of labels, 0..num_classes-1.
        resize_factor: ``resize_image`` enlarges by this factor and returns it as the scale.
    """

    def __init__(self, images, annotations, class_names, num_classes=None, resize_factor=2.0):
        self.images = images
        self.annotations = annotations
        self.class_names = class_names
        self._num_classes = num_classes if num_classes is not None else max(class_names) + 1
        self.resize_factor = resize_factor

    def size(self):
        return len(self.images)

    def num_classes(self):
        return self._num_classes

    def has_label(self, label):
        return label in self.class_names

    def label_to_name(self, label):
        return self.class_names[label]

    def load_image(self, index):
        return self.images[index].copy()

    def load_annotations(self, index):
        bboxes, labels = self.annotations[index]
        return {
            "bboxes": np.asarray(bboxes, dtype=np.float64).reshape(-1, 4),
            "labels": np.asarray(labels, dtype=np.int64).reshape(-1),
        }

    def preprocess_image(self, image):
        return image.astype(np.float32) - 100.0

    def resize_image(self, image):
        if self.resize_factor == 1.0:
            return image, 1.0
        resized = cv2.resize(image, None, fx=self.resize_factor, fy=self.resize_factor)
        return resized, self.resize_factor


class InjectedModel:
    """An inference model whose detections are given per image, in the image's original pixels.

    ``predict_on_batch`` recognises the image by its (resized) size, scales the injected boxes to the resized
    image as a real model would see them, and pads to ``num_outputs`` with -1 like FilterDetections.

    Args:
        detections: {(H, W) of the original image: list of (x1, y1, x2, y2, score, label)}.
        scale: the dataset's resize factor.
        num_outputs: padded number of detections.
    """

    def __init__(self, detections, scale=2.0, num_outputs=10):
        self.detections = detections
        self.scale = scale
        self.num_outputs = num_outputs
        self.batches = []

    def predict_on_batch(self, batch):
        self.batches.append(batch)
        original = (int(round(batch.shape[1] / self.scale)), int(round(batch.shape[2] / self.scale)))
        rows = np.asarray(self.detections[original], dtype=np.float64).reshape(-1, 6)
        boxes = -np.ones((1, self.num_outputs, 4), dtype=np.float32)
        scores = -np.ones((1, self.num_outputs), dtype=np.float32)
        labels = -np.ones((1, self.num_outputs), dtype=np.int32)
        boxes[0, : len(rows)] = rows[:, :4] * self.scale
        scores[0, : len(rows)] = rows[:, 4]
        labels[0, : len(rows)] = rows[:, 5]
        return [boxes, scores, labels]


def blank(height, width):
    return np.full((height, width, 3), 40, dtype=np.uint8)


# One 64x96 image with three 'circle' annotations A, B, C and, in shuffled order, these detections:
#   0.9 circle = A exactly                   IoU(A) = 1           -> TP (A)
#   0.8 circle = top half of A               IoU(A) = 200/400 = .5 -> FP (A already found)
#   0.7 circle = B moved 4 px right          IoU(B) = 320/480     -> TP (B)
#   0.6 circle below C                       IoU = 0              -> FP
#   0.04 circle = C exactly                  below score_threshold 0.05, dropped
#   0.95 square                              no square annotation -> class 1: AP 0, 0 annotations
#   0.9 label 2                              a label the dataset does not have -> not evaluated
# By score: TP FP TP FP, so precision 1, 1/2, 2/3, 1/2 and recall 1/3, 1/3, 2/3, 2/3.
# Envelope at recall 1/3: 1, at 2/3: 2/3, at 1: 0, so AP = 1/3 * 1 + 1/3 * 2/3 + 1/3 * 0 = 5/9.
A, B, C = (10, 20, 30, 40), (40, 20, 60, 40), (70, 20, 90, 40)


HAND_DETECTIONS = [
    (44, 20, 64, 40, 0.7, 0),
    (10, 20, 30, 30, 0.8, 0),
    (70, 20, 90, 40, 0.04, 0),
    (5, 45, 15, 55, 0.95, 1),
    (10, 20, 30, 40, 0.9, 0),
    (70, 45, 90, 60, 0.6, 0),
    (20, 45, 40, 60, 0.9, 2),
]


def hand_dataset():
    return ToyDataset(
        [blank(64, 96)], [([A, B, C], [0, 0, 0])], {0: "circle", 1: "square"}, num_classes=3
    )


def hand_model(detections=HAND_DETECTIONS):
    return InjectedModel({(64, 96): detections})


# Two images. Ground truth (x1, y1, x2, y2, label):
GROUND_TRUTH = [
    [(10, 10, 30, 30, 0), (35, 30, 60, 60, 1)],  # image 0, 64x64
    [(5, 5, 25, 45, 0)],  # image 1, 64x80
]


# Detections (x1, y1, x2, y2, score, label), in original pixels:
DETECTIONS = {
    (64, 64): [(10, 10, 30, 30, 0.9, 0), (36, 30, 60, 58, 0.8, 1), (40, 0, 60, 20, 0.3, 0), (0, 0, 5, 5, 0.01, 1)],
    (64, 80): [(6, 5, 25, 44, 0.7, 0), (50, 10, 70, 30, 0.6, 1)],
}


SIZES = [(64, 64), (64, 80)]


def toy_dataset():
    annotations = [([row[:4] for row in rows], [row[4] for row in rows]) for rows in GROUND_TRUTH]
    return ToyDataset([blank(*size) for size in SIZES], annotations, {0: "circle", 1: "square"})


def write_ground_truth_json(path, image_ids, category_ids):
    """The ground truth written out by hand in COCO format."""
    annotations = []
    for image_id, rows in zip(image_ids, GROUND_TRUTH):
        for x1, y1, x2, y2, label in rows:
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": category_ids[label],
                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0,
            })
    dataset = {
        "images": [{"id": i, "width": w, "height": h, "file_name": f"{i}.png"} for i, (h, w) in zip(image_ids, SIZES)],
        "annotations": annotations,
        "categories": [{"id": category_ids[0], "name": "circle"}, {"id": category_ids[1], "name": "square"}],
    }
    path.write_text(json.dumps(dataset))
    return path


def expected_results(image_ids, category_ids, threshold=0.05):
    """The detections at or above the threshold in COCO results format, worked out by hand."""
    results = []
    for image_id, size in zip(image_ids, SIZES):
        for x1, y1, x2, y2, score, label in DETECTIONS[size]:
            if score >= threshold:
                results.append({
                    "image_id": image_id, "category_id": category_ids[label],
                    "score": score, "bbox": [x1, y1, x2 - x1, y2 - y1],
                })
    return results


def cocoeval_directly(ground_truth_file, results_file, image_ids):
    coco_true = COCO(str(ground_truth_file))
    coco_pred = coco_true.loadRes(str(results_file))
    coco_eval = COCOeval(coco_true, coco_pred, "bbox")
    coco_eval.params.imgIds = image_ids
    coco_eval.evaluate()
    coco_eval.accumulate()
    coco_eval.summarize()
    return coco_eval.stats
