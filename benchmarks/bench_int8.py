"""int8 and the other exports of a *trained* model, in one run: mAP, agreement with float32, and speed.

The model is one of benchmarks/trained_models.py (made and cached on first use): ``resnet50`` (a ResNet50 RetinaNet
trained from scratch on synthetic shapes, measured at 800x1067) or ``demo`` (the demo's mobilenet128_0.5, 160 px).
Each export is written by the command a user runs, ``retinanet-convert-model MODEL OUT [--raw-input] [--quantize
int8 --representative-samples N csv CALIBRATION.csv classes.csv]``, with int8 calibrated on the model's calibration
images, which are never evaluated or timed. Then every file is opened with ``load_detector`` (as retinanet-evaluate
and retinanet-predict open it; oneDNN may assume frozen weights, as in those commands) and measured on the same
evaluation images:

  mAP        Pascal VOC mAP@0.5 on the evaluation images (keras_retinanet.evaluation.voc.evaluate, as
             retinanet-evaluate computes it)
  found      the float32 Keras model's top-100 detections per evaluation image that the file finds again (same
             label, IoU >= 0.9; keras_retinanet.inference.fidelity.found_again), and how many detections score
             above 0.05 per image
  time       median of --runs ``detector.predict(image, score_threshold=0.05)`` on the first evaluation image, after
             warm-up (image as decoded to detections, all in), and its ratio to the float32 Keras model's and to
             float32 ONNX Runtime's; --runs 0 leaves timing out

Rows: Keras float32 (the snapshot through load_detector), ONNX float32 (raw input) and int8 (raw and preprocessed
input), TFLite float32 (raw input, XNNPACK) and int8 (preprocessed input: TFLite's int8 does not take raw input). Writes
benchmarks/results/int8_<model>.json (bench_shared.write_result).

Run: python benchmarks/bench_int8.py --model resnet50 [--runs 5]     (training the model first: ~30-60 min, 2 cores)
     python benchmarks/bench_int8.py --model demo --runs 0            (accuracy only)
"""

import argparse
import os
import subprocess
import sys
import tempfile

from bench_shared import median_seconds, write_result  # first: it reads the load average at the start

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

# (row, file name, raw input, convert options)
EXPORTS = [
    ("onnx float32 raw", "raw.onnx", True, []),
    ("onnx int8 raw", "raw_int8.onnx", True, ["--quantize", "int8"]),
    ("onnx int8", "int8.onnx", False, ["--quantize", "int8"]),
    ("tflite float32 raw", "raw.tflite", True, []),
    ("tflite int8", "int8.tflite", False, ["--quantize", "int8"]),
]


def export(made, path, raw, options, samples):
    """Write one export with retinanet-convert-model in its own process, as a user would."""
    sides = made["sides"]
    command = [sys.executable, "-m", "keras_retinanet.bin.convert_model", made["model"], path,
               "--image-min-side", str(sides["image_min_side"]), "--image-max-side", str(sides["image_max_side"])]
    command += ["--raw-input"] if raw else []
    command += options
    if "int8" in options:
        command += ["--representative-samples", str(samples), "csv", made["train_csv"], made["classes_csv"]]
    environment = dict(os.environ)
    environment.pop("TF_ONEDNN_ASSUME_FROZEN_WEIGHTS", None)
    done = subprocess.run(command, capture_output=True, text=True, env=environment)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{(done.stderr or done.stdout)[-2000:]}")
    return " ".join(["retinanet-convert-model", "MODEL", os.path.basename(path)] + command[5:]).replace(
        made["train_csv"], "calibration.csv").replace(made["classes_csv"], "classes.csv")


def size_mib(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs) / 2**20
    return os.path.getsize(path) / 2**20


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["resnet50", "demo"], default="resnet50")
    parser.add_argument("--runs", type=int, default=5, help="timed predictions per file (0: no timing)")
    parser.add_argument("--samples", type=int, default=16, help="calibration images (--representative-samples)")
    parser.add_argument("--only", nargs="*", help="rows to measure besides 'keras float32' (default: all)")
    parser.add_argument("--output", help="write the JSON here (default: results/int8_<model>.json)")
    args = parser.parse_args(argv)

    from trained_models import MODELS, describe

    made = MODELS[args.model]()
    from keras_retinanet.bin.console import assume_frozen_weights

    assume_frozen_weights()  # this process only runs models, as retinanet-evaluate and retinanet-predict
    import numpy as np

    from keras_retinanet import load_detector
    from keras_retinanet.evaluation.average_precision import mean_average_precision
    from keras_retinanet.evaluation.voc import evaluate
    from keras_retinanet.inference.fidelity import COMPARISON_SCORE_THRESHOLD, found_again
    from keras_retinanet.preprocessing.csv_generator import CSVGenerator

    sides = made["sides"]
    generator = CSVGenerator(made["eval_csv"], made["classes_csv"], shuffle_groups=False, **sides)
    images = [generator.load_image(i) for i in range(generator.size())]
    calibration = CSVGenerator(made["train_csv"], made["classes_csv"], shuffle_groups=False, **sides)
    evaluated = {generator.image_path(i) for i in range(generator.size())}
    calibrating = {calibration.image_path(i) for i in range(min(args.samples, calibration.size()))}
    assert not evaluated & calibrating, "calibration images must not be evaluated or timed"

    result = {"model": describe(made), "evaluation_images": generator.size(), "image_shape": list(images[0].shape),
              "calibration_images": len(calibrating), "runs": args.runs, "rows": {}}
    exports = [e for e in EXPORTS if not args.only or e[0] in args.only]
    reference = None
    with tempfile.TemporaryDirectory() as scratch:
        files = [("keras float32", made["model"], False, None)]
        for row, name, raw, options in exports:
            path = os.path.join(scratch, name)
            print(f"exporting {row} ...", file=sys.stderr, flush=True)
            files.append((row, path, raw, export(made, path, raw, options, args.samples)))
        for row, path, raw, command in files:
            detector = load_detector(path, **({} if raw else sides))
            detections = [detector.predict(image, score_threshold=COMPARISON_SCORE_THRESHOLD) for image in images]
            reference = detections if reference is None else reference
            pairs = [found_again(expected, actual) for expected, actual in zip(reference, detections)]
            found, total = sum(p[0] for p in pairs), sum(p[1] for p in pairs)
            average_precisions, _ = evaluate(generator, detector, verbose=0)
            measured = {"mAP": mean_average_precision(average_precisions)[1],
                        "AP": {generator.label_to_name(label): ap for label, (ap, _) in average_precisions.items()},
                        "top100_found": found, "top100_total": total, "file_mib": size_mib(path),
                        "detections_above_005_per_image": float(np.mean([len(d["scores"]) for d in detections]))}
            if command:
                measured["export"] = command
            if args.runs:
                predict = lambda detector=detector: detector.predict(images[0], score_threshold=0.05)  # noqa: E731
                measured["predict_s"], measured["predict_runs"] = median_seconds(predict, args.runs)
            result["rows"][row] = measured
            print(f"{row:<20} mAP {measured['mAP']:.4f}  top-100 {found}/{total}  {measured['file_mib']:.0f} MiB"
                  + (f"  {measured['predict_s']:.3f} s" if args.runs else ""), flush=True)
    rows = result["rows"]
    for measured in rows.values():
        measured["mAP_change"] = measured["mAP"] - rows["keras float32"]["mAP"]
        if args.runs:
            measured["time_over_keras_float32"] = measured["predict_s"] / rows["keras float32"]["predict_s"]
            if "onnx float32 raw" in rows:
                measured["time_over_onnx_float32"] = measured["predict_s"] / rows["onnx float32 raw"]["predict_s"]
    write_result(f"int8_{args.model}", result, output=args.output)


if __name__ == "__main__":
    main()
