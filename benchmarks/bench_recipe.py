"""keras-retinanet's training recipe against each piece of the modern one and the named ``--recipe modern``.

Every model is a MobileNet RetinaNet (mobilenet128_0.5, 64-wide pyramid and heads, batch 4, ``--lr 1e-3``) trained by
``retinanet-train`` in a process of its own, at equal steps, from random weights (``--no-weights``) or fine-tuned
(``--weights``: a keras-retinanet-recipe model trained on other crowded scenes, the same file for every model). Each
epoch's snapshot is then evaluated on the held-out images: mAP@0.5 (keras-retinanet's evaluation) and COCO-style AP
(AP@[.5:.95], pycocotools). Seconds per step are each run's training epochs (no evaluation runs during training) after
the first (which traces the graph).

Datasets (made once under benchmarks/.cache/recipe, never committed):

- crowded: this repository's shapes generator (``preprocessing.demo.make_demo_dataset``) at 320 x 320, 15-40 objects
  of 10-56 px per image, 200 training and 50 held-out images; anchors fitted once to its training boxes;
- demo: ``retinanet-train demo``'s dataset (160 px, 1-4 objects of 32-96 px; the demo preset's sizes);
- nuclei: the fluorescence image the ``stardist`` wheel ships (``stardist/data/images/img2d.tif`` and its instance
  masks ``mask2d.tif``, 512 x 512): each mask's box; the left 320 px cut into overlapping 128 px training tiles (stride
  32), the right 192 px into four 192 x 128 held-out tiles; resized to a 256 px short side; anchors fitted once.

The demo's own goal is measured separately (``--phase demo``): ``retinanet-train demo`` as it was (a checkout of the
commit before the recipe, ``--base-checkout``) and as it is, interleaved, each from a fresh data folder (generation
included), timing from the start of the command to the end of the first epoch whose mAP >= 0.95.

Writes benchmarks/results/recipe.json (one row per model, with the exact grid that ran) and recipe_curves.png.

Run: nohup python benchmarks/bench_recipe.py > recipe.log 2>&1 &   (hours on 2 shared cores; it resumes where it
stopped: each run's evaluation is kept beside it)
"""

import argparse
import csv
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from bench_shared import write_result  # first: it reads the load average at the start

HERE = os.path.dirname(os.path.abspath(__file__))
REPOSITORY = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
sys.path.insert(0, HERE)
from recipe_data import BACKBONE, CACHE, DATASETS, crowded_data, datasets  # noqa: E402
from recipe_report import PAIR, draw_curves, summarise  # noqa: E402

WIDTH = "64"
COMMON = ["--backbone", BACKBONE, "--batch-size", "4", "--lr", "1e-3", "--workers", "1", "--no-evaluation",
          "--pyramid-feature-size", WIDTH, "--classification-feature-size", WIDTH, "--regression-feature-size", WIDTH,
          "--keep-snapshots", "all"]  # fmt: skip
BASE = ["--recipe", "keras-retinanet"]
# Each piece alone on keras-retinanet's recipe, then the named recipe.
MODELS = {
    "keras-retinanet": BASE,
    "+group-norm heads": BASE + ["--head-norm", "group"],
    "+GIoU": BASE + ["--box-loss", "giou"],
    "+AdamW": BASE + ["--optimizer", "adamw"],
    "+warm-up, cosine": BASE + ["--lr-schedule", "cosine", "--warmup-steps", "100"],
    "+EMA": BASE + ["--ema", "0.9998", "--ema-warmup-steps", "200"],
    "+scale jitter": BASE + ["--scale-jitter", "0.75,1.25"],
    "+top-down flips, turns": BASE + ["--top-down"],
    "modern": ["--recipe", "modern"],
    # the named recipe less one piece
    "modern, smooth L1": ["--recipe", "modern", "--box-loss", "smooth_l1"],
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase", default="all", choices=("all", "data", "grid", "timing", "demo", "report"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--groups", nargs="+", default=list(GROUPS), choices=list(GROUPS), help="Runs of --phase grid.")
    parser.add_argument("--base-checkout", default=None, help="A checkout of the commit before the recipe (--phase demo).")
    parser.add_argument("--demo-pairs", type=int, default=2, help="Interleaved (before, after) demo runs.")
    parser.add_argument("--run-timeout", type=int, default=3600)
    parser.add_argument("--output", default=os.path.join(RESULTS, "recipe.json"))
    return parser.parse_args()


def commit():
    """The commit of the checkout the runs train with."""
    done = subprocess.run(["git", "-C", REPOSITORY, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or None


def loadavg():
    with open("/proc/loadavg") as handle:
        return handle.read().split()[:3]


def environment():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", KERAS_RETINANET_IMAGENET_WEIGHTS="none")
    env["PYTHONPATH"] = REPOSITORY + os.pathsep + env.get("PYTHONPATH", "")
    return env


# --------------------------------------------------------------------------------------------------------------
# training and evaluation


def run_folder(dataset, init, model, seed):
    slug = model.replace("+", "plus_").replace(",", "").replace(" ", "_").replace("-", "_")
    return os.path.join(CACHE, "runs", f"{dataset}_{init}_{slug}_s{seed}")


def train(folder, arguments, timeout):
    """One retinanet-train run in its own process; returns (seconds, epoch rows of metrics.csv)."""
    os.makedirs(folder, exist_ok=True)
    command = [sys.executable, "-m", "keras_retinanet.bin.train", *arguments]
    start = time.monotonic()
    with open(os.path.join(folder, "train.log"), "w") as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, timeout=timeout, env=environment(), check=False)
    seconds = time.monotonic() - start
    if done.returncode != 0:
        raise RuntimeError(f"training failed (exit {done.returncode}), see {folder}/train.log")
    with open(os.path.join(folder, "metrics.csv")) as handle:
        return seconds, list(csv.DictReader(handle))


def evaluate_snapshots(folder, val_csv, classes_csv, side):
    """mAP@0.5 and COCO AP of each epoch's snapshot of a run."""
    import keras

    from keras_retinanet import models
    from keras_retinanet.config import DatasetConfig, RetinaNetConfig
    from keras_retinanet.evaluation.coco import COCO_STAT_NAMES
    from keras_retinanet.evaluation.run import run_evaluation
    from keras_retinanet.readers.from_config import configured_generator

    dataset = DatasetConfig(type="csv", annotations=val_csv, classes=classes_csv)
    config = RetinaNetConfig.build({"data.dataset": dataset, "data.image_min_side": side, "data.image_max_side": side,
                                    "evaluation.coco_metrics": True, "model.backbone": BACKBONE})  # fmt: skip
    generator = configured_generator(config, models.backbone(BACKBONE), subset="eval")
    epochs = []
    snapshots = sorted(path for path in glob.glob(os.path.join(folder, "*_[0-9][0-9].h5")))
    scratch = tempfile.mkdtemp()
    for path in snapshots:
        keras.utils.clear_session(free_memory=False)
        model = models.convert_model(models.load_model(path, compile=False))
        result = run_evaluation(generator, model, config, output_dir=scratch)
        epochs.append({"snapshot": os.path.basename(path), "mAP50": result["pascal_voc"]["mAP"],
                       "coco_AP": result["coco"]["stats"][COCO_STAT_NAMES[0]]})  # fmt: skip
    shutil.rmtree(scratch, ignore_errors=True)
    return epochs


def evaluate(folder, val_csv, classes_csv, side):
    """:func:`evaluate_snapshots` in this process (TensorFlow starts once for the whole grid), kept beside the run."""
    epochs = evaluate_snapshots(folder, val_csv, classes_csv, side)
    with open(os.path.join(folder, "evaluation.json"), "w") as handle:
        json.dump(epochs, handle)
    return epochs


def one_run(dataset, init, model, seed, data, base_weights, args):
    """Train and evaluate one model (kept: a second call reads what the first wrote)."""
    folder = run_folder(dataset, init, model, seed)
    record = os.path.join(folder, "run.json")
    if os.path.exists(record):
        with open(record) as handle:
            return json.load(handle)
    if os.path.exists(folder):
        shutil.rmtree(folder)
    arguments, val_csv, classes_csv, side = data[dataset]
    steps, epochs, _ = DATASETS[dataset]
    init_arguments = ["--no-weights"] if init == "random" else ["--weights", base_weights]
    flags = [*COMMON, *MODELS[model], *init_arguments, "--seed", str(seed), "--steps", str(steps),
             "--epochs", str(epochs), "--snapshot-path", folder, "--run-dir", folder, *arguments]  # fmt: skip
    load = loadavg()
    print(f"{time.strftime('%H:%M:%S')} {dataset} {init} {model} seed {seed} (load {' '.join(load)})", flush=True)
    seconds, rows = train(folder, flags, args.run_timeout)
    epochs_evaluated = evaluate(folder, val_csv, classes_csv, side)
    step_seconds = [float(row["time_s"]) / steps for row in rows[1:]]
    result = {
        "dataset": dataset, "init": init, "model": model, "seed": seed, "steps": steps * epochs,
        "flags": MODELS[model], "wall_s": round(seconds, 1), "load_at_start": load, "commit": commit(),
        "seconds_per_step": sum(step_seconds) / len(step_seconds),
        "mAP50": [epoch["mAP50"] for epoch in epochs_evaluated],
        "coco_AP": [epoch["coco_AP"] for epoch in epochs_evaluated],
        "loss": [float(row["loss"]) for row in rows],
    }  # fmt: skip
    with open(record, "w") as handle:
        json.dump(result, handle, indent=1)
    for path in glob.glob(os.path.join(folder, "*.h5")):  # the evaluation is kept; the snapshots are not needed
        if not path.endswith(f"_{epochs:02d}.h5"):
            os.remove(path)
    print(f"    mAP@0.5 {result['mAP50'][-1]:.3f}, COCO AP {result['coco_AP'][-1]:.3f}, "
          f"{result['seconds_per_step']:.3f} s/step", flush=True)  # fmt: skip
    return result


def base_model(data, args):
    """The fine-tuning start: keras-retinanet's recipe on other crowded scenes (generator seed 1), 600 steps."""
    path = os.path.join(CACHE, "base_crowded.h5")
    if os.path.exists(path):
        return path
    paths = crowded_data(seed=1, num_val=10)
    folder = os.path.join(CACHE, "runs", "base")
    if os.path.exists(folder):
        shutil.rmtree(folder)
    arguments = [*COMMON, *BASE, "--no-weights", "--seed", "100", "--steps", "100", "--epochs", "6",
                 "--snapshot-path", folder, "--run-dir", folder, "--image-min-side", "320", "--image-max-side", "320",
                 "--keep-snapshots", "last", "csv", paths["train"], paths["classes"]]  # fmt: skip
    print(f"{time.strftime('%H:%M:%S')} base model (load {' '.join(loadavg())})", flush=True)
    train(folder, arguments, args.run_timeout)
    shutil.copy(glob.glob(os.path.join(folder, "*_06.h5"))[0], path)
    return path


GROUPS = {
    # keras-retinanet's and modern on the crowded scenes from random weights
    "crowded-pair": [("crowded", "random", model) for model in PAIR],
    # each piece alone on them
    "pieces": [("crowded", "random", model) for model in MODELS if model not in PAIR and not model.startswith("modern")],
    "ablations": [("crowded", "random", model) for model in MODELS if model.startswith("modern, ")],
    # keras-retinanet's and modern on the other datasets and starts (the demo from random weights: --phase demo)
    "others": [(dataset, init, model) for dataset, init in (("nuclei", "random"), ("nuclei", "weights"),
                                                             ("crowded", "weights"), ("demo", "weights"))
               for model in PAIR],
}  # fmt: skip


def grid(args):
    """The groups of runs asked for (``--groups``), each seed of every run before the next seed."""
    data = datasets()
    plan = [run for group in args.groups for run in GROUPS[group]]
    base = base_model(data, args) if any(init == "weights" for _, init, _ in plan) else None
    results = []
    for seed in args.seeds:  # a seed of every model before the next: a partial grid is already a comparison
        for dataset, init, model in plan:
            results.append(one_run(dataset, init, model, seed, data, base, args))
    return results


# --------------------------------------------------------------------------------------------------------------
# seconds per step, interleaved


def step_timing(args, rounds=6, steps=5):
    """Seconds per training step of keras-retinanet's recipe and modern on the same crowded batches, in one process,
    the two taking turns (``rounds`` x ``steps`` steps each): a ratio that a shared machine's load changes alike."""
    import keras
    import numpy as np

    from keras_retinanet import models
    from keras_retinanet.bin import train as train_command
    from keras_retinanet.engine.run_setup import create_generators
    from keras_retinanet.engine.trainer import build_training_model

    arguments = datasets()["crowded"][0]
    built = {}
    for model in PAIR:
        config = train_command.parse_args([*COMMON, *MODELS[model], "--no-weights", "--seed", "0", *arguments]).config
        keras.utils.set_random_seed(0)
        backbone = models.backbone(BACKBONE)
        generator, _ = create_generators(config, backbone)
        training_model = build_training_model(config, backbone, ["a", "b", "c", "d"], total_steps=1000)
        batches = [generator.compute_input_output(generator.groups[index], position=index) for index in range(4)]
        for inputs, targets in batches[:2]:  # traced and warm
            training_model.train_on_batch(inputs, targets)
        built[model] = (training_model, batches)
    times = {model: [] for model in PAIR}
    for round_index in range(rounds):
        for model in PAIR if round_index % 2 == 0 else PAIR[::-1]:
            training_model, batches = built[model]
            start = time.perf_counter()
            for step in range(steps):
                inputs, targets = batches[step % len(batches)]
                training_model.train_on_batch(inputs, targets)
            times[model].append((time.perf_counter() - start) / steps)
    medians = {model: float(np.median(values)) for model, values in times.items()}
    result = {"seconds_per_step": medians, "rounds": times, "ratio": medians[PAIR[1]] / medians[PAIR[0]],
              "load": loadavg()}  # fmt: skip
    with open(os.path.join(CACHE, "step_timing.json"), "w") as handle:
        json.dump(result, handle, indent=1)
    print(f"seconds per step: {medians}, modern / keras-retinanet {result['ratio']:.3f}", flush=True)
    return result


# --------------------------------------------------------------------------------------------------------------
# the demo's goal


def demo_run(checkout, label, index):
    """``retinanet-train demo`` from a fresh data folder; seconds to the first epoch with mAP >= 0.95, and the end."""
    folder = tempfile.mkdtemp(prefix=f"demo_{label}_{index}_", dir=os.path.join(CACHE))
    env = environment()
    env["PYTHONPATH"] = checkout + os.pathsep + env.get("PYTHONPATH", "")
    env["XDG_CACHE_HOME"] = os.path.join(folder, "cache")  # the dataset is generated: a newcomer's first run
    command = [sys.executable, "-m", "keras_retinanet.bin.train", "demo"]
    start = time.monotonic()
    reached, maps, lines = None, [], []
    process = subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:
        lines.append(line)
        if line.startswith("mAP: "):
            maps.append(float(line.split()[1]))
            if reached is None and maps[-1] >= 0.95:
                reached = time.monotonic() - start
    process.wait()
    total = time.monotonic() - start
    with open(os.path.join(folder, "train.log"), "w") as handle:
        handle.writelines(lines)
    snapshot_bytes = sum(os.path.getsize(path) for path in glob.glob(os.path.join(folder, "snapshots", "*", "*.h5")))
    return {"label": label, "seconds_to_mAP_0.95": reached, "total_s": round(total, 1), "mAP": maps,
            "best_mAP": max(maps) if maps else None, "snapshot_MB": round(snapshot_bytes / 1e6, 1),
            "load_at_start": loadavg(), "folder": folder}  # fmt: skip


def demo_goal(args):
    if not args.base_checkout:
        raise SystemExit("--phase demo needs --base-checkout (a checkout of the commit before the recipe)")
    runs = []
    for index in range(args.demo_pairs):
        for label, checkout in (("before", os.path.abspath(args.base_checkout)), ("after", REPOSITORY)):
            print(f"{time.strftime('%H:%M:%S')} demo {label} {index} (load {' '.join(loadavg())})", flush=True)
            runs.append(demo_run(checkout, label, index))
            print(f"    {runs[-1]['seconds_to_mAP_0.95']} s to 0.95, {runs[-1]['total_s']} s in all, best "
                  f"{runs[-1]['best_mAP']}", flush=True)  # fmt: skip
    with open(os.path.join(CACHE, "demo_goal.json"), "w") as handle:
        json.dump(runs, handle, indent=1)
    return runs


# --------------------------------------------------------------------------------------------------------------
# the report


def report(args, results, demo, timing):

    table = summarise(results)
    ratios = {}
    for dataset in DATASETS:
        for init in ("random", "weights"):
            pair = {row["model"]: row for row in table if (row["dataset"], row["init"]) == (dataset, init)}
            if all(model in pair for model in PAIR):
                before, after = pair[PAIR[0]], pair[PAIR[1]]
                ratios[f"{dataset}/{init}"] = {
                    "mAP50_ratio": after["mAP50"] / max(before["mAP50"], 1e-9),
                    "seconds_per_step_ratio": after["seconds_per_step"] / before["seconds_per_step"],
                }
    numbers = {
        "grid": {"crowded/random": list(MODELS), "every dataset x init": list(PAIR), "seeds": args.seeds,
                 "datasets": {name: {"steps_per_epoch": s, "epochs": e, "side": side}
                              for name, (s, e, side) in DATASETS.items()}},  # fmt: skip
        "common_flags": COMMON,
        "rows": table,
        "modern_vs_keras_retinanet": ratios,
        "demo_goal": demo,
        "step_timing_interleaved": timing,
        "runs": results,
    }
    draw_curves(table, os.path.join(RESULTS, "recipe_curves.png"))
    notes = "the machine is shared (2 cores): each run's load average at its start is in runs[].load_at_start"
    print(write_result("recipe", numbers, output=args.output, notes=notes))


def collected_results(args):
    results = []
    for path in sorted(glob.glob(os.path.join(CACHE, "runs", "*", "run.json"))):
        with open(path) as handle:
            result = json.load(handle)
        if result["seed"] in args.seeds:
            results.append(result)
    return results


def main():
    args = parse_args()
    os.makedirs(CACHE, exist_ok=True)
    print(f"start: load {' '.join(loadavg())}", flush=True)
    if args.phase == "data":
        datasets()
        return
    if args.phase in ("all", "demo") and args.base_checkout:
        demo_goal(args)
    if args.phase in ("all", "timing"):
        step_timing(args)
    if args.phase in ("all", "grid"):
        grid(args)
    kept = {}
    for name in ("demo_goal", "step_timing"):
        path = os.path.join(CACHE, f"{name}.json")
        kept[name] = json.load(open(path)) if os.path.exists(path) else None
    if args.phase in ("all", "report", "grid"):
        report(args, collected_results(args), kept["demo_goal"], kept["step_timing"])


if __name__ == "__main__":
    main()
