"""Does a 16-bit path keep the detections? Issue 18's bar, measured per precision and per float32 part.

For each variant (float32 reference; mixed bfloat16 with nothing, or one part, kept in float32; see
``keras_retinanet.models.precision.FLOAT32_PARTS``) it reports how many of the float32 top-100 detections per
image are found again (same label, IoU >= 0.9) and, on a dataset, the mAP. bfloat16 runs on any CPU (TensorFlow
emulates it without AVX512_BF16/AMX: slow, but the same numbers).

  demo     a trained demo model (retinanet-train demo) on the demo's validation images (--demo-model, --demo-csv;
           default: benchmarks/trained_models.py's demo model, made and cached on first use)
  trained  benchmarks/trained_models.py's ResNet50, trained from scratch (600 steps) on 256 px synthetic shapes, at
           800x1067 on 12 images of 10-20 shapes of the trained sizes (made and cached on first use)
  model    any trained model file (--model) on a CSV dataset (--csv, classes.csv next to it) at the image sides
           --min-side/--max-side (default 800/1333): e.g. a ResNet50 trained on small synthetic images, measured on
           800x1067 images whose objects have the sizes it was trained on
  resnet50 a ResNet50 RetinaNet at --side px (80 classes, 256-wide heads) with random weights made realistic: each
           BatchNorm's statistics calibrated on photo-like images in order, so every layer sees unit-scale
           activations, and the heads scaled so the logits spread ~1.5 around -6 (a few hundred class scores pass
           0.05, as for a trained model on a busy image)

Each part writes benchmarks/results/fidelity_<part>.json (bench_shared.write_result): fidelity_demo,
fidelity_trained_resnet50, fidelity_model, fidelity_resnet50_proxy (with --side other than 800:
fidelity_resnet50_proxy_<side>).

Run: python benchmarks/bench_fidelity.py --only demo trained resnet50 [--images 4] [--side 800]
     python benchmarks/bench_fidelity.py --demo-model runs/mobilenet128_0.5_demo/mobilenet128_0.5_demo_best.h5 \\
         --demo-csv ~/.cache/keras_retinanet/demo/val.csv --only demo
     python benchmarks/bench_fidelity.py --only model --model resnet50_best.h5 --csv big/val.csv [--quick]
"""

import argparse
import os
import sys
import time

from bench_shared import benchmark_image, write_result  # first: it reads the load average at the start

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

VARIANTS = [("float32", None), ("mixed_bfloat16", ()), ("mixed_bfloat16", ("batchnorm",)),
            ("mixed_bfloat16", ("backbone", "batchnorm")), ("mixed_bfloat16", ("pyramid",)),
            ("mixed_bfloat16", ("heads",)), ("mixed_bfloat16", ("pyramid", "heads"))]
QUICK_VARIANTS = VARIANTS[:4] + VARIANTS[-1:]


def variant_name(precision, parts):
    return precision if not parts else f"{precision}, float32 {'+'.join(parts)}"


def variants_of(detector, variants=VARIANTS):
    """(name, Detector) of every variant of a float32 Detector, sharing its spec."""
    from keras_retinanet.inference import Detector
    from keras_retinanet.models.precision import with_precision

    for precision, parts in variants:
        model = detector.model if parts is None else with_precision(detector.model, precision, parts)
        yield variant_name(precision, parts), Detector(model, detector.spec)


def calibrated_resnet50(side, num_classes=80, seed=0):
    """A ResNet50 RetinaNet whose BatchNorm statistics and head scales make its activations realistic."""
    import keras
    import numpy as np

    from keras_retinanet import models
    from keras_retinanet.layers import BatchNormalization

    keras.utils.set_random_seed(seed)
    backbone = models.backbone("resnet50")
    model = backbone.retinanet(num_classes=num_classes)
    images = np.stack([backbone.preprocess_image(benchmark_image((side // 2, side // 2), seed=s)) for s in (7, 8)])
    rng = np.random.default_rng(seed)
    for layer in model.layers:  # topological order: each layer is calibrated on the calibrated layers before it
        if isinstance(layer, BatchNormalization):
            inputs = keras.Model(model.input, layer.input).predict_on_batch(images)
            mean, variance = inputs.mean(axis=(0, 1, 2)), inputs.var(axis=(0, 1, 2)) + 1e-3
            gamma = rng.uniform(0.5, 1.5, mean.shape)  # as trained BatchNorms have: scales and shifts vary by channel
            beta = rng.normal(0.0, 0.3, mean.shape)
            layer.set_weights([w.astype(np.float32) for w in (gamma, beta, mean, variance)])
    for name in ("classification_submodel", "regression_submodel"):
        for layer in model.get_layer(name).layers:
            if isinstance(layer, keras.layers.Conv2D):
                kernel, bias = layer.get_weights()
                kernel = rng.normal(0.0, np.sqrt(2.0 / np.prod(kernel.shape[:3])), kernel.shape)
                if layer.name == "pyramid_classification":
                    bias = np.full_like(bias, -6.0)
                layer.set_weights([kernel.astype(np.float32), bias])
    for _ in range(3):  # saturated sigmoids understate the spread: scale again until it holds
        regression, classification = model.predict_on_batch(images)
        classification = np.clip(classification, 1e-6, 1 - 1e-6)
        logits = np.log(classification / (1.0 - classification)) + 6.0
        for name, output, spread in (("classification_submodel", logits, 1.5), ("regression_submodel", regression, 0.5)):
            factor = (spread / output.std()) ** (1.0 / 5.0)  # ReLU commutes with positive scales: 5 convs, 1 factor
            for layer in model.get_layer(name).layers:
                if isinstance(layer, keras.layers.Conv2D):
                    kernel, bias = layer.get_weights()
                    layer.set_weights([kernel * factor, bias])
    return model


def measure(detectors, images, generator=None):
    """Rows (variant, found, total, fraction, mAP or None, seconds per image) of every variant against the first.

    (Seconds per image are indicative only: the first variant also pays for tracing.)
    """
    from keras_retinanet.evaluation.average_precision import mean_average_precision
    from keras_retinanet.evaluation.voc import evaluate
    from keras_retinanet.inference.fidelity import COMPARISON_SCORE_THRESHOLD, found_again

    rows, expected = [], None
    for name, detector in detectors:
        start = time.perf_counter()
        results = [detector.predict(image, score_threshold=COMPARISON_SCORE_THRESHOLD) for image in images]
        seconds = (time.perf_counter() - start) / max(len(images), 1)
        expected = results if expected is None else expected
        pairs = [found_again(reference, actual) for reference, actual in zip(expected, results)]
        found, total = sum(p[0] for p in pairs), sum(p[1] for p in pairs)
        mean_ap = None
        if generator is not None:
            average_precisions, _ = evaluate(generator, detector, verbose=0)
            mean_ap = mean_average_precision(average_precisions)[1]
        rows.append((name, found, total, found / max(total, 1), mean_ap, seconds))
        print(f"  {name:<48} {found:>5}/{total:<5} {found / max(total, 1):7.1%}  "
              f"mAP {'-' if mean_ap is None else f'{mean_ap:.4f}'}  ({seconds:.1f} s/image)", flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo-model", help="a trained demo model file")
    parser.add_argument("--demo-csv", help="the demo's val.csv (classes.csv next to it)")
    parser.add_argument("--images", type=int, default=4, help="images compared per model")
    parser.add_argument("--side", type=int, default=800, help="the ResNet50 model's image_min_side")
    parser.add_argument("--quick", action="store_true", help="ResNet50: float32, bfloat16, and 3 of its variants")
    parser.add_argument("--model", help="a trained model file, measured on --csv")
    parser.add_argument("--csv", help="the CSV dataset the --model is measured on (classes.csv next to it)")
    parser.add_argument("--min-side", type=int, default=800, help="--model: image_min_side (default: %(default)s)")
    parser.add_argument("--max-side", type=int, default=1333, help="--model: image_max_side (default: %(default)s)")
    parts = ["demo", "trained", "resnet50", "model"]
    parser.add_argument("--only", nargs="*", choices=parts, default=parts)
    args = parser.parse_args(argv)

    import numpy as np

    from keras_retinanet import load_detector
    from keras_retinanet.config.spec import DetectorSpec
    from keras_retinanet.inference import Detector
    from keras_retinanet.models import convert_model

    from trained_models import describe, sha256, trained_demo, trained_resnet50

    def record(name, rows, **about):
        keys = ("variant", "found", "total", "found_fraction", "mAP", "seconds_per_image")
        write_result(f"fidelity_{name}", dict(about, rows=[dict(zip(keys, row)) for row in rows]))

    if "demo" in args.only:
        from keras_retinanet.preprocessing.csv_generator import CSVGenerator

        if args.demo_model:
            demo_model, demo_csv, about = args.demo_model, args.demo_csv, {"model_sha256": sha256(args.demo_model)}
        else:
            made = trained_demo()
            demo_model, demo_csv, about = made["model"], made["eval_csv"], describe(made)
        detector = load_detector(demo_model, backbone="mobilenet128_0.5", image_min_side=160, image_max_side=160)
        classes = os.path.join(os.path.dirname(demo_csv), "classes.csv")
        generator = CSVGenerator(demo_csv, classes, image_min_side=160, image_max_side=160, shuffle_groups=False)
        images = [generator.load_image(i) for i in range(args.images)]
        print(f"demo: {demo_model}, {args.images} images for the top-100, {generator.size()} for the mAP")
        rows = measure(list(variants_of(detector)), images, generator)
        record("demo", rows, model=about, top100_images=len(images), map_images=generator.size())
    for part in ("trained", "model"):
        if part not in args.only or (part == "model" and not args.model):
            continue
        from keras_retinanet.preprocessing.csv_generator import CSVGenerator

        if part == "trained":
            made = trained_resnet50()
            model, csv, about = made["model"], made["eval_csv"], describe(made)
            sides = made["sides"]
        else:
            model, csv, about = args.model, args.csv, {"model_sha256": sha256(args.model)}
            sides = {"image_min_side": args.min_side, "image_max_side": args.max_side}
        detector = load_detector(model, **sides)
        classes = os.path.join(os.path.dirname(csv), "classes.csv")
        generator = CSVGenerator(csv, classes, shuffle_groups=False, **sides)
        images = [generator.load_image(i) for i in range(min(args.images, generator.size()))]
        print(f"{part}: {model} ({detector.spec.backbone}) at {sides['image_min_side']}/{sides['image_max_side']} px, "
              f"{len(images)} images for the top-100, {generator.size()} for the mAP")
        rows = measure(list(variants_of(detector, QUICK_VARIANTS if args.quick else VARIANTS)), images, generator)
        name = "trained_resnet50" if part == "trained" else "model"
        record(name, rows, model=about, sides=sides, top100_images=len(images), map_images=generator.size())
    if "resnet50" in args.only:
        side = args.side
        model = calibrated_resnet50(side)
        spec = DetectorSpec(backbone="resnet50", preprocessing="caffe", class_names=tuple(str(i) for i in range(80)),
                            image_min_side=side, image_max_side=int(side * 1333 / 800))
        detector = Detector(convert_model(model), spec)
        images = [benchmark_image((side, side * 4 // 3), seed=s).astype(np.uint8) for s in range(args.images)]
        count = np.mean([len(detector.predict(image, score_threshold=0.05)["scores"]) for image in images[:1]])
        print(f"resnet50 at {side} px: {args.images} images, {count:.0f} detections above 0.05 on the first")
        rows = measure(list(variants_of(detector, QUICK_VARIANTS if args.quick else VARIANTS)), images)
        record("resnet50_proxy" + ("" if side == 800 else f"_{side}"), rows, side=side, images=len(images),
               detections_above_005_first_image=count)


if __name__ == "__main__":
    main()
