"""The trained models that fidelity and int8 figures are measured on, made once and cached in benchmarks/.cache/.

  demo      ``retinanet-train --seed 0 demo``: mobilenet128_0.5 from scratch on the built-in demo dataset (160 px,
            400 training and 100 validation images); its best snapshot by validation mAP. Calibration images: the
            demo's train.csv; evaluation (and timing) images: its val.csv.
  resnet50  a ResNet50 RetinaNet trained from scratch on synthetic shapes: ``retinanet-train --backbone resnet50
            --no-weights --trainable-bn --lr 1e-3 --batch-size 4 --image-min-side 256 --image-max-side 256 --steps 50
            --epochs 12 --no-evaluation --seed 0`` (600 steps) on the 400 training images of
            ``make_demo_dataset(image_size=256, max_object_size=112, seed=1)``; its last snapshot
            (resnet50_csv_12.h5). Measured at 800x1067 on ``make_demo_dataset(image_size=(800, 1067), min_objects=10,
            max_objects=20, num_train=16, num_val=12, seed=2)``: shapes of the trained sizes (32-112 px), 10-20 an
            image; its 12 val images are evaluated and timed, its 16 train images (other images) calibrate int8.

Each model's folder holds ``made.json`` (the commands, and the model file's SHA-256) once it is complete; an
interrupted run is redone. Training takes minutes (demo) to tens of minutes (ResNet50) on 2 CPU cores.

Run: python benchmarks/trained_models.py demo resnet50     (make them now; benchmarks also make them when needed)
"""

import hashlib
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(HERE, ".cache")

RESNET50_TRAIN = dict(num_train=400, num_val=20, image_size=256, max_object_size=112, seed=1)
RESNET50_MEASURE = dict(num_train=16, num_val=12, image_size=(800, 1067), min_objects=10, max_objects=20, seed=2)
RESNET50_SIDES = {"image_min_side": 800, "image_max_side": 1333}


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _train(command, folder):
    """Run a retinanet-train command line (a list, after the program) in its own process, logged to the folder."""
    environment = dict(os.environ, KERAS_RETINANET_IMAGENET_WEIGHTS="none", TF_CPP_MIN_LOG_LEVEL="2")
    environment.pop("TF_ONEDNN_ASSUME_FROZEN_WEIGHTS", None)  # never while training
    started = time.time()
    with open(os.path.join(folder, "train.log"), "w") as log:
        subprocess.run([sys.executable, "-m", "keras_retinanet.bin.train"] + command, check=True, stdout=log,
                       stderr=subprocess.STDOUT, env=environment, cwd=folder)
    return time.time() - started


def _done(folder):
    marker = os.path.join(folder, "made.json")
    if os.path.isfile(marker):
        with open(marker) as handle:
            made = json.load(handle)
        if os.path.isfile(made["model"]) and sha256(made["model"]) == made["model_sha256"]:
            return made
    return None


def _finish(folder, made):
    made["model_sha256"] = sha256(made["model"])
    with open(os.path.join(folder, "made.json"), "w") as handle:
        json.dump(made, handle, indent=1)
    return made


def trained_demo(cache=CACHE):
    """The demo model (made if missing): dict with model, train_csv (calibration), eval_csv, classes_csv, sides."""
    folder = os.path.join(cache, "demo_seed0")
    made = _done(folder)
    if made:
        return made
    os.makedirs(folder, exist_ok=True)
    data = os.path.join(folder, "data")
    run = os.path.join(folder, "run")
    command = ["--seed", "0", "--run-dir", run, "demo", "--data-dir", data]
    seconds = _train(command, folder)
    return _finish(folder, {
        "model": os.path.join(run, "mobilenet128_0.5_demo_best.h5"),
        "train_csv": os.path.join(data, "train.csv"), "eval_csv": os.path.join(data, "val.csv"),
        "classes_csv": os.path.join(data, "classes.csv"), "sides": {"image_min_side": 160, "image_max_side": 160},
        "training": "retinanet-train " + " ".join(command), "training_s": round(seconds),
    })  # fmt: skip


def trained_resnet50(cache=CACHE):
    """The trained ResNet50 (made if missing): dict with model, train_csv (calibration), eval_csv, classes_csv, sides."""
    sys.path.insert(0, os.path.dirname(HERE))
    from keras_retinanet.readers.demo import make_demo_dataset

    folder = os.path.join(cache, "resnet50_shapes")
    made = _done(folder)
    if made:
        return made
    os.makedirs(folder, exist_ok=True)
    train = make_demo_dataset(os.path.join(folder, "train_256"), **RESNET50_TRAIN)
    measure = make_demo_dataset(os.path.join(folder, "measure_800x1067"), **RESNET50_MEASURE)
    run = os.path.join(folder, "run")
    command = ["--backbone", "resnet50", "--no-weights", "--trainable-bn", "--lr", "1e-3", "--batch-size", "4",
               "--image-min-side", "256", "--image-max-side", "256", "--steps", "50", "--epochs", "12",
               "--no-evaluation", "--seed", "0", "--run-dir", run, "--snapshot-path", run,
               "csv", train.train_csv, train.classes_csv]  # fmt: skip
    seconds = _train(command, folder)
    return _finish(folder, {
        "model": os.path.join(run, "resnet50_csv_12.h5"),
        "train_csv": measure.train_csv, "eval_csv": measure.val_csv, "classes_csv": measure.classes_csv,
        "sides": dict(RESNET50_SIDES),
        "training": "retinanet-train " + " ".join(os.path.relpath(c, folder) if os.path.isabs(c) else c
                                                 for c in command),
        "training_data": "make_demo_dataset(%s)" % ", ".join(f"{k}={v!r}" for k, v in RESNET50_TRAIN.items()),
        "measure_data": "make_demo_dataset(%s)" % ", ".join(f"{k}={v!r}" for k, v in RESNET50_MEASURE.items()),
        "training_s": round(seconds),
    })  # fmt: skip


MODELS = {"demo": trained_demo, "resnet50": trained_resnet50}


def describe(made):
    """What a result records about the model it measured (no absolute paths)."""
    keys = ("training", "training_data", "measure_data", "model_sha256", "sides")
    return dict({key: made[key] for key in keys if key in made}, model=os.path.basename(made["model"]))


if __name__ == "__main__":
    for name in sys.argv[1:] or sorted(MODELS):
        print(name, json.dumps(describe(MODELS[name]()), indent=1), flush=True)
