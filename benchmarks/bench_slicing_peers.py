"""Sliced inference side by side with SAHI: the same trained model, the same tile windows, the same evaluator.

SAHI is the library most users reach for to slice large images. Here it runs the demo model
(``benchmarks/trained_models.py demo``) through its own model protocol: a ``sahi.models.base.DetectionModel``
whose inference on one slice is ``detector.predict(crop, score_threshold=t, max_detections=300)`` on that crop
whole, so the network sees the same crops as ours. Ours is ``detector.predict(image, tile=160, tile_overlap=o,
tile_merge=rule, score_threshold=t, max_detections=100000)``. Neither adds a whole-image pass.

The windows. SAHI's ``get_slice_bboxes`` steps by ``tile - int(overlap * tile)`` and puts the last slice flush
with the far edge; ours (``slicing.tile_windows``) steps by ``round(tile * (1 - overlap))``, the last tile flush
too: for 160 px tiles at overlap 0.2 and 0.5 both step by 128 and 80 px, so SAHI's defaults already give our
windows (225 and 529 on a 1,920 px mosaic). Before measuring, the script asserts for every image and overlap that
the windows SAHI's ``slice_image`` cuts for ``get_sliced_prediction`` equal ours.

Settings: overlap 0.2 and 0.5 x score threshold 0.05 and 0.3 x every rule of ``slicing.MERGE_RULES`` (read at
run time) and every SAHI postprocess type (GREEDYNMM, NMM, NMS, LSNMS) x match metric (IOU, IOS) at match
threshold 0.5, class-wise. SAHI switches itself to NMS/IOU below a confidence of 0.1 unless told not to: it is
told (``force_postprocess_type=True``) so that every type is measured as named.

Measured per setting: AP@0.5 (mAP over the classes, keras-retinanet's evaluation, the same for both), detections
per image, and times per image:
- end to end, ours (each rule; the first rule also with ``tile_batch_size=1``) and SAHI's
  ``get_sliced_prediction`` (its default type, GREEDYNMM/IOS), interleaved in one run (A B A B, the order reversed
  every repeat); reported as ratios ours / SAHI;
- merging alone, on the same per-tile detections (those SAHI's slices gave, thresholded at t): each SAHI
  postprocess on SAHI's prediction list, and ours by ``slicing.merge_tiles`` (given the arguments its signature
  names; left out, with a note, when it has no such function); SAHI's AP per type comes from these calls, and
  equals what ``get_sliced_prediction`` returns (checked for its default type). Ours' ``merge_only`` also has the
  AP of merging those thresholded detections (where ``predict`` merges before thresholding, the two differ);
- the network: ours, the inference model on the prepared tiles in batches of 4; SAHI's, the per-slice
  ``detector.predict`` calls (preparation and result included).

Datasets: (1) ``mosaics``: the mosaics of ``bench_dense.py`` (12 x 12 of the demo's 160 px validation images,
1,920 px, objects of 32-96 px); (2) ``crowded``: ``make_demo_dataset`` images of 1,280 px with 100-140 shapes of
40-96 px each (objects larger than the 32 px overlap at 0.2, cut by every tile edge near them); before those are
measured, the model's AP on the uncut objects of its 160 px tiles is checked (recorded as ``tile_check``).

Install SAHI as a benchmark extra only (never a runtime dependency; its own requirements pull opencv-python,
which clashes with opencv-python-headless):
    pip install --no-deps sahi==0.12.8 && pip install shapely
    pip install numba==0.68.1 && pip install --no-deps lsnms==0.5.0   # optional: LSNMS and SAHI's numba backend
Without numba SAHI uses its numpy backend and LSNMS is recorded as unavailable.

Run: python benchmarks/bench_slicing_peers.py --label before      # benchmarks/results/slicing_peers_before.json
     python benchmarks/bench_slicing_peers.py --quick              # one mosaic, one crowded image, overlap 0.2
"""

import argparse
import inspect
import logging
import os
import sys
import time

from bench_shared import write_result  # first: it reads the load average at the start

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_dense import average_precision_at_50, make_mosaics  # noqa: E402
from trained_models import CACHE, describe, trained_demo  # noqa: E402

TILE = 160
OVERLAPS = (0.2, 0.5)
THRESHOLDS = (0.05, 0.3)
MATCH_METRICS = ("IOU", "IOS")
MATCH_THRESHOLD = 0.5
SAHI_TIMED = ("GREEDYNMM", "IOS")  # SAHI's default postprocess, timed end to end
OUR_MAX_DETECTIONS = 100000
TILE_MAX_DETECTIONS = 300  # per SAHI slice: the model's own cap (keras-retinanet's default)
MOSAIC_GRID = 12
CROWDED = dict(num_train=0, image_size=1280, min_object_size=40, max_object_size=96, min_objects=100,
               max_objects=140, max_overlap=0.25, seed=7)  # fmt: skip


def sahi_model(detector, threshold):
    """Our detector behind SAHI's model protocol; it keeps the slices' raw predictions and network time."""
    from sahi.models.base import DetectionModel
    from sahi.prediction import ObjectPrediction

    class RetinaNetSahiModel(DetectionModel):
        def __init__(self):
            self.slices, self.network_seconds, self.most_per_slice = [], 0.0, 0
            super().__init__(model=detector, confidence_threshold=threshold, device="cpu")

        def set_model(self, model, **kwargs):
            self.model = model

        def perform_inference(self, image):
            start = time.perf_counter()
            threshold = self.confidence_threshold
            self._original_predictions = self.model.predict(image, score_threshold=threshold,
                                                            max_detections=TILE_MAX_DETECTIONS)  # fmt: skip
            self.network_seconds += time.perf_counter() - start

        def _create_object_prediction_list_from_original_predictions(self, shift_amount_list=((0, 0),),
                                                                     full_shape_list=None):  # fmt: skip
            shift = list(shift_amount_list[0]) if shift_amount_list else [0, 0]
            shift = shift if np.ndim(shift) == 1 else list(shift[0])
            full_shape = list(full_shape_list[0]) if full_shape_list is not None else None
            result = self._original_predictions
            boxes, scores, labels = (np.asarray(result[key]) for key in ("boxes", "scores", "labels"))
            predictions = [ObjectPrediction(bbox=box.tolist(), category_id=int(label), category_name=str(label),
                                            score=float(score), shift_amount=shift, full_shape=full_shape)
                           for box, score, label in zip(boxes, scores, labels)]  # fmt: skip
            self.slices.append(predictions)
            self.most_per_slice = max(self.most_per_slice, len(predictions))
            self._object_prediction_list_per_image = [predictions]

    return RetinaNetSahiModel()


def sahi_sliced(model, image, overlap, postprocess, metric):
    """SAHI's get_sliced_prediction: ((boxes, scores, labels), seconds)."""
    from sahi.predict import get_sliced_prediction

    model.slices = []
    start = time.perf_counter()
    result = get_sliced_prediction(image, model, slice_height=TILE, slice_width=TILE, overlap_height_ratio=overlap,
                                   overlap_width_ratio=overlap, perform_standard_pred=False,
                                   postprocess_type=postprocess, postprocess_match_metric=metric,
                                   postprocess_match_threshold=MATCH_THRESHOLD, force_postprocess_type=True,
                                   verbose=0)  # fmt: skip
    return sahi_arrays(result.object_prediction_list), time.perf_counter() - start


def sahi_arrays(predictions):
    boxes = np.array([p.bbox.to_xyxy() for p in predictions], np.float64).reshape(-1, 4)
    return boxes, np.array([p.score.value for p in predictions]), np.array([p.category.id for p in predictions])


def sahi_postprocess(slices, postprocess, metric):
    """One SAHI postprocess on the slices' shifted predictions: ((boxes, scores, labels), seconds), or its error."""
    from sahi.predict import POSTPROCESS_NAME_TO_CLASS

    merge = POSTPROCESS_NAME_TO_CLASS[postprocess](match_threshold=MATCH_THRESHOLD, match_metric=metric,
                                                   class_agnostic=False)  # fmt: skip
    predictions = [p.get_shifted_object_prediction() for part in slices for p in part]  # as get_sliced_prediction
    start = time.perf_counter()
    try:
        merged = merge(predictions) if len(predictions) > 1 else predictions
    except (ImportError, NotImplementedError) as error:
        return None, f"{type(error).__name__}: {error}"
    return sahi_arrays(merged), time.perf_counter() - start


def our_tiled(detector, image, overlap, rule, threshold, **options):
    """Ours end to end: ((boxes, scores, labels), seconds)."""
    start = time.perf_counter()
    result = detector.predict(image, tile=TILE, tile_overlap=overlap, tile_merge=rule, score_threshold=threshold,
                              max_detections=OUR_MAX_DETECTIONS, **options)  # fmt: skip
    seconds = time.perf_counter() - start
    return tuple(np.asarray(result[key]) for key in ("boxes", "scores", "labels")), seconds


def our_merge(slices, windows, image_size, rule, threshold):
    """Our merging alone (``slicing.merge_tiles``) on SAHI's slices' detections: ((boxes, scores, labels), seconds),
    or why it could not be called."""
    from keras_retinanet.inference import slicing

    merge = getattr(slicing, "merge_tiles", None)
    if merge is None:
        return None, "keras_retinanet.inference.slicing has no merge_tiles"
    parts = [(np.asarray(p.bbox.get_shifted_box().to_xyxy()), p.score.value, p.category.id, window, number)
             for number, (part, window) in enumerate(zip(slices, windows)) for p in part]  # fmt: skip
    columns = [np.array([part[i] for part in parts]) for i in range(5)]
    given = dict(boxes=columns[0].reshape(-1, 4), scores=columns[1], labels=columns[2],
                 windows=columns[3].reshape(-1, 4), tiles=columns[4], image_size=image_size, rule=rule,
                 nms_threshold=MATCH_THRESHOLD, score_threshold=threshold)  # fmt: skip
    parameters = inspect.signature(merge).parameters
    missing = [n for n, p in parameters.items() if p.default is inspect.Parameter.empty and n not in given]
    if missing:
        return None, f"merge_tiles needs {missing}"
    start = time.perf_counter()
    merged = merge(**{name: value for name, value in given.items() if name in parameters})
    return tuple(np.asarray(column) for column in merged[:3]), time.perf_counter() - start


def our_network_seconds(detector, image, windows):
    """The inference model alone on the image's prepared tiles, 4 at a time (preparation not counted)."""
    if not (hasattr(detector, "input_transform") and hasattr(detector, "predict_on_batch")):
        return None
    prepared = [detector.input_transform(image[y1:y2, x1:x2], preprocess_first=True)[0] for x1, y1, x2, y2 in windows]
    start = time.perf_counter()
    for first in range(0, len(prepared), 4):
        detector.predict_on_batch(np.stack(prepared[first : first + 4]))
    return time.perf_counter() - start


def check_windows(image, overlap):
    """SAHI's slices of the image (as get_sliced_prediction cuts them) must be our tile windows."""
    from sahi.slicing import slice_image

    from keras_retinanet.inference.slicing import Tiling, tile_windows

    ours = tile_windows(image.shape[0], image.shape[1], Tiling(TILE, TILE, overlap=overlap))
    sliced = slice_image(image, slice_height=TILE, slice_width=TILE, overlap_height_ratio=overlap,
                         overlap_width_ratio=overlap)  # fmt: skip
    theirs = np.array([[x, y, x + s.shape[1], y + s.shape[0]] for (x, y), s in
                       zip(sliced.starting_pixels, sliced.images)], np.int64)  # fmt: skip
    if theirs.shape != ours.shape or not np.array_equal(theirs, ours):
        raise SystemExit(f"SAHI's windows differ from ours at overlap {overlap} on a {image.shape[:2]} image")
    return ours


def evaluate(found, annotations, num_classes):
    """mAP@0.5 and detections per image of per-image (boxes, scores, labels)."""
    labels = list(range(num_classes))
    detections = [[np.column_stack([b[lab == c], s[lab == c]]).reshape(-1, 5) for c in labels] for b, s, lab in found]
    truths = [[a["bboxes"][a["labels"] == c] for c in labels] for a in annotations]
    mean_ap, _ = average_precision_at_50(detections, truths, labels)
    return {"mAP": round(mean_ap, 4), "detections_per_image": float(np.mean([len(s) for _, s, _ in found]))}


def tile_check(detector, images, annotations, num_classes, overlap=0.2):
    """AP@0.5 of the model on its tiles alone, against the objects each tile holds whole (detections that lie
    mostly on a cut object are not counted either way)."""
    from keras_retinanet.inference.slicing import Tiling, tile_windows

    found, truths = [], []
    for image, annotation in zip(images, annotations):
        boxes = annotation["bboxes"]
        for x1, y1, x2, y2 in tile_windows(image.shape[0], image.shape[1], Tiling(TILE, TILE, overlap=overlap)):
            inside = (boxes[:, 0] >= x1) & (boxes[:, 1] >= y1) & (boxes[:, 2] <= x2) & (boxes[:, 3] <= y2)
            touching = (boxes[:, 0] < x2) & (boxes[:, 2] > x1) & (boxes[:, 1] < y2) & (boxes[:, 3] > y1)
            cut = np.clip(boxes[touching & ~inside], [x1, y1, x1, y1], [x2, y2, x2, y2]) - [x1, y1, x1, y1]
            result = detector.predict(image[y1:y2, x1:x2], score_threshold=0.05, max_detections=TILE_MAX_DETECTIONS)
            b, s, lab = (np.asarray(result[key]) for key in ("boxes", "scores", "labels"))
            width = np.minimum(b[:, None, 2], cut[None, :, 2]) - np.maximum(b[:, None, 0], cut[None, :, 0])
            height = np.minimum(b[:, None, 3], cut[None, :, 3]) - np.maximum(b[:, None, 1], cut[None, :, 1])
            area = np.maximum((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 1e-9)
            on_cut = (np.maximum(width, 0) * np.maximum(height, 0) / area[:, None] >= 0.5).any(axis=1)
            found.append((b[~on_cut], s[~on_cut], lab[~on_cut]))
            truths.append({"bboxes": boxes[inside] - [x1, y1, x1, y1], "labels": annotation["labels"][inside]})
    return dict(evaluate(found, truths, num_classes), tiles=len(found), overlap=overlap,
                uncut_objects_per_tile=float(np.mean([len(t["labels"]) for t in truths])))  # fmt: skip


def load_dataset(annotations_csv, classes_csv, count):
    from keras_retinanet.preprocessing.csv_generator import CSVGenerator

    generator = CSVGenerator(annotations_csv, classes_csv, shuffle_groups=False)
    indices = range(min(count, generator.size()))
    return ([generator.load_image(i) for i in indices], [generator.load_annotations(i) for i in indices],
            generator.num_classes())  # fmt: skip


def crowded_dataset(count):
    from keras_retinanet.readers.demo import make_demo_dataset

    settings = dict(CROWDED, num_val=max(count, 3))
    folder = os.path.join(CACHE, "slicing_peers_crowded_" + "_".join(str(v) for v in settings.values()))
    if not os.path.isfile(os.path.join(folder, "COMPLETE")):
        make_demo_dataset(folder, **settings)
        open(os.path.join(folder, "COMPLETE"), "w").close()
    return folder, settings


def time_image(detector, model, image, overlap, threshold, repeats, rules):
    """Ours (each rule, and the first with tile_batch_size=1) and SAHI end to end on one image, interleaved (A B A B,
    the order reversed every repeat): {run: (first result, median seconds)}, SAHI's slices and network seconds."""
    runs = [(f"ours/{rule}", dict(tile_merge=rule)) for rule in rules]
    runs += [("ours_batch1", dict(tile_merge=rules[0], tile_batch_size=1)), ("sahi", None)]
    found, times = {}, {name: [] for name, _ in runs}
    for repeat in range(repeats):
        for name, options in runs if repeat % 2 == 0 else runs[::-1]:
            model.network_seconds = 0.0
            if options is None:
                result, seconds = sahi_sliced(model, image, overlap, *SAHI_TIMED)
            else:
                rule = options.pop("tile_merge")
                result, seconds = our_tiled(detector, image, overlap, rule, threshold, **options)
                options["tile_merge"] = rule
            times[name].append(seconds)
            if name not in found:
                found[name] = result
                if options is None:
                    slices, network = model.slices, model.network_seconds
    return {name: (found[name], float(np.median(times[name]))) for name in times}, slices, network


def summary(figures, rules):
    """The best of ours and of SAHI's at one setting, and whether each rule reaches SAHI's best."""
    measured = {n: row["mAP"] for n, row in figures["sahi"].items() if "mAP" in row}
    best_sahi = max(measured, key=measured.get)
    best_ours = max(rules, key=lambda rule: figures["ours"][rule]["mAP"])
    return {"best_ours": best_ours, "best_ours_mAP": figures["ours"][best_ours]["mAP"], "best_sahi": best_sahi,
            "best_sahi_mAP": measured[best_sahi],
            "rules_at_or_above_best_sahi": [r for r in rules if figures["ours"][r]["mAP"] >= measured[best_sahi]]}  # fmt: skip


def measure_setting(detector, images, annotations, num_classes, overlap, threshold, repeats, rules):
    """Every rule and every SAHI postprocess at one overlap and threshold, on every image."""
    from sahi.predict import POSTPROCESS_NAME_TO_CLASS

    model = sahi_model(detector, threshold)
    ours = {rule: {"found": [], "seconds": [], "merge_found": [], "merge_seconds": []} for rule in rules}
    sahi = {f"{p}/{m}": {"found": [], "merge_seconds": []} for p in POSTPROCESS_NAME_TO_CLASS for m in MATCH_METRICS}
    timed_name = "/".join(SAHI_TIMED)
    columns = {"sahi": [], "sahi_network": [], "ours_batch1": [], "ours_network": []}
    notes = {}
    for image in images:
        windows = check_windows(image, overlap)
        timed, slices, network = time_image(detector, model, image, overlap, threshold, repeats, rules)
        columns["sahi"].append(timed["sahi"][1])
        columns["sahi_network"].append(network)
        columns["ours_batch1"].append(timed["ours_batch1"][1])
        columns["ours_network"].append(our_network_seconds(detector, image, windows))
        for rule in rules:
            ours[rule]["found"].append(timed[f"ours/{rule}"][0])
            ours[rule]["seconds"].append(timed[f"ours/{rule}"][1])
            merged, seconds = our_merge(slices, windows, image.shape[:2], rule, threshold)
            if merged is None:
                notes["our_merge_only"] = seconds
            else:
                ours[rule]["merge_found"].append(merged)
                ours[rule]["merge_seconds"].append(seconds)
        for name, entry in sahi.items():
            merged, seconds = sahi_postprocess(slices, *name.split("/"))
            if merged is None:
                entry["unavailable"] = seconds
            else:
                entry["found"].append(merged)
                entry["merge_seconds"].append(seconds)
        same, returned = sahi[timed_name]["found"][-1][1], timed["sahi"][0][1]
        if len(same) != len(returned) or not np.allclose(np.sort(same), np.sort(returned)):
            raise SystemExit("SAHI's postprocess on the recorded slices differs from get_sliced_prediction's result")
    mean = {name: None if None in values else float(np.mean(values)) for name, values in columns.items()}
    sahi_merge = np.sum(sahi[timed_name]["merge_seconds"])
    figures = {"windows_per_image": len(windows), "repeats": repeats, "ours": {}, "sahi": {}, "notes": notes,
               "seconds_per_image": {f"sahi_end_to_end_{timed_name}": mean["sahi"], "sahi_network": mean["sahi_network"],
                                     f"ours_end_to_end_{rules[0]}_tile_batch_size_1": mean["ours_batch1"],
                                     "ours_network": mean["ours_network"]},
               "ours_batch1_over_sahi": mean["ours_batch1"] / mean["sahi"],
               "sahi_most_detections_per_slice": model.most_per_slice}  # fmt: skip
    for name, entry in sahi.items():
        figures["sahi"][name] = {"unavailable": entry["unavailable"]} if "unavailable" in entry else dict(
            evaluate(entry["found"], annotations, num_classes),
            merge_seconds_per_image=float(np.mean(entry["merge_seconds"])))  # fmt: skip
    measured = {name: row["mAP"] for name, row in figures["sahi"].items() if "mAP" in row}
    best_merge = np.sum(sahi[max(measured, key=measured.get)]["merge_seconds"])
    for rule, entry in ours.items():
        row = evaluate(entry["found"], annotations, num_classes)
        row["seconds_per_image"] = float(np.mean(entry["seconds"]))
        row["time_ours_over_sahi"] = row["seconds_per_image"] / mean["sahi"]
        if entry["merge_found"]:
            merge_seconds = np.sum(entry["merge_seconds"])
            row["merge_only"] = dict(evaluate(entry["merge_found"], annotations, num_classes),
                                     seconds_per_image=float(np.mean(entry["merge_seconds"])),
                                     ours_over_sahi_default=float(merge_seconds / sahi_merge),
                                     ours_over_sahi_best_ap=float(merge_seconds / best_merge))  # fmt: skip
        figures["ours"][rule] = row
    figures["summary"] = summary(figures, rules)
    return figures


def installed(*names):
    """{package: version or None}: what SAHI's run depended on besides itself."""
    from importlib import metadata

    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", help="Names the result slicing_peers_<label>.json (e.g. before, after).")
    parser.add_argument("--quick", action="store_true", help="One mosaic, one crowded image, overlap 0.2, 1 repeat.")
    parser.add_argument("--mosaics", type=int, default=2, help="Mosaics measured (default 2).")
    parser.add_argument("--crowded", type=int, default=3, help="Crowded images measured (default 3).")
    parser.add_argument("--repeats", type=int, default=2, help="Timed runs of each pipeline per image (default 2).")
    parser.add_argument("--output", help="Result file (default benchmarks/results/slicing_peers[_<label>].json).")
    args = parser.parse_args(argv)
    import sahi
    from sahi.postprocess.backends import resolve_backend

    import keras_retinanet
    from keras_retinanet import load_detector
    from keras_retinanet.inference import slicing

    logging.getLogger("sahi").setLevel(logging.ERROR)
    overlaps = OVERLAPS[:1] if args.quick else OVERLAPS
    counts = (1, 1, 1) if args.quick else (args.mosaics, args.crowded, args.repeats)
    demo = trained_demo()
    detector = load_detector(demo["model"])
    rules = list(slicing.MERGE_RULES)
    default_rule = inspect.signature(type(detector).predict).parameters["tile_merge"].default
    mosaics = make_mosaics(demo["eval_csv"], MOSAIC_GRID, args.mosaics,
                           os.path.join(CACHE, f"dense_mosaics_{MOSAIC_GRID}x{MOSAIC_GRID}_{args.mosaics}"))  # fmt: skip
    crowded_folder, crowded_settings = crowded_dataset(counts[1])
    datasets = {
        "mosaics": (load_dataset(mosaics, demo["classes_csv"], counts[0]),
                    f"{MOSAIC_GRID}x{MOSAIC_GRID} mosaics of the demo's 160 px validation images (bench_dense.py)"),
        "crowded": (load_dataset(os.path.join(crowded_folder, "val.csv"), demo["classes_csv"], counts[1]),
                    "make_demo_dataset(%s), its val images" % ", ".join(f"{k}={v!r}" for k, v in
                                                                       crowded_settings.items())),
    }  # fmt: skip
    # Warm-up: compile the model for the batch shapes and SAHI's backend before anything is timed.
    warm = datasets["mosaics"][0][0][0][: TILE * 2, : TILE * 2]
    our_tiled(detector, warm, 0.2, rules[0], 0.05)
    our_tiled(detector, warm, 0.2, rules[0], 0.05, tile_batch_size=1)
    our_network_seconds(detector, warm, check_windows(warm, 0.2))
    warm_model = sahi_model(detector, 0.05)
    sahi_sliced(warm_model, warm, 0.2, *SAHI_TIMED)
    for postprocess in ("GREEDYNMM", "NMM", "NMS", "LSNMS"):
        sahi_postprocess(warm_model.slices, postprocess, "IOU")
    results = {"model": describe(demo), "tile": TILE, "match_threshold": MATCH_THRESHOLD,
               "our_max_detections": OUR_MAX_DETECTIONS, "sahi_slice_max_detections": TILE_MAX_DETECTIONS,
               "merge_rules": rules, "default_rule": default_rule, "sahi_version": sahi.__version__,
               "sahi_backend": resolve_backend(), "sahi_extras": installed("shapely", "numba", "lsnms"), "keras_retinanet_version": keras_retinanet.__version__,
               "label": args.label, "sahi_force_postprocess_type": True, "datasets": {}}  # fmt: skip
    for name, ((images, annotations, num_classes), description) in datasets.items():
        entry = {"description": description, "images": len(images), "image_size": list(images[0].shape[:2]),
                 "objects_per_image": float(np.mean([len(a["labels"]) for a in annotations])), "settings": {}}  # fmt: skip
        if name == "crowded":
            entry["tile_check"] = tile_check(detector, images, annotations, num_classes)
            print(name, "tile check", entry["tile_check"], flush=True)
        for overlap in overlaps:
            for threshold in THRESHOLDS:
                key = f"overlap{overlap}_threshold{threshold}"
                entry["settings"][key] = measure_setting(detector, images, annotations, num_classes, overlap,
                                                         threshold, counts[2], rules)  # fmt: skip
                print(name, key, entry["settings"][key]["summary"], flush=True)
        results["datasets"][name] = entry
    load = os.getloadavg()
    notes = [f"load average before the run's end: {load[0]:.2f} (1 min)"]
    if load[0] > 2:
        notes.append("the machine was loaded (> 2 on 2 cores): time ratios were measured interleaved; AP does "
                     "not depend on load")  # fmt: skip
    if args.label:
        notes.append(f"label {args.label!r}: " + {"before": "today's code, before issue 33's rewrite of merging"}
                     .get(args.label, "as given"))  # fmt: skip
    stem = "slicing_peers" + (f"_{args.label}" if args.label else "")
    output = args.output or (os.path.join(CACHE, stem + "_quick.json") if args.quick else None)
    write_result(stem, results, output=output, notes="; ".join(notes))


if __name__ == "__main__":
    main()
