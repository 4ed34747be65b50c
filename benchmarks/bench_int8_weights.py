"""int8 ONNX weights in 7 bits or 8, int8 or uint8: does this CPU's ONNX Runtime compute what the file says?

ONNX Runtime's uint8 x int8 kernels on x86 CPUs without VNNI add pairs of products into a saturating int16
(VPMADDUBSW); with 8-bit weights the sums can clamp. ``keras_retinanet.export.onnx_int8`` therefore writes its
weights in 7 bits (ONNX Runtime's reduce_range). This benchmark weighs that choice on the machine it runs on.

The model is one of benchmarks/trained_models.py (``demo`` by default). Its float32 raw-input ONNX file is written
by ``retinanet-convert-model --raw-input``, then quantized three ways by
``keras_retinanet.export.onnx_int8.quantize_onnx_int8`` on the same calibration images (those of
``--quantize int8 --representative-samples N``): int8 weights in 7 bits (the export's choice), int8 weights in 8
bits (the export before this choice), uint8 weights in 8 bits (ONNX Runtime's other remedy). Each file is opened by
``load_detector`` twice: as users run it (ONNX Runtime's fused int8 kernels) and as the reference, ONNX Runtime with
its graph optimizations off, which runs every node as its ONNX definition (DequantizeLinear, float Conv,
QuantizeLinear one after another): what the file says, without integer kernels. Per file, on the evaluation images:

  mAP                Pascal VOC mAP@0.5 (as retinanet-evaluate), with the kernels and with the reference
  found              the float32 Keras model's top-100 detections per image found again (same label, IoU >= 0.9;
                     keras_retinanet.inference.fidelity.found_again), with the kernels and with the reference
  kernels_found      the reference's top-100 that the kernels find again: all of them where nothing saturates
  time               median and fastest of --runs ``detector.predict`` calls on the first evaluation image, the
                     files taken in turn in each round (so the load falls alike on all), and the ratios to ONNX
                     float32 and to the 7-bit file

Run: python benchmarks/bench_int8_weights.py [--model demo] [--samples 100] [--runs 30]
Writes benchmarks/results/int8_weights_<model>_<avx2|vnni|...>.json (bench_shared.write_result records the CPU).
"""

import argparse
import contextlib
import os
import sys
import tempfile
import time

from bench_shared import machine, write_result  # first: it reads the load average at the start

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

# (row, quantize_onnx_int8 options)
WEIGHTS = [
    ("int8 weights, 7 bits (the export)", {"reduce_range": True, "weight_type": "int8"}),
    ("int8 weights, 8 bits", {"reduce_range": False, "weight_type": "int8"}),
    ("uint8 weights, 8 bits", {"reduce_range": False, "weight_type": "uint8"}),
]
FLOAT_ROW = "onnx float32 raw"


@contextlib.contextmanager
def reference_sessions():
    """ONNX Runtime sessions opened inside run every node as its ONNX definition (graph optimizations off)."""
    import onnxruntime

    plain = onnxruntime.SessionOptions

    def unoptimized():
        options = plain()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
        return options

    onnxruntime.SessionOptions = unoptimized
    try:
        yield
    finally:
        onnxruntime.SessionOptions = plain


def write_int8_files(made, float_path, samples, folder):
    """The float32 raw-input file quantized each way of WEIGHTS; returns {row: path}."""
    import onnx

    from keras_retinanet.export.onnx_int8 import quantize_onnx_int8
    from keras_retinanet.export.writers import representative_images
    from keras_retinanet.preprocessing.csv_generator import CSVGenerator

    calibration = CSVGenerator(made["train_csv"], made["classes_csv"], shuffle_groups=False, **made["sides"])
    images = representative_images(calibration, samples, raw_input=True)
    float_proto = onnx.load(float_path)
    paths = {}
    for row, options in WEIGHTS:
        proto = quantize_onnx_int8(float_proto, images, folder, **options)
        proto.metadata_props.extend(float_proto.metadata_props)  # the spec: raw input, sides, class names
        paths[row] = os.path.join(
            folder, f"int8_{options['weight_type']}_{'7' if options['reduce_range'] else '8'}.onnx"
        )
        onnx.save(proto, paths[row])
    return paths


def measure(detector, images, generator, reference):
    """mAP and the reference's top-100 found again, over the evaluation images; returns (figures, detections)."""
    from keras_retinanet.evaluation.average_precision import mean_average_precision
    from keras_retinanet.evaluation.voc import evaluate
    from keras_retinanet.inference.fidelity import COMPARISON_SCORE_THRESHOLD, found_again

    detections = [detector.predict(image, score_threshold=COMPARISON_SCORE_THRESHOLD) for image in images]
    pairs = [found_again(expected, actual) for expected, actual in zip(reference, detections)]
    average_precisions, _ = evaluate(generator, detector, verbose=0)
    figures = {
        "mAP": mean_average_precision(average_precisions)[1],
        "found": sum(p[0] for p in pairs),
        "total": sum(p[1] for p in pairs),
    }
    return figures, detections


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["resnet50", "demo"], default="demo")
    parser.add_argument("--samples", type=int, default=100, help="calibration images (--representative-samples)")
    parser.add_argument("--runs", type=int, default=30, help="timed rounds (0: no timing)")
    parser.add_argument("--output", help="write the JSON here (default: results/int8_weights_<model>_<cpu>.json)")
    args = parser.parse_args(argv)

    from bench_int8 import export
    from trained_models import MODELS, describe

    made = MODELS[args.model]()
    from keras_retinanet.bin.console import assume_frozen_weights

    assume_frozen_weights()  # this process only runs models, as retinanet-evaluate and retinanet-predict
    import numpy as np

    from keras_retinanet import load_detector
    from keras_retinanet.inference.fidelity import found_again
    from keras_retinanet.preprocessing.csv_generator import CSVGenerator

    generator = CSVGenerator(made["eval_csv"], made["classes_csv"], shuffle_groups=False, **made["sides"])
    images = [generator.load_image(i) for i in range(generator.size())]
    keras_detector = load_detector(made["model"], **made["sides"])
    reference = [keras_detector.predict(image, score_threshold=0.05) for image in images]
    result = {
        "model": describe(made),
        "evaluation_images": len(images),
        "image_shape": list(images[0].shape),
        "calibration_images": args.samples,
        "runs": args.runs,
        "rows": {},
    }
    with tempfile.TemporaryDirectory() as scratch:
        float_path = os.path.join(scratch, "raw.onnx")
        export(made, float_path, True, [], args.samples)
        paths = {FLOAT_ROW: float_path, **write_int8_files(made, float_path, args.samples, scratch)}
        detectors = {row: load_detector(path) for row, path in paths.items()}
        for row, path in paths.items():
            kernels, kernel_detections = measure(detectors[row], images, generator, reference)
            with reference_sessions():
                unoptimized = load_detector(path)
            graph, graph_detections = measure(unoptimized, images, generator, reference)
            pairs = [found_again(expected, actual) for expected, actual in zip(graph_detections, kernel_detections)]
            result["rows"][row] = {
                "mAP": kernels["mAP"], "reference_mAP": graph["mAP"],
                "top100_found": kernels["found"], "reference_top100_found": graph["found"],
                "top100_total": kernels["total"],
                "kernels_find_reference_top100": sum(p[0] for p in pairs),
                "reference_top100_total": sum(p[1] for p in pairs),
                "file_mib": os.path.getsize(path) / 2**20,
            }  # fmt: skip
            print(f"{row:<36} mAP {kernels['mAP']:.4f} (reference {graph['mAP']:.4f})  top-100 "
                  f"{kernels['found']}/{kernels['total']} (reference {graph['found']})  kernels find the reference's "
                  f"{sum(p[0] for p in pairs)}/{sum(p[1] for p in pairs)}", flush=True)  # fmt: skip
        if args.runs:
            times = {row: [] for row in detectors}
            for detector in detectors.values():
                detector.predict(images[0], score_threshold=0.05)  # warm-up
            for _ in range(args.runs):
                for row, detector in detectors.items():
                    started = time.perf_counter()
                    detector.predict(images[0], score_threshold=0.05)
                    times[row].append(time.perf_counter() - started)
            for row, runs in times.items():
                measured = result["rows"][row]
                measured["predict_s"], measured["fastest_s"] = float(np.median(runs)), float(np.min(runs))
                measured["predict_runs"] = [round(t, 4) for t in runs]
                for name, other in (("onnx_float32", FLOAT_ROW), ("7_bits", WEIGHTS[0][0])):
                    measured[f"time_over_{name}"] = measured["predict_s"] / float(np.median(times[other]))
    features = machine()["features"]
    cpu = next((name for name in ("VNNI", "AVX-512", "AVX2") if features.get(name)), "x86").lower().replace("-", "")
    write_result(f"int8_weights_{args.model}_{cpu}", result, output=args.output)


if __name__ == "__main__":
    main()
