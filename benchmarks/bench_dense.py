"""Dense scenes: sliced inference of a trained model on large mosaics of its own validation images.

The demo model (``benchmarks/trained_models.py demo``: mobilenet128_0.5 trained on 160 px images of 1-4 shapes)
finds its objects in its 160 px validation images. Tiled into a GRID x GRID mosaic (1920 x 1920 px for 12 x 12, a
few hundred objects), the same objects are small parts of a large image: run whole, the image is shrunk to 160 px
and nothing is found; sliced into tiles of the model's own size, each tile is seen as in training.

For each setting, measured on the same mosaics in a process of its own (for its peak memory): AP@0.5 (mAP over the
classes, keras-retinanet's evaluation), detections per image (scores above 0.05, at most --max-detections), seconds
per megapixel (the network and the merging, images already in memory), peak resident memory. Settings: the
validation images one by one (the reference), the mosaic whole, tiles with each merging rule ('border', 'nms',
'merge'), 'border' with Soft-NMS, and 'border' with a whole-image pass. Also draws a
picture of one mosaic's detections (benchmarks/results/dense_mosaic.jpg, scores above 0.5).
Writes benchmarks/results/dense_overlap<percent>.json.

Run: python benchmarks/bench_dense.py [--grid 12] [--mosaics 2] [--overlap 0.2]
     python benchmarks/bench_dense.py --grid 63 --mosaics 1 --settings tiles_border --no-picture \
         --output benchmarks/results/dense_10k.json     # one 10,080 x 10,080 image: memory stays bounded
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

from bench_shared import write_result  # first: it reads the load average at the start

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from trained_models import CACHE, trained_demo  # noqa: E402

SETTINGS = {
    "per_image": {"dataset": "val"},
    "whole": {},
    "tiles_border": {"tile": True, "merge": "border"},
    "tiles_nms": {"tile": True, "merge": "nms"},
    "tiles_merge": {"tile": True, "merge": "merge"},
    "tiles_border_soft_nms": {"tile": True, "merge": "border", "nms_method": "soft"},
    "tiles_border_whole_image": {"tile": True, "merge": "border", "whole_image": True},
}
SCORE_THRESHOLD = 0.05
PICTURE_THRESHOLD = 0.5


def make_mosaics(val_csv, grid, count, folder):
    """``count`` mosaics of grid x grid validation images (in order, wrapping around), written with a CSV of their
    annotations shifted into the mosaic; returns the CSV's path."""
    import cv2

    csv_path = os.path.join(folder, "mosaics.csv")
    if os.path.exists(csv_path):  # made by an earlier run or the parent process: the images are written before it
        return csv_path
    os.makedirs(folder, exist_ok=True)
    base = os.path.dirname(val_csv)
    rows_by_image = {}
    with open(val_csv) as handle:
        for line in handle:
            path, *rest = line.strip().split(",")
            rows_by_image.setdefault(path, []).append(rest)
    names = list(rows_by_image)
    lines = []
    for mosaic in range(count):
        tiles, first = [], mosaic * grid * grid
        for cell in range(grid * grid):
            name = names[(first + cell) % len(names)]
            image = cv2.imread(os.path.join(base, name))
            y, x = (cell // grid) * image.shape[0], (cell % grid) * image.shape[1]
            tiles.append((y, x, image))
            for x1, y1, x2, y2, label in rows_by_image[name]:
                if x1:
                    lines.append(f"mosaic{mosaic}.png,{int(x1) + x},{int(y1) + y},{int(x2) + x},{int(y2) + y},{label}")
        side = tiles[0][2].shape[0]
        canvas = np.zeros((grid * side, grid * side, 3), np.uint8)
        for y, x, image in tiles:
            canvas[y : y + image.shape[0], x : x + image.shape[1]] = image
        cv2.imwrite(os.path.join(folder, f"mosaic{mosaic}.png"), canvas)
    with open(csv_path + ".part", "w") as handle:
        handle.write("\n".join(lines) + "\n")
    os.replace(csv_path + ".part", csv_path)
    return csv_path


def run_setting(name, model, annotations, classes, tile, overlap, max_detections, picture=None):
    """One setting in this process: its figures as a dict."""
    from keras_retinanet import load_detector
    from keras_retinanet.preprocessing.csv_generator import CSVGenerator

    setting = SETTINGS[name]
    detector = load_detector(model, max_detections=max_detections, nms_method=setting.get("nms_method"))
    if setting.get("tile"):
        detector = detector.with_tiles(tile, overlap=overlap, merge=setting["merge"],
                                       whole_image=setting.get("whole_image", False))  # fmt: skip
    generator = CSVGenerator(annotations, classes, shuffle_groups=False)
    drawer = (lambda image, boxes, scores, labels: draw(image, boxes, scores, labels, generator.label_to_name, picture)
              ) if picture else None  # fmt: skip
    return measure(detector, generator, max_detections, drawer)


def measure(detector, generator, max_detections, draw_first=None):
    """A detector on every image of a dataset: AP@0.5 (keras-retinanet's evaluation), detections per image, seconds
    per megapixel (the network and the merging, images in memory), peak memory of this process.

    Args:
        draw_first: called with (image, boxes, scores, labels) of the first image, or None.
    """
    labels = list(range(generator.num_classes()))
    all_detections, all_annotations, counts = [], [], []
    seconds, megapixels = 0.0, 0.0
    detector.predict(generator.load_image(0))  # warm-up: the model is compiled for its batch shapes once
    for index in range(generator.size()):
        image = generator.load_image(index)
        start = time.perf_counter()
        result = detector.predict(image)
        boxes, scores, found = result.boxes, result.scores, result.labels
        seconds += time.perf_counter() - start
        megapixels += image.shape[0] * image.shape[1] / 1e6
        keep = np.flatnonzero(scores > SCORE_THRESHOLD)[:max_detections]
        counts.append(len(keep))
        detections = np.column_stack([boxes[keep], scores[keep]])
        all_detections.append([detections[found[keep] == label] for label in labels])
        annotation = generator.load_annotations(index)
        all_annotations.append([annotation["bboxes"][annotation["labels"] == label] for label in labels])
        if draw_first is not None and index == 0:
            draw_first(image, boxes[keep], scores[keep], found[keep])
    mean_ap, per_class = average_precision_at_50(all_detections, all_annotations, labels)
    return {
        "images": generator.size(),
        "annotations_per_image": float(np.mean([sum(len(a) for a in image) for image in all_annotations])),
        "mAP": mean_ap,
        "ap_per_class": {generator.label_to_name(label): ap for label, ap in per_class.items()},
        "detections_per_image": float(np.mean(counts)),
        "seconds_per_megapixel": seconds / megapixels,
        "peak_memory_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def average_precision_at_50(all_detections, all_annotations, labels):
    """keras-retinanet's evaluation at IoU 0.5: (mAP over the classes with annotations, {label: AP}).

    Args:
        all_detections: per image, per label, (N, 5) arrays x1, y1, x2, y2, score.
        all_annotations: per image, per label, (M, 4) arrays x1, y1, x2, y2.
        labels: the labels evaluated.
    """
    from keras_retinanet.evaluation.average_precision import evaluate_detections, mean_average_precision

    curves = evaluate_detections(all_detections, all_annotations, labels, iou_threshold=0.5)
    average_precisions = {label: (c.average_precision, c.num_annotations) for label, c in curves.items()}
    _, mean_ap = mean_average_precision(average_precisions)
    return mean_ap, {label: ap for label, (ap, _) in average_precisions.items()}


def draw(image, boxes, scores, labels, label_to_name, path):
    """The mosaic with its confident detections drawn, at half size (a JPEG small enough to commit)."""
    import cv2

    from keras_retinanet.utils.visualization import draw_detections

    drawn = image.copy()
    draw_detections(drawn, boxes, scores, labels, label_to_name=label_to_name, score_threshold=PICTURE_THRESHOLD)
    drawn = cv2.resize(drawn, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    cv2.imwrite(path, drawn, [cv2.IMWRITE_JPEG_QUALITY, 80])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", type=int, default=12, help="Validation images per mosaic side (default 12).")
    parser.add_argument("--mosaics", type=int, default=2)
    parser.add_argument("--overlap", type=float, default=0.2, help="Tile overlap (default 0.2, the detector's).")
    parser.add_argument("--max-detections", type=int, default=3000)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--output", help="Result file (default: benchmarks/results/dense_overlap<percent>.json).")
    parser.add_argument("--no-picture", action="store_true", help="Draw no picture (for very large mosaics).")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # one setting, run by the parent in its own process
    args = parser.parse_args(argv)
    demo = trained_demo()
    tile = demo["sides"]["image_min_side"]
    mosaics = make_mosaics(demo["eval_csv"], args.grid, args.mosaics,
                           os.path.join(CACHE, f"dense_mosaics_{args.grid}x{args.grid}_{args.mosaics}"))  # fmt: skip
    if args.child:
        setting = SETTINGS[args.child]
        annotations = demo["eval_csv"] if setting.get("dataset") == "val" else mosaics
        drawn = args.child == "tiles_border" and not args.no_picture
        picture = os.path.join(HERE, "results", "dense_mosaic.jpg") if drawn else None
        figures = run_setting(args.child, demo["model"], annotations, demo["classes_csv"], tile, args.overlap,
                              args.max_detections, picture)  # fmt: skip
        print("RESULT " + json.dumps(figures), flush=True)
        return
    results = {"model": demo, "grid": args.grid, "mosaics": args.mosaics, "mosaic_side": args.grid * tile,
               "tile": tile, "overlap": args.overlap, "max_detections": args.max_detections, "settings": {}}  # fmt: skip
    for name in args.settings:
        command = [sys.executable, os.path.abspath(__file__), "--child", name, "--grid", str(args.grid),
                   "--mosaics", str(args.mosaics), "--overlap", str(args.overlap),
                   "--max-detections", str(args.max_detections)] + (["--no-picture"] if args.no_picture else [])  # fmt: skip
        completed = subprocess.run(command, capture_output=True, text=True,
                                   env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))  # fmt: skip
        lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
        if completed.returncode != 0 or not lines:
            raise SystemExit(f"setting {name} failed:\n{completed.stderr[-3000:]}")
        results["settings"][name] = json.loads(lines[-1][len("RESULT "):])
        print(name, json.dumps(results["settings"][name]), flush=True)
    write_result(f"dense_overlap{round(args.overlap * 100)}", results, output=args.output)


if __name__ == "__main__":
    main()
