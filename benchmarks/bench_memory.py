"""Resident memory over a long run of predictions on images of varied sizes (does inference leak?).

Builds an inference model (random weights; memory does not depend on them), runs
``--warmup`` predictions, then ``--predictions`` more through the same path the commands
use (``Detector.predict`` -> ``Detector.run_batch`` -> ``model.predict_on_batch``), each on an image of
a new random size. Resident memory (VmRSS) is sampled along the way; the growth from the
end of warm-up to the end is the figure of merit (target: under 5%).

    python benchmarks/bench_memory.py                       # mobilenet128_0.25, 1,000 predictions
    python benchmarks/bench_memory.py --backbone resnet50 --min-side 256 --max-side 512
    python benchmarks/bench_memory.py --min-side 160 --max-side 161 --name memory_4_sizes   # 4 sizes, repeated

Writes a table to stdout and JSON to benchmarks/results/memory_{backbone}.json (--name: another name;
bench_shared.write_result).
"""

import argparse
import gc
import os
import sys
import time

from bench_shared import write_result  # first: it reads the load average at the start

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]


def resident_mib():
    """Resident set size of this process in MiB (Linux /proc; ru_maxrss elsewhere, a peak)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="mobilenet128_0.25")
    parser.add_argument("--feature-size", type=int, default=32, help="FPN and head width (default: %(default)s).")
    parser.add_argument("--num-classes", type=int, default=3)
    parser.add_argument("--predictions", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--min-side", type=int, default=96, help="Smallest image side (default: %(default)s).")
    parser.add_argument("--max-side", type=int, default=224, help="Largest image side (default: %(default)s).")
    parser.add_argument("--samples", type=int, default=10, help="Memory samples after warm-up.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default=None, help="results/<name>.json (default: memory_{backbone}).")
    parser.add_argument("--output", default=None, help="JSON path (default: benchmarks/results/<name>.json).")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import keras
    import tensorflow as tf

    from keras_retinanet import models
    from keras_retinanet.data.input_transform import InputTransform
    from keras_retinanet.inference import Detector

    keras.utils.set_random_seed(args.seed)
    backbone = models.backbone(args.backbone)
    training = backbone.retinanet(
        args.num_classes,
        pyramid_feature_size=args.feature_size,
        classification_feature_size=args.feature_size,
        regression_feature_size=args.feature_size,
    )
    model = models.convert_model(training)
    detector = Detector(model, spec=None, input_transform=InputTransform(backbone.preprocess_image, resize=False))
    rng = np.random.default_rng(args.seed)

    def one_prediction():
        height, width = (int(side) for side in rng.integers(args.min_side, args.max_side + 1, size=2))
        image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        detector.predict(image)
        return height, width

    start_mib = resident_mib()
    shapes = set()
    started = time.perf_counter()
    for _ in range(args.warmup):
        shapes.add(one_prediction())
    gc.collect()
    warm_mib = resident_mib()
    warm_seconds = time.perf_counter() - started

    samples = [(0, warm_mib)]
    every = max(1, args.predictions // args.samples)
    started = time.perf_counter()
    for index in range(1, args.predictions + 1):
        shapes.add(one_prediction())
        if index % every == 0 or index == args.predictions:
            gc.collect()
            samples.append((index, resident_mib()))
    seconds = time.perf_counter() - started
    end_mib = samples[-1][1]
    growth = 100.0 * (end_mib - warm_mib) / warm_mib

    print(f"{args.backbone}, heads {args.feature_size}, images {args.min_side}-{args.max_side} px, "
          f"{len(shapes)} distinct shapes; TensorFlow {tf.__version__}, Keras {keras.__version__}")  # fmt: skip
    print(f"{'predictions':>12} {'RSS MiB':>9} {'vs warm-up':>11}")
    print(f"{'start':>12} {start_mib:9.1f}")
    for index, mib in samples:
        label = f"warm-up {args.warmup}" if index == 0 else str(index)
        print(f"{label:>12} {mib:9.1f} {100.0 * (mib - warm_mib) / warm_mib:+10.2f}%")
    verdict = "OK" if growth < 5.0 else "LEAK?"
    print(f"growth after warm-up: {growth:+.2f}% ({verdict}, target < 5%); "
          f"{1000.0 * seconds / args.predictions:.1f} ms a prediction (warm-up {warm_seconds:.1f} s)")  # fmt: skip

    result = {
        "backbone": args.backbone,
        "feature_size": args.feature_size,
        "image_sides": [args.min_side, args.max_side],
        "warmup_predictions": args.warmup,
        "predictions": args.predictions,
        "distinct_shapes": len(shapes),
        "rss_mib_start": round(start_mib, 1),
        "rss_mib_after_warmup": round(warm_mib, 1),
        "rss_mib_end": round(end_mib, 1),
        "growth_percent": round(growth, 3),
        "samples": [{"predictions": index, "rss_mib": round(mib, 1)} for index, mib in samples],
        "ms_per_prediction": round(1000.0 * seconds / args.predictions, 2),
    }

    write_result(args.name or f"memory_{args.backbone}", result, output=args.output)
    return result


if __name__ == "__main__":
    main()
