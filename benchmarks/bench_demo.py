"""The demo as a user runs it: ``retinanet-train --seed S demo``, timed, with its mAP after every epoch.

Runs the command in its own process (a fresh demo dataset in a temporary folder, generated as on first use, and a
run folder next to it), and records the wall time of the whole command, the time of each epoch and of the first
one (tracing included), the time per step, the peak resident memory, and the validation mAP@0.5 after every epoch
with the last epoch's AP per class, read from the run's metrics.csv. A timing: run it on an otherwise idle machine
(the result records the load average).

Writes benchmarks/results/demo.json (bench_shared.write_result).

Run: python benchmarks/bench_demo.py [--seed 0] [--keep FOLDER]
"""

import argparse
import csv
import os
import resource
import subprocess
import sys
import tempfile
import time

from bench_shared import write_result  # first: it reads the load average at the start

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", help="keep the dataset and the run folder here (default: a temporary folder)")
    parser.add_argument("--output", help="write the JSON here (default: results/demo.json)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as temporary:
        folder = args.keep or temporary
        run = os.path.join(folder, "run")
        command = ["--seed", str(args.seed), "--run-dir", run, "demo", "--data-dir", os.path.join(folder, "data")]
        environment = dict(os.environ)
        environment.pop("TF_ONEDNN_ASSUME_FROZEN_WEIGHTS", None)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "keras_retinanet.bin.train"] + command, capture_output=True,
                              text=True, env=environment)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"retinanet-train failed:\n{done.stderr[-3000:]}")
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
        with open(os.path.join(run, "metrics.csv")) as handle:
            epochs = list(csv.DictReader(handle))
        with open(os.path.join(folder, "data", "train.csv")) as handle:
            images = len({row[0] for row in csv.reader(handle) if row})
    steps_per_epoch = -(-images // 4)  # the demo preset's batch of 4, every training image once an epoch
    steps = [float(row["time_s"]) for row in epochs]
    last = epochs[-1]
    result = {
        "command": "retinanet-train --seed %d demo" % args.seed,
        "total_s": seconds,
        "epochs": len(epochs),
        "epoch_s": steps,
        "first_epoch_s": steps[0],
        "median_epoch_s": sorted(steps)[len(steps) // 2],
        "steps_per_epoch": steps_per_epoch,
        "step_s_after_first_epoch": sum(steps[1:]) / max(len(steps) - 1, 1) / steps_per_epoch,
        "peak_rss_mib": peak_mib,
        "mAP_per_epoch": [float(row["mAP"]) for row in epochs],
        "best_mAP": max(float(row["mAP"]) for row in epochs),
        "last_AP_per_class": {key[3:]: float(value) for key, value in last.items() if key.startswith("AP/")},
    }
    print(f"{seconds / 60:.1f} min in all, last mAP {result['mAP_per_epoch'][-1]:.3f}, best {result['best_mAP']:.3f}, "
          f"{result['step_s_after_first_epoch']:.3f} s a step, peak {peak_mib:.0f} MiB")

    write_result("demo", result, output=args.output)


if __name__ == "__main__":
    main()
