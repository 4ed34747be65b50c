"""COCO metrics (pycocotools' COCOeval, 'bbox') of a detector on a dataset.

:func:`evaluate_coco` behaves as keras-retinanet's: on a COCO dataset it maps labels back to COCO category ids,
writes ``{set}_bbox_results.json`` and ``{set}_processed_image_ids.json`` and returns the 12 COCO stats. On
any other dataset it first builds the COCO ground truth in memory (:func:`coco_ground_truth`) from the
dataset's own annotations, with image ids = image indices and category ids = labels, so COCO metrics are
available for CSV, Pascal VOC or any dataset.
"""

import contextlib
import io
import json
import os

from typing import Dict, List, Tuple

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from .detections import _progbar, as_detector

# Names of COCOeval.stats, in order (as keras-retinanet's CocoEval callback logged them).
COCO_STAT_NAMES = (
    "AP @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]",
    "AP @[ IoU=0.50      | area=   all | maxDets=100 ]",
    "AP @[ IoU=0.75      | area=   all | maxDets=100 ]",
    "AP @[ IoU=0.50:0.95 | area= small | maxDets=100 ]",
    "AP @[ IoU=0.50:0.95 | area=medium | maxDets=100 ]",
    "AP @[ IoU=0.50:0.95 | area= large | maxDets=100 ]",
    "AR @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ]",
    "AR @[ IoU=0.50:0.95 | area=   all | maxDets= 10 ]",
    "AR @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]",
    "AR @[ IoU=0.50:0.95 | area= small | maxDets=100 ]",
    "AR @[ IoU=0.50:0.95 | area=medium | maxDets=100 ]",
    "AR @[ IoU=0.50:0.95 | area= large | maxDets=100 ]",
)


def _quiet(verbose):
    """pycocotools prints while indexing and evaluating; silence it unless verbose."""
    return contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())


def is_coco_dataset(generator) -> bool:
    """Whether the dataset carries its own COCO ground truth (a CocoGenerator)."""
    return all(hasattr(generator, name) for name in ("coco", "image_ids", "label_to_coco_label"))


def coco_ground_truth_dataset(generator) -> dict:
    """A COCO-format ground-truth dict from any dataset's annotations.

    Image ids are image indices, category ids are labels, annotation ids count from 1 (COCOeval treats id 0
    as "unmatched"). Boxes become [x, y, w, h]; none is crowd.

    Args:
        generator: the dataset (size, num_classes, has_label, label_to_name, load_annotations).

    Returns:
        dict with 'images', 'annotations' and 'categories'.
    """
    images, annotations = [], []
    for index in range(generator.size()):
        images.append({"id": index, "file_name": str(index)})
        image_annotations = generator.load_annotations(index)
        bboxes = np.asarray(image_annotations["bboxes"], dtype=np.float64).reshape(-1, 4)
        labels = np.asarray(image_annotations["labels"]).reshape(-1)
        for (x1, y1, x2, y2), label in zip(bboxes, labels):
            width, height = float(x2 - x1), float(y2 - y1)
            annotations.append({
                "id": len(annotations) + 1,
                "image_id": index,
                "category_id": int(label),
                "bbox": [float(x1), float(y1), width, height],
                "area": width * height,
                "iscrowd": 0,
            })
    categories = [
        {"id": label, "name": str(generator.label_to_name(label))}
        for label in range(generator.num_classes())
        if generator.has_label(label)
    ]
    return {"images": images, "annotations": annotations, "categories": categories}


def coco_ground_truth(generator, verbose=0) -> COCO:
    """A pycocotools ``COCO`` built in memory from :func:`coco_ground_truth_dataset`."""
    coco = COCO()
    coco.dataset = coco_ground_truth_dataset(generator)
    with _quiet(verbose):
        coco.createIndex()
    return coco


def _coco_mapping(generator):
    """(COCO ground truth, image index -> image id, label -> category id) for a dataset."""
    if is_coco_dataset(generator):
        return generator.coco, lambda index: generator.image_ids[index], generator.label_to_coco_label
    return coco_ground_truth(generator), int, int


def coco_detections(generator, model, threshold: float = 0.05, verbose=1) -> Tuple[List[dict], list]:
    """Run the model on every image and write its detections as COCO results.

    Args:
        generator: the dataset.
        model: an inference model.
        threshold: detections with a score below it are dropped (keras-retinanet kept score >= threshold).
        verbose: show a progress bar.

    Returns:
        (results, image_ids): results is a list of {'image_id', 'category_id', 'score', 'bbox': [x, y, w, h]}
        in original image pixels; image_ids the ids of the images processed.
    """
    _, image_id_of, category_of = _coco_mapping(generator)
    detector = as_detector(model, generator)
    results, image_ids = [], []
    progbar = _progbar(generator.size(), verbose)
    for index in range(generator.size()):
        found = detector.predict(generator.load_image(index))
        image_id = image_id_of(index)
        # keras-retinanet stopped at the first score below the threshold (outputs are sorted); selecting every score
        # at or above it gives the same result on sorted outputs and does not rely on the order.
        results += found[found.scores >= threshold].to_coco(image_id, category_of)
        image_ids.append(image_id)
        if progbar is not None:
            progbar.update(index + 1)
    return results, image_ids


def _empty_results(coco_true):
    """A COCO results object holding no detections (``loadRes`` refuses an empty list)."""
    coco_pred = COCO()
    coco_pred.dataset = {
        "images": list(coco_true.dataset.get("images", [])),
        "categories": list(coco_true.dataset.get("categories", [])),
        "annotations": [],
    }
    with _quiet(False):
        coco_pred.createIndex()
    return coco_pred


def _run_cocoeval(coco_true: COCO, results: List[dict], image_ids, verbose=1) -> COCOeval:
    """A summarized COCOeval ('bbox') of results against a ground truth, over the given images."""
    with _quiet(verbose):
        # loadRes adds keys to the dicts it is given; hand it copies so the caller's results stay as written.
        coco_pred = coco_true.loadRes([dict(r) for r in results]) if results else _empty_results(coco_true)
        coco_eval = COCOeval(coco_true, coco_pred, "bbox")
        coco_eval.params.imgIds = list(image_ids)
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return coco_eval


def coco_stats(coco_true: COCO, results: List[dict], image_ids, verbose=1) -> np.ndarray:
    """COCOeval ('bbox') of results against a ground truth, over the given images.

    Args:
        coco_true: pycocotools COCO ground truth.
        results: list of COCO result dicts.
        image_ids: the images evaluated.
        verbose: print pycocotools' summary.

    Returns:
        (12,) float64 COCOeval stats, named by :data:`COCO_STAT_NAMES` (-1 where the ground truth has no box
        of that size).
    """
    return np.asarray(_run_cocoeval(coco_true, results, image_ids, verbose).stats, dtype=np.float64)


def per_category_ap(coco_eval: COCOeval, coco_true: COCO) -> Dict[int, Tuple[float, float]]:
    """Each category's AP@[.5:.95] (area all, 100 detections), the per-class part of the first COCO stat.

    Args:
        coco_eval: an accumulated COCOeval.
        coco_true: its ground truth.

    Returns:
        {category id: (AP, number of non-crowd annotations in the evaluated images)}; a category without
        annotations has AP 0 (COCOeval leaves it undefined and out of the mean), as in the Pascal VOC table.
    """
    params = coco_eval.params
    # precision: (IoU thresholds, recall points, categories, area ranges, max detections); -1 = undefined.
    precision = coco_eval.eval["precision"][:, :, :, list(params.areaRngLbl).index("all"), -1]
    result = {}
    for k, category in enumerate(params.catIds):
        defined = precision[:, :, k][precision[:, :, k] > -1]
        annotations = coco_true.loadAnns(coco_true.getAnnIds(imgIds=list(params.imgIds), catIds=[category]))
        count = sum(1 for annotation in annotations if not annotation.get("iscrowd", 0))
        result[int(category)] = (float(defined.mean()) if defined.size else 0.0, float(count))
    return result


def evaluate_coco(generator, model, threshold: float = 0.05, output_dir=".", verbose=1, per_class: bool = False):
    """COCO metrics of a model on a dataset, as keras-retinanet's ``evaluate_coco``.

    On a COCO dataset the dataset's own ground truth, image ids and category ids are used; on any other
    dataset the ground truth is built from its annotations (see :func:`coco_ground_truth_dataset`).

    Args:
        generator: the dataset; a COCO one has ``coco``, ``image_ids``, ``set_name``, ``label_to_coco_label``.
        model: an inference model.
        threshold: minimum score of a detection.
        output_dir: folder for ``{set}_bbox_results.json`` and ``{set}_processed_image_ids.json``
            (keras-retinanet wrote them in the working directory, the default); None writes no file.
        verbose: progress bar and pycocotools' printed summary.
        per_class: also return each class's AP (:func:`per_category_ap`), keyed by the dataset's labels.

    Returns:
        (12,) float64 COCO stats. Where keras-retinanet returned None for a model without any detection, this
        returns the true stats of no detections (0, or -1 where undefined). With ``per_class``:
        (stats, {label: (AP@[.5:.95], num_annotations)}).
    """
    coco_true, _, category_of = _coco_mapping(generator)
    results, image_ids = coco_detections(generator, model, threshold=threshold, verbose=verbose)

    if output_dir is not None:
        os.makedirs(output_dir, exist_ok=True)
        set_name = getattr(generator, "set_name", None) or "dataset"
        with open(os.path.join(output_dir, f"{set_name}_bbox_results.json"), "w") as f:
            json.dump(results, f, indent=4)
        with open(os.path.join(output_dir, f"{set_name}_processed_image_ids.json"), "w") as f:
            json.dump(image_ids, f, indent=4)

    coco_eval = _run_cocoeval(coco_true, results, image_ids, verbose=verbose)
    stats = np.asarray(coco_eval.stats, dtype=np.float64)
    if not per_class:
        return stats
    by_category = per_category_ap(coco_eval, coco_true)
    labels = [label for label in range(generator.num_classes()) if generator.has_label(label)]
    return stats, {label: by_category.get(category_of(label), (0.0, 0.0)) for label in labels}


def named_coco_stats(stats: np.ndarray) -> Dict[str, float]:
    """The 12 COCO stats as {name in :data:`COCO_STAT_NAMES`: float}, in that order."""
    return {name: float(value) for name, value in zip(COCO_STAT_NAMES, stats)}
