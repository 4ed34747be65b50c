"""The datasets of bench_recipe.py, made once under benchmarks/.cache/recipe (never committed): this repository's
crowded scenes, the demo's, and stardist's nuclei (the image and masks its wheel ships) cut into tiles; the anchors
fitted once to each."""

import csv
import glob
import os
import subprocess
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(HERE, ".cache", "recipe")
BACKBONE = "mobilenet128_0.5"
DATASETS = {
    # name: (steps per epoch, epochs, image side)
    "crowded": (100, 6, 320),
    "demo": (100, 6, 160),
    "nuclei": (100, 4, 256),
}
TILE, TILE_STRIDE, TRAIN_WIDTH = 128, 32, 320


def crowded_data(seed=0, num_train=200, num_val=50):
    from keras_retinanet.preprocessing.demo import make_demo_dataset

    folder = os.path.join(CACHE, f"crowded_{seed}")
    marker = os.path.join(folder, "COMPLETE")
    if not os.path.exists(marker):
        make_demo_dataset(folder, num_train=num_train, num_val=num_val, image_size=320, min_object_size=10,
                          max_object_size=56, min_objects=15, max_objects=40, image_format=".png", seed=seed)  # fmt: skip
        open(marker, "w").close()
    return {split: os.path.join(folder, f"{split}.csv") for split in ("train", "val", "classes")}


def nuclei_data():
    """stardist's nuclei image as 128 px tiles with the masks' boxes: training tiles left, held-out tiles right."""
    import cv2
    import numpy as np

    folder = os.path.join(CACHE, "nuclei")
    marker = os.path.join(folder, "COMPLETE")
    paths = {split: os.path.join(folder, f"{split}.csv") for split in ("train", "val", "classes")}
    if os.path.exists(marker):
        return paths
    os.makedirs(folder, exist_ok=True)
    wheels = glob.glob(os.path.join(folder, "stardist-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "stardist", "-d", folder], check=True)
        wheels = glob.glob(os.path.join(folder, "stardist-*.whl"))
    with zipfile.ZipFile(wheels[0]) as wheel:
        image = cv2.imdecode(np.frombuffer(wheel.read("stardist/data/images/img2d.tif"), np.uint8), cv2.IMREAD_UNCHANGED)
        masks = cv2.imdecode(np.frombuffer(wheel.read("stardist/data/images/mask2d.tif"), np.uint8), cv2.IMREAD_UNCHANGED)
    image = cv2.cvtColor(np.clip(image, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    boxes = []
    for label in np.unique(masks):
        if label == 0:
            continue
        ys, xs = np.nonzero(masks == label)
        boxes.append((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
    boxes = np.array(boxes, dtype=np.float64)

    def write(split, windows, width=TILE):
        rows = []
        for index, (x0, y0) in enumerate(windows):
            name = f"{split}_{index:03d}.png"
            cv2.imwrite(os.path.join(folder, name), image[y0 : y0 + TILE, x0 : x0 + width])
            clipped = np.clip(boxes - [x0, y0, x0, y0], 0, [width, TILE, width, TILE])
            area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            kept = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1]) >= 0.5 * area
            for x1, y1, x2, y2 in clipped[kept]:
                rows.append([name, int(x1), int(y1), int(x2), int(y2), "nucleus"])
            if not kept.any():
                rows.append([name, "", "", "", "", ""])
        with open(paths[split], "w", newline="") as handle:
            csv.writer(handle).writerows(rows)

    height = image.shape[0]
    write("train", [(x, y) for y in range(0, height - TILE + 1, TILE_STRIDE) for x in range(0, TRAIN_WIDTH - TILE + 1, TILE_STRIDE)])
    write("val", [(TRAIN_WIDTH, y) for y in range(0, height, TILE)], width=image.shape[1] - TRAIN_WIDTH)
    with open(paths["classes"], "w") as handle:
        handle.write("nucleus,0\n")
    open(marker, "w").close()
    return paths


def fitted_anchors(name, paths, side):
    """Anchors fitted once to a dataset's training boxes (every model of the dataset trains with them)."""
    from keras_retinanet import models
    from keras_retinanet.config import DatasetConfig, RetinaNetConfig
    from keras_retinanet.config.anchors_ini import write_anchor_config
    from keras_retinanet.data.diagnostics import collect_boxes, describe_fit, fit_dataset_anchors
    from keras_retinanet.readers.from_config import configured_generator

    path = os.path.join(CACHE, f"{name}_anchors.ini")
    if os.path.exists(path):
        return path
    dataset = DatasetConfig(type="csv", annotations=paths["train"], classes=paths["classes"])
    config = RetinaNetConfig.build({"data.dataset": dataset, "data.image_min_side": side, "data.image_max_side": side})
    backbone = models.backbone(BACKBONE)
    result = fit_dataset_anchors(collect_boxes(configured_generator(config, backbone, subset="train")), None,
                                 backbone.feature_shapes, seed=0)  # fmt: skip
    for line in describe_fit(result):
        print(line, flush=True)
    write_anchor_config(path, result.anchors, f"bench_recipe.py: fitted to the {name} training boxes")
    return path


def datasets():
    """name -> (the dataset's retinanet-train arguments, validation CSV, classes CSV, side)."""
    result = {}
    for name, paths in (("crowded", crowded_data()), ("nuclei", nuclei_data())):
        side = DATASETS[name][2]
        anchors = fitted_anchors(name, paths, side)
        arguments = ["--image-min-side", str(side), "--image-max-side", str(side), "--config", anchors,
                     "csv", paths["train"], paths["classes"], "--val-annotations", paths["val"]]  # fmt: skip
        result[name] = (arguments, paths["val"], paths["classes"], side)
    demo_dir = os.path.join(CACHE, "demo")
    from keras_retinanet.config import DatasetConfig
    from keras_retinanet.preprocessing.demo import ensure_demo_dataset

    demo = ensure_demo_dataset(DatasetConfig(type="demo", path=demo_dir))
    result["demo"] = (["demo", "--data-dir", demo_dir], demo["val"], demo["classes"], DATASETS["demo"][2])
    return result
