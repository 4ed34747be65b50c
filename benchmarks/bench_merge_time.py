"""Merging's share of sliced prediction: each merge rule's time against the network's, on the mosaics of bench_dense.

The demo model (trained_models.py) on two 1,920 px mosaics of 12x12 of its validation images (373 objects each),
160 px tiles at overlap 0.2 and 0.5, thresholds 0.05 and 0.3. Each image's tiles are detected once through
``Detector.run_batch`` (the network's seconds are what the detections report); then each rule merges those same
detections, interleaved (A B C, C B A, ...), timed in wall and process CPU seconds. The goal of issue 33: merging
under 5% of the network's time.

Run: python benchmarks/bench_merge_time.py            # benchmarks/results/merge_time.json
"""

import argparse
import os
import sys
import time

from bench_shared import write_result  # first: it reads the load average at the start

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_dense import make_mosaics  # noqa: E402
from bench_slicing_peers import MOSAIC_GRID, TILE, load_dataset  # noqa: E402
from trained_models import CACHE, describe, trained_demo  # noqa: E402

OVERLAPS = (0.2, 0.5)
THRESHOLDS = (0.05, 0.3)
GOAL = 0.05


def tiles_of(detector, image, options, threshold):
    """Every tile's detections in image pixels, as predict_sliced gathers them, and the network's seconds."""
    from keras_retinanet.inference.slicing import batches, tile_windows

    windows = tile_windows(image.shape[0], image.shape[1], options)
    columns = {"boxes": [], "scores": [], "labels": [], "windows": [], "tiles": []}
    network = 0.0
    for first, group in zip(range(0, len(windows), options.batch_size), batches(windows, options.batch_size)):
        found = detector.run_batch([detector.prepare(image, window) for window in group], threshold)
        for number, (detections, window) in enumerate(zip(found, group), start=first):
            columns["boxes"].append(detections.boxes)
            columns["scores"].append(detections.scores)
            columns["labels"].append(detections.labels)
            columns["windows"].append(np.tile(window, (len(detections), 1)))
            columns["tiles"].append(np.full(len(detections), number))
            network += detections.network_seconds
    return {name: np.concatenate(values) for name, values in columns.items()}, network, len(windows)


def time_rules(tiles, image_size, rules, repeats):
    """{rule: (median wall seconds, median CPU seconds, detections kept)}, the rules interleaved."""
    from keras_retinanet.inference.merging import merge_tiles

    wall, cpu, kept = {rule: [] for rule in rules}, {rule: [] for rule in rules}, {}
    for repeat in range(repeats):
        for rule in rules if repeat % 2 == 0 else rules[::-1]:
            start, start_cpu = time.perf_counter(), time.process_time()
            boxes, _, _ = merge_tiles(tiles["boxes"], tiles["scores"], tiles["labels"], tiles["windows"],
                                      tiles["tiles"], image_size, rule)  # fmt: skip
            wall[rule].append(time.perf_counter() - start)
            cpu[rule].append(time.process_time() - start_cpu)
            kept[rule] = len(boxes)
    return {rule: (float(np.median(wall[rule])), float(np.median(cpu[rule])), kept[rule]) for rule in rules}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mosaics", type=int, default=2, help="Mosaics measured (default 2).")
    parser.add_argument("--repeats", type=int, default=5, help="Timed merges of each rule per setting (default 5).")
    parser.add_argument("--output", help="Result file (default benchmarks/results/merge_time.json).")
    args = parser.parse_args(argv)

    from keras_retinanet import load_detector
    from keras_retinanet.inference import TileOptions
    from keras_retinanet.inference.merging import MERGE_RULES

    demo = trained_demo()
    detector = load_detector(demo["model"])
    rules = list(MERGE_RULES)
    folder = os.path.join(CACHE, f"dense_mosaics_{MOSAIC_GRID}x{MOSAIC_GRID}_{args.mosaics}")
    mosaics = make_mosaics(demo["eval_csv"], MOSAIC_GRID, args.mosaics, folder)
    images, _, _ = load_dataset(mosaics, demo["classes_csv"], args.mosaics)
    tiles_of(detector, images[0][: TILE * 2, : TILE * 2], TileOptions.of(TILE, 0.2).resolved(), 0.05)  # warm-up
    settings = {}
    for overlap in OVERLAPS:
        options = TileOptions.of(TILE, overlap).resolved()
        for threshold in THRESHOLDS:
            network, rows, windows = [], {rule: [] for rule in rules}, 0
            for image in images:
                tiles, seconds, windows = tiles_of(detector, image, options, threshold)
                network.append(seconds)
                for rule, figures in time_rules(tiles, image.shape[:2], rules, args.repeats).items():
                    rows[rule].append(figures)
            network_seconds = float(np.mean(network))
            entry = {"windows_per_image": windows, "network_seconds_per_image": network_seconds, "rules": {}}
            for rule, figures in rows.items():
                wall, cpu, kept = (float(np.mean(column)) for column in zip(*figures))
                entry["rules"][rule] = {"merge_seconds_per_image": wall, "merge_cpu_seconds_per_image": cpu,
                                        "detections_per_image": kept, "merge_over_network": wall / network_seconds}  # fmt: skip
            settings[f"overlap{overlap}_threshold{threshold}"] = entry
            print(overlap, threshold, {rule: round(row["merge_over_network"], 4) for rule, row in
                                       entry["rules"].items()}, flush=True)  # fmt: skip
    worst = max(row["merge_over_network"] for entry in settings.values() for row in entry["rules"].values())
    results = {"model": describe(demo), "tile": TILE, "images": len(images), "image_size": list(images[0].shape[:2]),
               "repeats": args.repeats, "goal_merge_over_network": GOAL, "worst_merge_over_network": worst,
               "goal_met": worst < GOAL, "settings": settings}  # fmt: skip
    load = os.getloadavg()[0]
    notes = f"load average at the end: {load:.2f} (1 min)" + ("; the machine was loaded (> 2 on 2 cores)" if load > 2 else "")
    write_result("merge_time", results, output=args.output, notes=notes)


if __name__ == "__main__":
    main()
