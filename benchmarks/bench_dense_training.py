"""Dense scenes, trained two ways at equal steps: on tiles at native resolution, and on whole images shrunk to fit.

A generated dataset of large images (--side, 2048 px by default) holding hundreds of small objects (16-40 px) of
the demo's four shapes. Two MobileNet RetinaNets (mobilenet128_0.5, 64-wide heads, from scratch, same seed, same
steps and batch size):

- tiled: ``retinanet-train --tile 256`` (random 256 px crops at the image's own scale, objects at their own size);
- downscaled: ``retinanet-train --image-min-side 512 --image-max-side 512`` (whole images shrunk 4x: 4-10 px objects).

Each is evaluated on the held-out images (AP@0.5 over the classes, keras-retinanet's evaluation; detections per
image; seconds per megapixel; peak memory, each in a process of its own) whole, at the side it was trained at,
and with sliced inference in 256 px tiles (each tile resized as the model's spec says), with each merging rule
and with Soft-NMS. Writes benchmarks/results/dense_training.json and a picture of the tiled model's detections on
one held-out image (benchmarks/results/dense_training.jpg).

Run: python benchmarks/bench_dense_training.py [--steps 150 --epochs 12] [--side 2048]   (about 80 min on 2 idle cores: training 15 + 35 min, evaluations 30 min)
"""

import argparse
import json
import os
import subprocess
import sys
import time

from bench_shared import write_result  # first: it reads the load average at the start

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_dense import measure  # noqa: E402
from trained_models import CACHE  # noqa: E402

TILE = 256
SHRUNK_SIDE = 512
MAX_DETECTIONS = 3000
# Both fit their anchors to the boxes as they train on them (--auto-anchors): keras-retinanet's smallest anchor
# (32 px) matches no 16-24 px object at IoU 0.5, and none of the downscaled model's 4-10 px ones, so with the
# default anchors the comparison would measure the anchors, not the training.
MODELS = {
    "tiled": ["--tile", str(TILE), "--auto-anchors"],
    "downscaled": ["--image-min-side", str(SHRUNK_SIDE), "--image-max-side", str(SHRUNK_SIDE), "--auto-anchors"],
}
EVALUATIONS = {
    "whole": {},
    "tiles_border": {"tile": True, "merge": "border"},
    "tiles_nms": {"tile": True, "merge": "nms"},
    "tiles_merge": {"tile": True, "merge": "merge"},
    "tiles_border_soft_nms": {"tile": True, "merge": "border", "nms_method": "soft"},
}


def make_data(folder, side, num_train, num_val, seed):
    """The generated dataset (made once): CSVs of large images with hundreds of small objects."""
    from keras_retinanet.readers.demo import make_demo_dataset

    marker = os.path.join(folder, "COMPLETE.json")
    if not os.path.exists(marker):
        make_demo_dataset(folder, num_train=num_train, num_val=num_val, image_size=side, min_object_size=16,
                          max_object_size=40, min_objects=200, max_objects=300, max_overlap=0.1,
                          image_format=".png", seed=seed)  # fmt: skip
    return {name: os.path.join(folder, f"{name}.csv") for name in ("train", "val", "classes")}


def train(name, data, folder, steps, epochs, batch_size, seed):
    """Train one model (once: a finished run is reused); returns (model path, seconds)."""
    run = os.path.join(folder, name)
    model = os.path.join(run, f"mobilenet128_0.5_csv_{epochs:02d}.h5")
    record = os.path.join(run, "bench_trained.json")
    if os.path.exists(record):
        with open(record) as handle:
            return model, json.load(handle)["seconds"]
    command = [sys.executable, "-m", "keras_retinanet.bin.train", "--backbone", "mobilenet128_0.5", "--no-weights",
               "--trainable-bn", "--pyramid-feature-size", "64", "--classification-feature-size", "64",
               "--regression-feature-size", "64", "--lr", "1e-3", "--batch-size", str(batch_size),
               "--steps", str(steps), "--epochs", str(epochs), "--no-evaluation", "--seed", str(seed),
               "--run-dir", run, *MODELS[name], "csv", data["train"], data["classes"]]  # fmt: skip
    start = time.time()
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"{name}.log"), "w") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT,
                       env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))  # fmt: skip
    seconds = time.time() - start
    with open(record, "w") as handle:
        json.dump({"seconds": seconds, "command": command}, handle)
    return model, seconds


def evaluate(model, data, setting, picture=None):
    """One evaluation in this process: its figures (see bench_dense.measure)."""
    from keras_retinanet import load_detector
    from keras_retinanet.preprocessing.csv_generator import CSVGenerator

    options = EVALUATIONS[setting]
    detector = load_detector(model, max_detections=MAX_DETECTIONS, nms_method=options.get("nms_method"))
    if options.get("tile"):
        detector = detector.with_tiles(TILE, overlap=0.2, merge=options["merge"])
    generator = CSVGenerator(data["val"], data["classes"], shuffle_groups=False)

    def draw_quarter(image, boxes, scores, labels):
        """A quarter of the image at full size, its confident detections drawn: the objects stay visible."""
        import cv2

        from keras_retinanet.utils.visualization import draw_detections

        drawn = image.copy()
        draw_detections(drawn, boxes, scores, labels, label_to_name=generator.label_to_name, score_threshold=0.5)
        cv2.imwrite(picture, drawn[: image.shape[0] // 2, : image.shape[1] // 2], [cv2.IMWRITE_JPEG_QUALITY, 80])

    return measure(detector, generator, MAX_DETECTIONS, draw_quarter if picture else None)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", type=int, default=2048)
    parser.add_argument("--train-images", type=int, default=24)
    parser.add_argument("--val-images", type=int, default=4)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--epochs", type=int, default=12)  # 4 left both models far from trained
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", help="Result file (default: benchmarks/results/dense_training.json).")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)  # model name, evaluation
    args = parser.parse_args(argv)
    folder = os.path.join(CACHE, f"dense_training_{args.side}_{args.train_images}_{args.seed}")
    data = make_data(os.path.join(folder, "data"), args.side, args.train_images, args.val_images, args.seed)
    if args.child:
        name, setting = args.child
        model = os.path.join(folder, f"{name}_{args.steps}x{args.epochs}", name,
                             f"mobilenet128_0.5_csv_{args.epochs:02d}.h5")  # fmt: skip
        picture = os.path.join(HERE, "results", "dense_training.jpg") if args.child == ["tiled", "tiles_border"] else None
        print("RESULT " + json.dumps(evaluate(model, data, setting, picture)), flush=True)
        return
    results = {"side": args.side, "train_images": args.train_images, "val_images": args.val_images,
               "steps": args.steps, "epochs": args.epochs, "batch_size": args.batch_size, "tile": TILE,
               "shrunk_side": SHRUNK_SIDE, "models": {}}  # fmt: skip
    for name in MODELS:
        model, seconds = train(name, data, os.path.join(folder, f"{name}_{args.steps}x{args.epochs}"), args.steps,
                               args.epochs, args.batch_size, args.seed)  # fmt: skip
        entry = {"command": MODELS[name], "training_s": seconds, "evaluations": {}}
        for setting in EVALUATIONS:
            command = [sys.executable, os.path.abspath(__file__), "--child", name, setting, "--side", str(args.side),
                       "--train-images", str(args.train_images), "--val-images", str(args.val_images),
                       "--steps", str(args.steps), "--epochs", str(args.epochs), "--seed", str(args.seed)]  # fmt: skip
            completed = subprocess.run(command, capture_output=True, text=True,
                                       env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))  # fmt: skip
            lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
            if completed.returncode != 0 or not lines:
                raise SystemExit(f"{name} {setting} failed:\n{completed.stderr[-3000:]}")
            entry["evaluations"][setting] = json.loads(lines[-1][len("RESULT "):])
            print(name, setting, json.dumps(entry["evaluations"][setting]), flush=True)
        results["models"][name] = entry
    write_result("dense_training", results, output=args.output)


if __name__ == "__main__":
    main()
