"""The 'runtimes' case of bench_retinanet.py: each exported runtime end to end, as load_detector runs it.

The same ResNet50 RetinaNet (80 classes, the plain score setting of bench_shared: ~2,000 class scores above 0.05)
is written as a Keras inference file and exported with ``--raw-input`` to a SavedModel, a TFLite and an ONNX file,
as an int8 TFLite (preprocessed input: TFLite's int8 does not take raw input yet) and as an int8 ONNX (ONNX
Runtime's static quantization, raw input), both calibrated on 4 other images of the same kind (benchmark_image with
seeds 1-4), never on the timed one (seed 0).
Each is opened with ``load_detector`` (TFLite with XNNPACK, TFLite and ONNX Runtime with one thread per core) and
timed on the same uint8 image, ``predict(image, score_threshold=0.05)``: reading nothing, preparing the image,
the network, decoding, NMS. Each row also says how many of the Keras model's top-100 detections it finds again
(same label, IoU >= 0.9).

``--small`` runs it at 256 px with 64-wide heads: a smoke test of minutes, not a measurement.
"""

import os
import tempfile

from bench_shared import benchmark_image, median_seconds, plain_setting  # first: it reads the load average at the start

FULL = {"shape": (800, 1067), "heads": 256}
SMALL = {"shape": (256, 341), "heads": 64}
EXPORTS = [  # (row, file name, convert options)
    ("savedmodel raw", "raw_savedmodel", {"raw_input": True}),
    ("tflite raw", "raw.tflite", {"raw_input": True}),
    ("onnx raw", "raw.onnx", {"raw_input": True}),
    ("tflite int8", "int8.tflite", {"quantize": "int8"}),
    ("onnx int8 raw", "raw_int8.onnx", {"raw_input": True, "quantize": "int8"}),
]


def _model(size):
    """The ResNet50 inference model with the plain score setting and a spec, and the benchmark image (uint8)."""
    from keras_retinanet.bin.console import assume_frozen_weights

    assume_frozen_weights()  # as retinanet-predict and retinanet-evaluate run (before TensorFlow loads)
    import keras
    import numpy as np

    from keras_retinanet import models
    from keras_retinanet.config.spec import DetectorSpec
    from keras_retinanet.data.input_transform import resize_image

    keras.utils.set_random_seed(0)
    backbone = models.backbone("resnet50")
    heads = {f"{part}_feature_size": size["heads"] for part in ("pyramid", "classification", "regression")}
    training_model = backbone.retinanet(num_classes=80, **heads)
    side = size["shape"][0]
    training_model.spec = DetectorSpec(
        backbone="resnet50", preprocessing="caffe", class_names=tuple(str(i) for i in range(80)),
        image_min_side=side, image_max_side=int(round(side * 1333 / 800)), **heads,
    )  # fmt: skip
    image = benchmark_image(size["shape"]).astype(np.uint8)
    network_input = np.expand_dims(resize_image(backbone.preprocess_image(image), side, side * 1333 // 800)[0], 0)
    # Random box deltas are huge (boxes clipped flat against the edges): scaled to a trained model's spread, 0.5.
    regression = training_model.get_layer("regression_submodel").get_layer("pyramid_regression")
    deltas = np.asarray(training_model.predict_on_batch(network_input)[0])
    kernel, bias = regression.get_weights()
    regression.set_weights([kernel * (0.5 / max(float(deltas.std()), 1e-12)), bias])
    layer = training_model.get_layer("classification_submodel").get_layer("pyramid_classification")

    def predict_scores(kernel, bias):
        layer.set_weights([kernel, bias])
        # A new predict function: with frozen weights assumed, the old one would keep the weights it first saw.
        training_model.make_predict_function(force=True)
        return np.asarray(training_model.predict_on_batch(network_input)[1])

    kernel, bias, count = plain_setting(*layer.get_weights(), predict_scores)
    layer.set_weights([kernel, bias])
    return models.convert_model(training_model), image, network_input, count


def case_runtimes(args):
    import numpy as np

    from keras_retinanet import export, load_detector
    from keras_retinanet.inference.fidelity import found_again

    size = SMALL if args.small else FULL
    inference_model, image, network_input, count = _model(size)
    from keras_retinanet import models
    from keras_retinanet.data.input_transform import resize_image

    # int8 calibration: other images than the timed one (seed 0)
    calibration_images = [benchmark_image(size["shape"], seed=seed).astype(np.uint8) for seed in (1, 2, 3, 4)]
    backbone, side = models.backbone("resnet50"), size["shape"][0]
    calibration_inputs = [np.expand_dims(resize_image(backbone.preprocess_image(x), side, side * 1333 // 800)[0], 0)
                          for x in calibration_images]
    result = {"image": list(size["shape"]), "heads": size["heads"], "scores_above_0.05": count, "rows": {}}
    with tempfile.TemporaryDirectory() as scratch:
        keras_path = os.path.join(scratch, "inference.keras")
        inference_model.save(keras_path)
        paths = {"keras": keras_path}
        for row, name, options in EXPORTS:
            paths[row] = os.path.join(scratch, name)
            calibration = None
            if options.get("quantize") == "int8":
                others = calibration_images if options.get("raw_input") else calibration_inputs
                calibration = lambda others=others: iter(others)  # noqa: E731
            try:
                export.export_model(inference_model, paths[row], representative_images=calibration, **options)
            except Exception as error:  # a missing package (tf2onnx) leaves its row out, said why
                result["rows"][row] = {"error": str(error).splitlines()[0]}
                del paths[row]
        reference = None
        for row, path in paths.items():
            detector = load_detector(path)
            predict = lambda detector=detector: detector.predict(image, score_threshold=0.05)  # noqa: E731
            seconds, runs = median_seconds(predict, args.runs)
            detections = predict()
            reference = detections if reference is None else reference
            found, total = found_again(reference, detections)
            result["rows"][row] = {"end_to_end_s": seconds, "runs": runs, "detections": int(len(detections["scores"])),
                                   "top100_found": found, "top100_total": total,
                                   "file_mib": _size_mib(path)}
    result["rows"]["keras"]["note"] = "reference"
    assert np.isfinite([r.get("end_to_end_s", 0) for r in result["rows"].values()]).all()
    return result


def _size_mib(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs) / 2**20
    return os.path.getsize(path) / 2**20


def rows(value, reference_s=None):
    """Table rows (measure, value, peak MiB, note) of the runtimes case.

    ``reference_s``: keras-retinanet 1.0.0's end-to-end time on the same image in the same run, if measured; each
    row then gives its time as a fraction of it.
    """
    shape = "x".join(str(side) for side in value["image"])
    table = []
    for row, measured in value["rows"].items():
        name = f"{row} end to end ({shape}, load_detector)"
        if "error" in measured:
            table.append((name, "error: " + measured["error"], "", ""))
            continue
        found = f"top-100 found again {measured['top100_found']}/{measured['top100_total']}"
        note = f"{measured['file_mib']:.0f} MiB file, {found}"
        if reference_s:
            note += f", {measured['end_to_end_s'] / reference_s:.2f}x keras-retinanet's time"
        table.append((name, f"{measured['end_to_end_s']:.3f} s", "", note))
    return table
