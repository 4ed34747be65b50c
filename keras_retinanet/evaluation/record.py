"""What ``retinanet-evaluate`` keeps of a run: ``evaluation.json`` and ``per_class_ap.png`` in one folder.

The folder is ``--save-path`` when given (beside the drawn images and precision-recall plots), otherwise the
first of ``snapshots/evaluate/{model file stem}_{dataset type}``, ``..._2``, ``..._3``, ... that does not exist
(relative to the working directory, beside the training runs' folders), so that a second run never overwrites
the first. Both files are written
atomically: a crash leaves the previous file or none, never half of one.

``evaluation.json`` holds:

    version      the package version
    started      local start time (ISO 8601); seconds: wall time of the command until the record was written
    mAP, metric  the headline number and what it is ("mAP", "weighted mAP" or "COCO AP@[.5:.95]")
    pascal_voc   per-class AP and annotations, mAP, weighted_mAP, inference_time, num_images, iou_threshold
                 (null on COCO data)
    coco         the 12 COCO stats by name and per-class AP@[.5:.95] (null unless computed)
    model        path as given, file read, backbone, the file's DetectorSpec (null if it has none), precision
    dataset      the dataset settings, number of images, class names
    settings     the whole RetinaNetConfig (its ``to_dict``)
    files        the files of the folder this run wrote (names relative to it)

The numbers are unrounded; the printed table shows them rounded to 4 decimals (pycocotools' summary: 3).
"""

import datetime
import json
import os
import shutil
import time
from typing import Any, Dict, NamedTuple, Optional

from .. import __version__
from ..atomic_files import claim_new_folder, write_bytes_atomically
from ..config import RetinaNetConfig, defaults
from .report import _safe_file_name, save_per_class_ap_chart
from .run import run_evaluation

# snapshots/evaluate: beside the training runs, so that everything runs leave is in one (git-ignored) place.
RUNS_FOLDER = os.path.join(defaults.RUNS_FOLDER, "evaluate")
RECORD_FILE = "evaluation.json"
CHART_FILE = "per_class_ap.png"


class EvaluationRecord(NamedTuple):
    """What :func:`record_evaluation` did: the headline number, the folder and the JSON file written."""

    mAP: float
    folder: str
    path: str


def model_stem(source: str) -> str:
    """A model argument's file name without extension (a SavedModel folder: its name; a preset: the name)."""
    name = os.path.basename(os.path.normpath(str(source)))
    return _safe_file_name(os.path.splitext(name)[0] or name)


def record_folder_name(model_source: str, dataset_type: str) -> str:
    """``{stem}_{dataset}``, the name of an evaluation's folder in RUNS_FOLDER (:func:`claim_new_folder` numbers it
    ``..._2``, ``..._3``, ... when taken, so two evaluations started at once get two folders)."""
    return f"{model_stem(model_source)}_{_safe_file_name(dataset_type)}"


def describe_model(source: str, model_file: Optional[str], detector, config: RetinaNetConfig) -> Dict[str, Any]:
    """The ``model`` part of the record; ``detector`` may be a Detector or a bare model."""
    spec = getattr(detector, "spec", None)
    # A Detector made for a keras-retinanet file holds a spec built from the settings, not the file's own.
    own_spec = spec is not None and getattr(detector, "from_file", True) and hasattr(spec, "to_dict")
    return {
        "path": str(source),
        "file": None if model_file is None else str(model_file),
        "backbone": config.model.backbone,
        "spec": spec.to_dict() if own_spec else None,
        "precision": config.evaluation.precision,
    }


def describe_dataset(generator, config: RetinaNetConfig) -> Dict[str, Any]:
    """The ``dataset`` part of the record: its settings, size and class names (label order)."""
    dataset = config.to_dict()["data"]["dataset"]
    labels = [label for label in range(generator.num_classes()) if generator.has_label(label)]
    return {**(dataset or {}), "num_images": int(generator.size()),
            "classes": [str(generator.label_to_name(label)) for label in labels]}  # fmt: skip


def _chart(results: Dict[str, Any], path: str) -> Optional[str]:
    """The per-class AP chart of the Pascal VOC table, or of the per-class COCO AP on COCO data."""
    if results["pascal_voc"] is not None:
        part = results["pascal_voc"]
        title = "Per-class AP (IoU {:g}), {} images".format(part["iou_threshold"], part["num_images"])
        return save_per_class_ap_chart(part["classes"], results["mAP"], path, title, mean_label=results["metric"])
    if results["coco"] is not None:
        coco = results["coco"]
        mean = coco["stats"][next(iter(coco["stats"]))]
        return save_per_class_ap_chart(
            coco["classes"], mean, path, "Per-class COCO AP@[.5:.95]", mean_label="COCO AP@[.5:.95]"
        )
    return None


def write_record(folder: str, record: Dict[str, Any]) -> str:
    """Write ``record`` as ``{folder}/evaluation.json`` atomically; returns its path."""
    text = json.dumps(record, indent=2) + "\n"
    return write_bytes_atomically(text.encode("utf-8"), os.path.join(folder, RECORD_FILE))


def record_evaluation(
    generator,
    model,
    config: RetinaNetConfig,
    model_source: str,
    model_file: Optional[str] = None,
    started: Optional[float] = None,
) -> EvaluationRecord:
    """Run :func:`run_evaluation` (which prints the results) and keep them: JSON and chart in the run's folder.

    Args:
        generator: the dataset.
        model: the Detector (or inference model) evaluated.
        config: the configuration (``evaluation.save_path`` chooses the folder when set).
        model_source: the model as the user named it (path or preset); names the folder.
        model_file: the local file read, if other than ``model_source``.
        started: ``time.time()`` when the command started (default: now), for ``seconds``.

    Returns:
        :class:`EvaluationRecord` (mAP, folder, path of evaluation.json).
    """
    started = time.time() if started is None else started
    folder = config.evaluation.save_path
    created = not folder
    if created:
        folder = claim_new_folder(RUNS_FOLDER, record_folder_name(model_source, config.data.dataset_type))
    try:
        results = run_evaluation(generator, model, config, output_dir=folder)
    except BaseException:
        if created and not os.listdir(folder):
            shutil.rmtree(folder, ignore_errors=True)  # nothing kept: leave no empty run folder behind
        raise
    chart = _chart(results, os.path.join(folder, CHART_FILE))
    record = {
        "version": __version__,
        "started": datetime.datetime.fromtimestamp(started).astimezone().isoformat(timespec="seconds"),
        "seconds": round(time.time() - started, 3),
        "mAP": results["mAP"],
        "metric": results["metric"],
        "pascal_voc": results["pascal_voc"],
        "coco": results["coco"],
        "model": describe_model(model_source, model_file, model, config),
        "dataset": describe_dataset(generator, config),
        "settings": json.loads(config.to_json()),
        "files": sorted([RECORD_FILE] + ([CHART_FILE] if chart else []) + _coco_files(results, generator, folder)),
    }
    return EvaluationRecord(results["mAP"], folder, write_record(folder, record))


def _coco_files(results: Dict[str, Any], generator, folder: str):
    """The pycocotools result files :func:`run_evaluation` wrote into the folder, if any."""
    if results["coco"] is None:
        return []
    set_name = getattr(generator, "set_name", None) or "dataset"
    names = [f"{set_name}_bbox_results.json", f"{set_name}_processed_image_ids.json"]
    return [name for name in names if os.path.exists(os.path.join(folder, name))]
