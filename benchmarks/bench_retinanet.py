"""RetinaNet speed on this machine: inference, post-processing, training step, input pipeline, and the FLOP limit.

Every figure is measured in its own subprocess (so its peak resident memory is its own), in one run, so ratios
between them hold even on a noisy machine:

  matmul      the matrix-multiply rate this machine reaches (float32 and bfloat16), which sets the FLOP limit
  inference   ResNet50, 80 classes, one 800x1067 BGR image: end to end (preprocess -> detections), the network
              alone, and the post-processing (anchors, box decoding, filtering, NMS) alone; median of --runs after
              warm-up. 'saturated' scales the final classification kernel until over 500,000 class-anchor scores
              pass 0.05 (the post-processing worst case). Run in float32 and, with --bfloat16, mixed bfloat16.
  train       one training step, ResNet50, batch 2 at 512x512 with boxes (Adam, as retinanet-train compiles it);
              with --bfloat16 also under the mixed bfloat16 policy
  runtimes    each exported runtime end to end through load_detector on the same image and score setting: the Keras
              inference file, raw-input SavedModel, TFLite (XNNPACK) and ONNX Runtime, and an int8 TFLite; with the
              share of the Keras model's top-100 detections each finds again (benchmarks/bench_runtimes.py)
  frozen      an A/B of TF_ONEDNN_ASSUME_FROZEN_WEIGHTS (what retinanet-predict and retinanet-evaluate set): the
              float32 plain inference case with the variable 0 and 1, in alternating processes (off, on, off, on),
              so that both see the same machine; the speed-up is the median 'off' time over the median 'on' time
  pipeline    input pipeline images per second on one core, 512 px images, 10 boxes, augmentation on
              (benchmarks/bench_input_pipeline.py)
  reference   optional: the same inference and training figures for fizyr's keras-retinanet 1.0.0, run by the
              Python interpreter given with --reference-python (a separate environment with keras-retinanet 1.0.0
              and its TensorFlow installed; see benchmarks/reference_keras_retinanet.py)
  other RetinaNets  optional: end-to-end and network-alone inference on the same image, with the same plain score
              setting, for keras-hub's RetinaNet (--keras-hub-python, benchmarks/reference_keras_hub.py) and
              torchvision's (--torchvision-python, benchmarks/reference_torchvision.py), each run by the Python of
              its own environment; the table says how many times faster or slower ours is end to end

Writes a table to stdout and JSON to benchmarks/results/retinanet.json (--name: another name), with the command,
date, version, load average and the machine's CPU features (AVX2, AVX-512, AVX512_BF16, AMX, VNNI): 16-bit and
int8 speed depend on them (bench_shared.write_result).

Run: python benchmarks/bench_retinanet.py [--runs 5] [--bfloat16] [--reference-python /path/to/python]
         [--keras-hub-python /path/to/python] [--torchvision-python /path/to/python]
     python benchmarks/bench_retinanet.py --small --runs 1 --only train runtimes --bfloat16   # smoke test, minutes
                                                                        (written to results/retinanet_small.json)
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

# first: it reads the load average at the start
from bench_shared import benchmark_image, machine, median_seconds, plain_setting, saturated_setting, write_result

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = os.path.dirname(os.path.abspath(__file__))
IMAGE_SHAPE = (800, 1067)
TRAIN_SIDE = 512
SMALL_TRAIN_SIDE = 128  # --small: a smoke test of the code, not a measurement
# Other RetinaNets measured from their own environments: results key -> (script in benchmarks/, name in the table).
OTHER_RETINANETS = {
    "keras_hub": ("reference_keras_hub.py", "keras-hub"),
    "torchvision": ("reference_torchvision.py", "torchvision"),
}

FROZEN_WEIGHTS_VARIABLE = "TF_ONEDNN_ASSUME_FROZEN_WEIGHTS"
FROZEN_ROUNDS = 2  # the frozen-weights A/B: processes off, on, off, on


def _peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


# ------------------------------------------------------------------------------------------------------------------
# cases (each runs in its own process)


def case_matmul(args):
    import tensorflow as tf

    result = {}
    size = 2048
    for dtype in (tf.float32, tf.bfloat16):
        a = tf.cast(tf.random.normal((size, size), seed=1), dtype)
        b = tf.cast(tf.random.normal((size, size), seed=2), dtype)
        matmul = tf.function(lambda a, b: tf.reduce_sum(tf.cast(tf.matmul(a, b), tf.float32)))
        seconds, _ = median_seconds(lambda matmul=matmul, a=a, b=b: matmul(a, b).numpy(), runs=max(args.runs, 5))
        result[f"{dtype.name}_gflops"] = 2 * size**3 / seconds / 1e9
    result["peak_rss_mib"] = _peak_rss_mib()
    return result


def model_flops(model, input_shape):
    """Floating-point operations of one call of ``model`` on a (1, H, W, 3) input (a multiply-add counts 2)."""
    import tensorflow as tf
    from tensorflow.python.profiler import model_analyzer, option_builder

    concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec((1,) + tuple(input_shape) + (3,), tf.float32)
    )
    options = option_builder.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return int(model_analyzer.profile(concrete.graph, options=options).total_float_ops)


def case_inference(args):
    from keras_retinanet.bin.console import assume_frozen_weights

    assume_frozen_weights()  # as retinanet-predict and retinanet-evaluate run (before TensorFlow loads)
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_retinanet import models
    from keras_retinanet.data.input_transform import resize_image

    keras.utils.set_random_seed(0)
    backbone = models.backbone("resnet50")
    training_model = backbone.retinanet(num_classes=80)
    image = benchmark_image(IMAGE_SHAPE)
    network_input = np.expand_dims(resize_image(backbone.preprocess_image(image))[0], 0)
    result = {"precision": args.precision, "scores": args.scores, "image": list(IMAGE_SHAPE)}
    layer = training_model.get_layer("classification_submodel").get_layer("pyramid_classification")

    def predict_scores(kernel, bias):
        layer.set_weights([kernel, bias])
        # A new predict function: with frozen weights assumed, the old one would keep the weights it first saw.
        training_model.make_predict_function(force=True)
        return np.asarray(training_model.predict_on_batch(network_input)[1])

    setting = saturated_setting if args.scores == "saturated" else plain_setting
    kernel, bias, result["scores_above_0.05"] = setting(*layer.get_weights(), predict_scores)
    layer.set_weights([kernel, bias])
    training_model.make_predict_function(force=True)
    if args.precision == "bfloat16":
        from keras_retinanet.models.precision import with_precision

        training_model = with_precision(training_model, "mixed_bfloat16")
    inference_model = models.convert_model(training_model)

    def end_to_end():
        x, scale = resize_image(backbone.preprocess_image(image))
        boxes, scores, labels = inference_model.predict_on_batch(np.expand_dims(x, 0))[:3]
        return boxes / scale, scores, labels

    result["end_to_end_s"], result["end_to_end_runs"] = median_seconds(end_to_end, args.runs)
    result["network_s"], _ = median_seconds(lambda: training_model.predict_on_batch(network_input), args.runs)

    postprocess = postprocess_function(inference_model, training_model)
    pyramid = keras.Model(training_model.inputs, [training_model.get_layer(f"P{level}").output for level in range(3, 8)])
    features = [tf.constant(f) for f in pyramid.predict_on_batch(network_input)]
    regression, classification = (tf.constant(t) for t in training_model.predict_on_batch(network_input)[:2])
    image_tensor = tf.constant(network_input)
    result["postprocess_s"], _ = median_seconds(
        lambda: [t.numpy() for t in postprocess(image_tensor, features, regression, classification)], args.runs
    )
    boxes, scores, labels = end_to_end()
    result["detections"] = int(np.sum(scores[0] > 0))
    if args.precision == "float32":
        result["flops"] = model_flops(training_model, network_input.shape[1:3])
    result["peak_rss_mib"] = _peak_rss_mib()
    return result


def postprocess_function(inference_model, training_model):
    """The inference model's anchors, box decoding, clipping and filtering as one graph function of the raw outputs."""
    import tensorflow as tf

    anchor_layers = [layer for layer in inference_model.layers if layer.name.startswith("anchors_")]
    regress = inference_model.get_layer("boxes")
    clip = inference_model.get_layer("clipped_boxes")
    filter_detections = inference_model.get_layer("filtered_detections")

    @tf.function(reduce_retracing=True)
    def postprocess(image, features, regression, classification):
        level_anchors = [layer(feature) for layer, feature in zip(anchor_layers, features)]
        boxes = clip([image, regress([tf.concat(level_anchors, axis=1), regression])])
        return filter_detections([boxes, classification], level_anchors=level_anchors)[:3]

    return postprocess


def case_train(args):
    import keras
    import numpy as np

    from keras_retinanet import losses, models
    from keras_retinanet.anchors import anchor_targets_bbox, anchors_for_shape

    keras.utils.set_random_seed(0)
    side = SMALL_TRAIN_SIDE if args.small else TRAIN_SIDE
    if args.precision == "bfloat16":
        from keras_retinanet.models.precision import set_precision

        set_precision("mixed_bfloat16")  # as retinanet-train --mixed-precision does on a CPU
    backbone = models.backbone("resnet50")
    model = backbone.retinanet(num_classes=80)
    model.compile(
        loss={"regression": losses.smooth_l1(), "classification": losses.focal()},
        optimizer=keras.optimizers.Adam(learning_rate=1e-5, clipnorm=0.001),
        jit_compile=False,
    )
    images, annotations = [], []
    for seed in range(2):  # the same batch as reference_keras_retinanet.py
        rng = np.random.RandomState(seed + 10)
        xy = rng.uniform(0, 400, size=(10, 2)) * side / TRAIN_SIDE
        boxes = np.concatenate([xy, xy + rng.uniform(30, 110, size=(10, 2)) * side / TRAIN_SIDE], axis=1)
        images.append(backbone.preprocess_image(benchmark_image((side, side), seed=seed)))
        annotations.append({"bboxes": boxes, "labels": np.arange(10) % 80})
    inputs = np.stack(images).astype(np.float32)
    anchors = anchors_for_shape(inputs.shape[1:])
    regression, labels = anchor_targets_bbox(anchors, inputs, annotations, num_classes=80)
    targets = {"regression": regression.astype(np.float32), "classification": labels.astype(np.float32)}
    seconds, runs = median_seconds(lambda: model.train_on_batch(inputs, targets), args.runs)
    return {"batch": 2, "side": side, "precision": args.precision, "step_s": seconds, "step_runs": runs,
            "peak_rss_mib": _peak_rss_mib()}


def case_pipeline(args):
    output = os.path.join(args.scratch, "pipeline.json")
    command = [sys.executable, os.path.join(HERE, "bench_input_pipeline.py"), "--image-size", "512",
               "--image-min-side", "512", "--image-max-side", "512", "--output", output]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(output) as handle:
        measured = json.load(handle)["results"]  # bench_shared.write_result's record
    return {"images_per_s": measured["tf_data_images_per_s"], "stage_ms_per_image": measured.get("stage_ms_per_image")}


def case_runtimes(args):
    from bench_runtimes import case_runtimes as run

    return dict(run(args), peak_rss_mib=_peak_rss_mib())


CASES = {"matmul": case_matmul, "inference": case_inference, "train": case_train, "pipeline": case_pipeline,
         "runtimes": case_runtimes}
PLANS = sorted(CASES) + ["frozen"]  # 'frozen' runs the inference case with and without frozen weights


# ------------------------------------------------------------------------------------------------------------------
# driver


def _run_case(name, extra, timeout, env=None):
    command = [sys.executable, os.path.abspath(__file__), "--case", name] + extra
    started = time.time()
    environment = dict(os.environ, **env) if env else None
    completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment)
    if completed.returncode != 0:
        return {"error": (completed.stderr or completed.stdout).strip().splitlines()[-1:]}
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    result["wall_s"] = round(time.time() - started, 1)
    return result


def _reference(python, runs, timeout, script="reference_keras_retinanet.py"):
    script = os.path.join(HERE, script)
    # cwd and sys.path[0] are benchmarks/, and PYTHONPATH is dropped (it may name this checkout), so the reference
    # environment cannot import this project's package instead of keras-retinanet 1.0.0.
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    completed = subprocess.run([python, script, "--runs", str(runs)], capture_output=True, text=True, timeout=timeout,
                               cwd=HERE, env=environment)
    if completed.returncode != 0:
        return {"error": (completed.stderr or completed.stdout).strip().splitlines()[-3:]}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _table(results):
    rows = []
    limit = results.get("flop_limit_s")
    for key, value in results["cases"].items():
        if "error" in value:
            rows.append((key, "error: " + " ".join(value["error"]), "", ""))
            continue
        memory = f"{value.get('peak_rss_mib', 0):.0f}"
        if key.startswith("frozen"):
            rows.append((key + " end to end", f"{value['end_to_end_s']:.3f} s", memory, ""))
            rows.append((key + " network", f"{value['network_s']:.3f} s", "", ""))
            continue
        if key.startswith("inference"):
            ratio = f"{value['network_s'] / limit:.2f}x limit" if limit and "float32" in key else ""
            rows.append((key + " end to end", f"{value['end_to_end_s']:.3f} s", memory, ""))
            rows.append((key + " network", f"{value['network_s']:.3f} s", "", ratio))
            share = value["postprocess_s"] / value["end_to_end_s"]
            rows.append((key + " post-processing", f"{value['postprocess_s']:.3f} s", "", f"{share:.1%} of end to end"))
        elif key.startswith("train"):
            name = f"train step (batch 2, {value['side']} px, {value.get('precision', 'float32')})"
            ratio = ""
            if key != "train" and "step_s" in results["cases"].get("train", {}):
                ratio = f"{results['cases']['train']['step_s'] / value['step_s']:.2f}x float32's speed"
            rows.append((name, f"{value['step_s']:.3f} s", memory, ratio))
        elif key == "runtimes":
            from bench_runtimes import rows as runtime_rows

            rows += runtime_rows(value, results.get("reference", {}).get("plain_end_to_end_s"))
        elif key == "pipeline":
            rows.append(("input pipeline, one core", f"{value['images_per_s']:.1f} images/s", "", ""))
        elif key == "matmul":
            rows.append(("matmul float32", f"{value['float32_gflops']:.1f} GFLOP/s", memory, ""))
            rows.append(("matmul bfloat16", f"{value['bfloat16_gflops']:.1f} GFLOP/s", "", ""))
    reference = results.get("reference", {})
    for key, value in reference.items():
        if key.endswith("_s"):
            rows.append((f"keras-retinanet 1.0.0 {key[:-2].replace('_', ' ')}", f"{value:.3f} s", "", ""))
    for key, value in results.get("speedups", {}).items():
        rows.append((f"speed-up over keras-retinanet: {key}", f"{value:.2f}x", "", ""))
    for key, value in results.get("frozen_weights_speedup", {}).items():
        rows.append((f"{FROZEN_WEIGHTS_VARIABLE}=1 over =0: {key}", f"{value:.2f}x", "", "median 'off' / median 'on'"))
    rows += _other_rows(results)
    width = max(len(r[0]) for r in rows)
    lines = [f"{'measure':<{width}}  {'value':>22}  {'peak MiB':>8}  note", "-" * (width + 50)]
    lines += [f"{a:<{width}}  {b:>22}  {c:>8}  {d}" for a, b, c, d in rows]
    return "\n".join(lines)


def _faster_or_slower(ratio):
    """'ours is N x faster' for a ratio (their time / ours) of at least 1, 'ours is N x slower' otherwise."""
    return f"ours is {ratio:.2f}x faster" if ratio >= 1 else f"ours is {1 / ratio:.2f}x slower"


def _other_rows(results):
    """Table rows of the other RetinaNets: (measure, value, peak MiB, note)."""
    rows = []
    for key, (_, label) in OTHER_RETINANETS.items():
        if key not in results:
            continue
        value = results[key]
        if "error" in value:
            rows.append((label, "error: " + " ".join(value["error"]), "", ""))
            continue
        name = f"{label} {value.get(key, '')} ({'x'.join(str(side) for side in value['network_input'])})"
        ratios = results.get("comparisons", {}).get(key, {})
        rows.append((name + " end to end", f"{value['end_to_end_s']:.3f} s", f"{value.get('peak_rss_mib', 0):.0f}",
                     _faster_or_slower(ratios["end to end, plain"]) if "end to end, plain" in ratios else ""))
        if "predict_s" in value:
            rows.append((name + " detector.predict", f"{value['predict_s']:.3f} s", "", ""))
        rows.append((name + " network", f"{value['network_s']:.3f} s", "",
                     _faster_or_slower(ratios["network"]) if "network" in ratios else ""))
    return rows


def _comparisons(results):
    """Their time / ours for each other RetinaNet measured: {key: {"end to end, plain": r, "network": r}}."""
    ours = results["cases"].get("inference float32 plain", {})
    pairs = {"end to end, plain": "end_to_end_s", "network": "network_s"}
    return {
        key: {name: results[key][field] / ours[field] for name, field in pairs.items()
              if field in results[key] and field in ours}
        for key in OTHER_RETINANETS
        if key in results and "error" not in results[key]
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per figure (median reported)")
    parser.add_argument("--bfloat16", action="store_true", help="also run inference and training in mixed bfloat16")
    parser.add_argument("--small", action="store_true", help="small sizes (train, runtimes): a quick smoke test")
    parser.add_argument("--only", nargs="*", choices=PLANS, help="run only these cases")
    parser.add_argument("--reference-python", help="Python with keras-retinanet 1.0.0 installed, for the comparison")
    parser.add_argument("--keras-hub-python", help="Python with keras-hub installed, for the comparison")
    parser.add_argument("--torchvision-python", help="Python with torch and torchvision installed, for the comparison")
    parser.add_argument("--name", help="results/<name>.json (default: retinanet, retinanet_small with --small)")
    parser.add_argument("--output", help="write the JSON here instead")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per case")
    parser.add_argument("--case", choices=sorted(CASES), help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="float32", help=argparse.SUPPRESS)
    parser.add_argument("--scores", default="plain", help=argparse.SUPPRESS)
    parser.add_argument("--scratch", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.case:
        sys.path[:0] = [os.path.dirname(HERE), HERE]
        print(json.dumps(CASES[args.case](args)))
        return

    import tempfile

    selected = args.only or PLANS
    plan = []
    if "matmul" in selected:
        plan.append(("matmul", "matmul", []))
    if "inference" in selected:
        precisions = ["float32"] + (["bfloat16"] if args.bfloat16 else [])
        for precision in precisions:
            for scores in ("plain", "saturated"):
                plan.append((f"inference {precision} {scores}", "inference",
                             ["--precision", precision, "--scores", scores]))
    if "frozen" in selected:
        for round_ in range(1, FROZEN_ROUNDS + 1):
            for state in ("0", "1"):
                plan.append((f"frozen {state} {round_}", "inference", ["--precision", "float32", "--scores", "plain"],
                             {FROZEN_WEIGHTS_VARIABLE: state}))
    small = ["--small"] if args.small else []
    if "train" in selected:
        plan.append(("train", "train", small))
        if args.bfloat16:
            plan.append(("train bfloat16", "train", small + ["--precision", "bfloat16"]))
    if "runtimes" in selected:
        plan.append(("runtimes", "runtimes", small))
    plan = [step if len(step) == 4 else step + (None,) for step in plan]
    results = {"runs": args.runs, "small": args.small, "cases": {}}
    with tempfile.TemporaryDirectory() as scratch:
        if "pipeline" in selected:
            plan.append(("pipeline", "pipeline", ["--scratch", scratch], None))
        for key, case, extra, env in plan:
            print(f"running {key} ...", file=sys.stderr, flush=True)
            results["cases"][key] = _run_case(case, extra + ["--runs", str(args.runs)], args.timeout, env)
    if args.reference_python:
        print("running keras-retinanet 1.0.0 ...", file=sys.stderr, flush=True)
        results["reference"] = _reference(args.reference_python, args.runs, args.timeout)
    for key, python in (("keras_hub", args.keras_hub_python), ("torchvision", args.torchvision_python)):
        if python:
            script, label = OTHER_RETINANETS[key]
            print(f"running {label} ...", file=sys.stderr, flush=True)
            results[key] = _reference(python, args.runs, args.timeout, script=script)

    matmul = results["cases"].get("matmul", {})
    fp32 = results["cases"].get("inference float32 plain", {})
    if "float32_gflops" in matmul and "flops" in fp32:
        results["flop_limit_s"] = fp32["flops"] / (matmul["float32_gflops"] * 1e9)
        results["network_over_limit"] = fp32["network_s"] / results["flop_limit_s"]
    reference = results.get("reference", {})
    pairs = {
        "end to end, plain": ("inference float32 plain", "end_to_end_s", "plain_end_to_end_s"),
        "end to end, saturated": ("inference float32 saturated", "end_to_end_s", "saturated_end_to_end_s"),
        "network": ("inference float32 plain", "network_s", "network_s"),
        "train step": ("train", "step_s", "train_step_s"),
    }
    results["speedups"] = {
        name: reference[theirs] / results["cases"][case][ours]
        for name, (case, ours, theirs) in pairs.items()
        if theirs in reference and ours in results["cases"].get(case, {})
    }
    results["comparisons"] = _comparisons(results)
    frozen = {state: [value for key, value in results["cases"].items()
                      if key.startswith(f"frozen {state} ") and "error" not in value] for state in ("0", "1")}
    if frozen["0"] and frozen["1"]:
        import statistics

        results["frozen_weights_speedup"] = {
            part: statistics.median(v[field] for v in frozen["0"]) / statistics.median(v[field] for v in frozen["1"])
            for part, field in (("end to end", "end_to_end_s"), ("network", "network_s"))
        }
    runtimes = results["cases"].get("runtimes", {}).get("rows", {})
    if "plain_end_to_end_s" in reference:
        results["runtimes_over_keras_retinanet"] = {
            row: measured["end_to_end_s"] / reference["plain_end_to_end_s"]
            for row, measured in runtimes.items() if "end_to_end_s" in measured
        }  # fmt: skip

    name = args.name or ("retinanet_small" if args.small else "retinanet")
    path = write_result(name, results, output=args.output)
    print(json.dumps(machine()))
    if "flop_limit_s" in results:
        print(f"network FLOPs {fp32['flops'] / 1e9:.1f} G; FLOP limit {results['flop_limit_s']:.3f} s at the float32 "
              f"matmul rate; network {results['network_over_limit']:.2f}x the limit")
    print(_table(results))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
