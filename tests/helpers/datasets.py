"""Sample keras-retinanet CSV datasets that the command tests train and evaluate on, and a tiny run's flags."""

import csv
import os

import cv2
import numpy as np

# retinanet-train flags for a tiny run: 64 px images, batches of 2, narrow heads.
SMALL = [
    "--image-min-side", "64", "--image-max-side", "64", "--batch-size", "2", "--workers", "0",
    "--pyramid-feature-size", "16", "--classification-feature-size", "8", "--regression-feature-size", "8",
]  # fmt: skip
SQUARE_AND_BAR_CLASSES = ("square", "bar")


def write_square_dataset(folder, count=4):
    """``count`` 64x64 PNGs with one white square each; returns (annotations, classes) paths."""
    rng = np.random.default_rng(0)
    rows = []
    for index in range(count):
        image = np.full((64, 64, 3), 20, dtype=np.uint8)
        x, y = (int(v) for v in rng.integers(0, 30, size=2))
        image[y : y + 32, x : x + 32] = 255
        cv2.imwrite(os.path.join(folder, f"img{index}.png"), image)
        rows.append([f"img{index}.png", x, y, x + 32, y + 32, "square"])
    return write_csv_dataset(folder, rows, ("square",))


def write_csv_dataset(folder, rows, class_names):
    """keras-retinanet's annotations.csv (``rows``: [path, x1, y1, x2, y2, class]) and classes.csv (``class_names``
    in label order) in ``folder``; returns their paths as strings."""
    annotations = os.path.join(folder, "annotations.csv")
    with open(annotations, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    classes = os.path.join(folder, "classes.csv")
    with open(classes, "w") as handle:
        handle.write("".join(f"{name},{label}\n" for label, name in enumerate(class_names)))
    return annotations, classes


def write_square_and_bar_dataset(folder, count=4, tiny_box=False):
    """Images with one bright square (class 0) and one bar (class 1) each; returns (annotations, classes) paths."""
    rng = np.random.default_rng(0)
    rows = []
    for index in range(count):
        image = np.full((96, 96, 3), 30, dtype=np.uint8)
        x, y = int(rng.integers(4, 40)), int(rng.integers(4, 40))
        image[y : y + 40, x : x + 40] = (255, 255, 255)
        rows.append([f"img{index}.png", x, y, x + 40, y + 40, "square"])
        image[66:90, 10:86] = (0, 200, 255)
        rows.append([f"img{index}.png", 10, 66, 86, 90, "bar"])
        if tiny_box and index == 0:
            rows.append([f"img{index}.png", 60, 5, 64, 9, "bar"])
        cv2.imwrite(str(folder / f"img{index}.png"), image)
    return write_csv_dataset(str(folder), rows, SQUARE_AND_BAR_CLASSES)
