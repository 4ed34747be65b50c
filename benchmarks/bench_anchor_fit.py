"""Default against fitted anchors on crowded small objects: coverage and mAP@0.5 after the same training.

The data: the synthetic shapes of ``keras_retinanet.readers.demo`` at 320 x 320, 15-40 objects of 10-56 px
per image (seeded). Both runs train a MobileNet RetinaNet from scratch (``--no-weights --trainable-bn``,
image sides 320) for the same steps with the same seed; one with keras-retinanet's anchors, one with anchors
fitted to the training boxes (``fit_dataset_anchors``, what ``retinanet-debug --optimize-anchors`` and
``retinanet-train --auto-anchors`` run). Prints a markdown table and writes
``benchmarks/results/anchor_fit.json`` (bench_shared.write_result).

Run (about 15 min on 2 shared cores): ``nice -n 19 python benchmarks/bench_anchor_fit.py``
"""

import argparse
import csv
import os
import re
import subprocess
import sys
import tempfile
import time

from bench_shared import write_result  # first: it reads the load average at the start

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_RETINANET_IMAGENET_WEIGHTS", "none")

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "anchor_fit.json")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-images", type=int, default=160)
    parser.add_argument("--val-images", type=int, default=40)
    parser.add_argument("--steps", type=int, default=175, help="Steps per epoch.")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--backbone", default="mobilenet128_0.25")
    parser.add_argument("--feature-size", type=int, default=32, help="Pyramid and head widths.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the data, the anchor fit and the training.")
    parser.add_argument("--run-timeout", type=int, default=900, help="Seconds a training run may take.")
    parser.add_argument("--keep", default=None, help="Keep the data and the runs in this folder.")
    parser.add_argument("--output", default=None, help="write the JSON here (default: %s)" % RESULTS)
    return parser.parse_args()


def make_data(folder, args):
    from keras_retinanet.readers.demo import make_demo_dataset

    return make_demo_dataset(
        folder, num_train=args.train_images, num_val=args.val_images, image_size=320, min_object_size=10,
        max_object_size=56, min_objects=15, max_objects=40, image_format=".png", seed=args.seed,
    )  # fmt: skip


def coverages(args, data, anchor_config):
    """(train, val) coverage of the anchors (None: the default ones) after the training resize."""
    from keras_retinanet import models
    from keras_retinanet.config import DatasetConfig, RetinaNetConfig
    from keras_retinanet.readers.from_config import configured_generator
    from keras_retinanet.data.diagnostics import dataset_coverage

    dataset = DatasetConfig(type="csv", annotations=data.train_csv, classes=data.classes_csv, val_annotations=data.val_csv)
    settings = {"data.dataset": dataset, "data.image_min_side": 320, "data.image_max_side": 320, "model.backbone": args.backbone}
    if anchor_config is not None:
        settings["model.anchors"] = anchor_config
    config = RetinaNetConfig.build(settings)
    backbone = models.backbone(args.backbone)
    return tuple(dataset_coverage(configured_generator(config, backbone, subset=subset)) for subset in ("train", "val"))


def fit(args, data, path):
    from keras_retinanet import models
    from keras_retinanet.config import DatasetConfig, RetinaNetConfig
    from keras_retinanet.config.anchors_ini import write_anchor_config
    from keras_retinanet.readers.from_config import configured_generator
    from keras_retinanet.data.diagnostics import collect_boxes, describe_fit, fit_dataset_anchors

    dataset = DatasetConfig(type="csv", annotations=data.train_csv, classes=data.classes_csv)
    config = RetinaNetConfig.build({"data.dataset": dataset, "data.image_min_side": 320, "data.image_max_side": 320})
    backbone = models.backbone(args.backbone)
    generator = configured_generator(config, backbone, subset="train")
    start = time.monotonic()
    result = fit_dataset_anchors(collect_boxes(generator), None, backbone.feature_shapes, seed=args.seed)
    seconds = time.monotonic() - start
    for line in describe_fit(result):
        print(line)
    return write_anchor_config(path, result.anchors, "bench_anchor_fit.py"), seconds


def train(args, data, snapshots, config_file):
    """Train one model in its own process; returns (mAP@0.5 after each epoch, seconds)."""
    os.makedirs(snapshots, exist_ok=True)
    width = str(args.feature_size)
    command = [
        sys.executable, "-m", "keras_retinanet.bin.train",
        "--backbone", args.backbone, "--no-weights", "--trainable-bn", "--image-min-side", "320",
        "--image-max-side", "320", "--batch-size", str(args.batch_size), "--steps", str(args.steps),
        "--epochs", str(args.epochs), "--lr", str(args.lr), "--seed", str(args.seed), "--workers", "1",
        "--pyramid-feature-size", width, "--classification-feature-size", width, "--regression-feature-size", width,
        "--snapshot-path", snapshots, "--run-dir", snapshots,
    ]  # fmt: skip
    if config_file:
        command += ["--config", config_file]
    command += ["csv", data.train_csv, data.classes_csv, "--val-annotations", data.val_csv]
    start = time.monotonic()
    # A process of its own: a clean Keras state per run, and a time limit.
    done = subprocess.run(command, capture_output=True, text=True, timeout=args.run_timeout, check=False)
    seconds = time.monotonic() - start
    with open(os.path.join(snapshots, "train.log"), "w", encoding="utf-8") as log:
        log.write(done.stdout + done.stderr)
    # keras-retinanet's evaluation callback prints 'mAP: 0.1234' after each epoch
    maps = [float(match) for match in re.findall(r"^mAP: ([0-9.]+)$", done.stdout, flags=re.MULTILINE)]
    if done.returncode != 0 or len(maps) != args.epochs:
        raise RuntimeError(f"training failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    # the run record: AP per class after each epoch
    with open(os.path.join(snapshots, "metrics.csv"), encoding="utf-8") as handle:
        epochs = list(csv.DictReader(handle))
    per_class = {key[3:]: [float(row[key]) for row in epochs] for key in epochs[0] if key.startswith("AP/")}
    return maps, per_class, seconds


def main():
    args = parse_args()
    rows, record = [], {"settings": vars(args), "runs": {}}
    with tempfile.TemporaryDirectory() as temporary:
        folder = args.keep or temporary
        data = make_data(os.path.join(folder, "data"), args)
        fitted, fit_seconds = fit(args, data, os.path.join(folder, "fitted.ini"))
        record["fit_seconds"] = fit_seconds
        record["fitted_anchors"] = fitted.parameters.get_config()
        for name, anchors in (("default", None), ("fitted", fitted)):
            train_cov, val_cov = coverages(args, data, anchors)
            maps, per_class, seconds = train(args, data, os.path.join(folder, name),
                                             anchors.source if anchors else None)
            small = next(group for group in val_cov.by_size if group.name == "<16")
            record["runs"][name] = {
                "train_coverage": train_cov.share, "val_coverage": val_cov.share,
                "val_coverage_below_16px": small.share, "val_mean_best_iou": val_cov.overall.mean_best_iou,
                "val_annotations": val_cov.overall.total, "mAP_per_epoch": maps, "AP_per_class_per_epoch": per_class,
                "train_seconds": seconds,
            }  # fmt: skip
            rows.append(f"| {name} | {100 * train_cov.share:.1f}% | {100 * val_cov.share:.1f}% | "
                        f"{100 * small.share:.1f}% | {val_cov.overall.mean_best_iou:.3f} | {maps[-1]:.3f} | "
                        + " / ".join(f"{values[-1]:.3f}" for values in per_class.values()) + f" | {seconds:.0f} |")
    steps = args.steps * args.epochs
    print(f"\n{args.backbone}, {steps} steps of {args.batch_size} images, 320 px, "
          f"{args.train_images} training / {args.val_images} validation images; anchor fit {fit_seconds:.1f} s\n")
    print("| anchors | coverage (train) | coverage (val) | val <16 px | val mean best IoU | val mAP@0.5 | AP per class | "
          "train s |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

    write_result("anchor_fit", record, output=args.output)


if __name__ == "__main__":
    sys.exit(main())
