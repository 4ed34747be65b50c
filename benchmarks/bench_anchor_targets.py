"""Anchor target assignment: the current ``keras_retinanet.anchors`` against the first (broadcast) implementation.

For each case (an image size with its P3-P7 anchors, and a number of random boxes) it times, on one
CPU core, ``compute_overlap(anchors, boxes)`` and ``anchor_targets_bbox`` for one image, with the old
and the new implementation called alternately, checks that both give bit-identical results, prints a
table (median ms per image, and old / new) and writes it as JSON (default
``benchmarks/results/anchor_targets.json``, bench_shared.write_result). It also times ``anchor_targets_bbox`` on the
float64 anchors ``anchors_for_shape`` returns (keras-retinanet's type) against the same anchors in float32, called
alternately: what keeping keras-retinanet's float64 costs.

The old implementation is kept below, inlined, as the baseline: it builds the full (N, K) float64 IoU
matrix with several (N, K) temporaries, and fills the targets with boolean masks and an (N, 4) fancy
index.

Run: ``python benchmarks/bench_anchor_targets.py [--repeats 20] [--boxes 10] [--num-classes 80]``
"""

import argparse
import os
import sys
import time

from bench_shared import write_result  # first: it reads the load average at the start

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

from keras_retinanet import anchors as current  # noqa: E402


# --- baseline: the broadcast implementation this file measures the current one against -----------

def old_compute_overlap(boxes, query_boxes):
    boxes = np.asarray(boxes, dtype=np.float64)
    query_boxes = np.asarray(query_boxes, dtype=np.float64)
    iw = np.minimum(boxes[:, None, 2], query_boxes[None, :, 2]) - np.maximum(boxes[:, None, 0], query_boxes[None, :, 0])
    ih = np.minimum(boxes[:, None, 3], query_boxes[None, :, 3]) - np.maximum(boxes[:, None, 1], query_boxes[None, :, 1])
    intersection = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    query_area = (query_boxes[:, 2] - query_boxes[:, 0]) * (query_boxes[:, 3] - query_boxes[:, 1])
    union = area[:, None] + query_area[None, :] - intersection
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((intersection > 0) & (union > 0), intersection / union, 0.0)


def old_compute_gt_annotations(anchors, annotations, negative_overlap=0.4, positive_overlap=0.5):
    overlaps = old_compute_overlap(anchors, annotations)
    argmax_overlaps_inds = np.argmax(overlaps, axis=1)
    max_overlaps = overlaps[np.arange(overlaps.shape[0]), argmax_overlaps_inds]
    positive_indices = max_overlaps >= positive_overlap
    ignore_indices = (max_overlaps > negative_overlap) & ~positive_indices
    return positive_indices, ignore_indices, argmax_overlaps_inds


def old_bbox_transform(anchors, gt_boxes, mean=None, std=None):
    mean = np.zeros(4) if mean is None else np.asarray(mean, dtype=np.float64)
    std = np.full(4, 0.2) if std is None else np.asarray(std, dtype=np.float64)
    anchors = np.asarray(anchors, dtype=np.float64)
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64)
    widths = anchors[:, 2] - anchors[:, 0]
    heights = anchors[:, 3] - anchors[:, 1]
    targets = (gt_boxes - anchors) / np.stack([widths, heights, widths, heights], axis=1)
    return (targets - mean) / std


def old_anchor_targets_bbox(anchors, image_group, annotations_group, num_classes, negative_overlap=0.4, positive_overlap=0.5):
    batch_size = len(image_group)
    num_anchors = anchors.shape[0]
    regression_batch = np.zeros((batch_size, num_anchors, 4 + 1), dtype=np.float32)
    labels_batch = np.zeros((batch_size, num_anchors, num_classes + 1), dtype=np.float32)
    anchor_centres_x = (anchors[:, 0] + anchors[:, 2]) / 2
    anchor_centres_y = (anchors[:, 1] + anchors[:, 3]) / 2
    for index, (image, annotations) in enumerate(zip(image_group, annotations_group)):
        boxes = np.asarray(annotations["bboxes"], dtype=np.float64).reshape((-1, 4))
        if boxes.shape[0]:
            positive, ignore, argmax = old_compute_gt_annotations(anchors, boxes, negative_overlap, positive_overlap)
            labels_batch[index, ignore, -1] = -1
            labels_batch[index, positive, -1] = 1
            regression_batch[index, ignore, -1] = -1
            regression_batch[index, positive, -1] = 1
            labels = np.asarray(annotations["labels"]).astype(int)
            labels_batch[index, positive, labels[argmax[positive]]] = 1
            regression_batch[index, :, :-1] = old_bbox_transform(anchors, boxes[argmax, :])
        image_shape = np.shape(image)
        if len(image_shape) >= 2:
            outside = (anchor_centres_x >= image_shape[1]) | (anchor_centres_y >= image_shape[0])
            labels_batch[index, outside, -1] = -1
            regression_batch[index, outside, -1] = -1
    return regression_batch, labels_batch


# --- measurement ---------------------------------------------------------------------------------

def _pin_to_one_core():
    if hasattr(os, "sched_setaffinity"):
        core = sorted(os.sched_getaffinity(0))[0]
        os.sched_setaffinity(0, {core})
        return core
    return None


def random_boxes(rng, height, width, count, num_classes):
    """``count`` boxes of 16-300 px sides inside a (height, width) image, with random labels.

    Returns:
        dict with ``'bboxes'`` (count, 4) float64 and ``'labels'`` (count,) int.
    """
    sides = rng.uniform(16, 300, size=(count, 2))
    sides = np.minimum(sides, [width - 1, height - 1])
    corners = rng.uniform(0, 1, size=(count, 2)) * ([width, height] - sides)
    return {
        "bboxes": np.concatenate([corners, corners + sides], axis=1),
        "labels": rng.integers(0, num_classes, size=count),
    }


def time_alternately(functions, repeats):
    """Median and minimum wall time in ms of each function, calls interleaved so load affects all alike.

    Args:
        functions: dict name -> zero-argument callable.
        repeats: calls per function.

    Returns:
        dict name -> {"median_ms": float, "min_ms": float}.
    """
    times = {name: [] for name in functions}
    for function in functions.values():
        function()  # warm-up
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: {"median_ms": float(np.median(values)), "min_ms": float(np.min(values))} for name, values in times.items()}


def assert_identical(old, new, what):
    for old_array, new_array in zip(old, new):
        if old_array.shape != new_array.shape or old_array.dtype != new_array.dtype or not np.array_equal(old_array, new_array):
            raise AssertionError(f"{what}: the current implementation differs from the baseline")


def run_case(height, width, num_boxes, num_classes, repeats, seed):
    anchors = current.anchors_for_shape((height, width, 3))
    annotations = random_boxes(np.random.default_rng(seed), height, width, num_boxes, num_classes)
    image = np.zeros((height, width, 3), dtype=np.uint8)
    boxes = annotations["bboxes"]

    assert_identical([old_compute_overlap(anchors, boxes)], [current.compute_overlap(anchors, boxes)], "compute_overlap")
    assert_identical(old_anchor_targets_bbox(anchors, [image], [annotations], num_classes),
                     current.anchor_targets_bbox(anchors, [image], [annotations], num_classes), "anchor_targets_bbox")

    anchors32 = anchors.astype(np.float32)
    timings = time_alternately({
        "compute_overlap old": lambda: old_compute_overlap(anchors, boxes),
        "compute_overlap new": lambda: current.compute_overlap(anchors, boxes),
        "anchor_targets_bbox old": lambda: old_anchor_targets_bbox(anchors, [image], [annotations], num_classes),
        "anchor_targets_bbox new": lambda: current.anchor_targets_bbox(anchors, [image], [annotations], num_classes),
        "anchor_targets_bbox float32": lambda: current.anchor_targets_bbox(anchors32, [image], [annotations],
                                                                           num_classes),
    }, repeats)
    rows = []
    for function in ("compute_overlap", "anchor_targets_bbox"):
        old, new = timings[f"{function} old"], timings[f"{function} new"]
        rows.append({
            "image": f"{height}x{width}",
            "anchors": int(anchors.shape[0]),
            "boxes": num_boxes,
            "function": function,
            "old_ms": old["median_ms"],
            "new_ms": new["median_ms"],
            "old_min_ms": old["min_ms"],
            "new_min_ms": new["min_ms"],
            "speedup": old["median_ms"] / new["median_ms"],
        })
    float64, float32 = timings["anchor_targets_bbox new"], timings["anchor_targets_bbox float32"]
    rows.append({
        "image": f"{height}x{width}",
        "anchors": int(anchors.shape[0]),
        "boxes": num_boxes,
        "function": "anchor_targets_bbox, float64 anchors / float32 anchors",
        "float64_ms": float64["median_ms"],
        "float32_ms": float32["median_ms"],
        "float64_over_float32": float64["median_ms"] / float32["median_ms"],
    })
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20, help="timed calls of each implementation per case")
    parser.add_argument("--boxes", type=int, default=10, help="ground-truth boxes per image")
    parser.add_argument("--num-classes", type=int, default=80)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--all-cores", action="store_true", help="do not pin the process to one core")
    parser.add_argument("--output", default=None, help="write the JSON here (default: results/anchor_targets.json)")
    args = parser.parse_args(argv)

    core = None if args.all_cores else _pin_to_one_core()
    rows = []
    for height, width in ((800, 1067), (512, 512)):
        rows.extend(run_case(height, width, args.boxes, args.num_classes, args.repeats, args.seed))

    print(f"anchor targets, one image, {args.boxes} boxes, {args.num_classes} classes, median of {args.repeats} calls"
          f" ({'core ' + str(core) if core is not None else 'all cores'}); results identical to the baseline")
    print(f"{'image':>9} {'anchors':>8}  {'function':<20} {'old ms':>8} {'new ms':>8} {'old/new':>8}")
    for row in rows:
        if "old_ms" in row:
            print(f"{row['image']:>9} {row['anchors']:>8}  {row['function']:<20} {row['old_ms']:8.2f} "
                  f"{row['new_ms']:8.2f} {row['speedup']:7.1f}x")
    for row in rows:
        if "float64_ms" in row:
            print(f"{row['image']:>9}: anchor_targets_bbox with float64 anchors {row['float64_ms']:.2f} ms, float32 "
                  f"{row['float32_ms']:.2f} ms ({row['float64_over_float32']:.3f}x)")


    results = {
        "pinned_core": core,
        "settings": {"boxes": args.boxes, "num_classes": args.num_classes, "repeats": args.repeats, "seed": args.seed},
        "rows": rows,
    }
    write_result("anchor_targets", results, output=args.output)


if __name__ == "__main__":
    main()
