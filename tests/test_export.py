"""retinanet-convert-model's export formats, each checked in a fresh process that imports only its runtime.

A tiny MobileNet RetinaNet with random weights is scaled so that it gives ~130 detections of
distinct scores on a textured image; every exported graph must reproduce them.
"""

import os
import subprocess
import sys

import cv2
import keras
import numpy as np
import pytest

from keras_retinanet import export, models
from keras_retinanet.atomic_files import replace_folder, temporary_folder_for
from keras_retinanet.bin import convert_model as convert_command

from helpers.export_models import (
    BACKBONE,
    BOX_TOLERANCE,
    NUM_CLASSES,
    SCORE_TOLERANCE,
    assert_onnx_post_processing_in_float,
    match_detections,
    scaled_training_model,
    textured_image,
)

# The runtime scripts: only numpy, OpenCV (to read the image) and the format's runtime are imported.
PRELUDE = """
import sys
import cv2
import numpy as np

MODEL, IMAGE, RESULT = sys.argv[1:4]
# The graphs take preprocessed images: MobileNet's 'tf' mode scales BGR pixels to [-1, 1].
images = (cv2.imread(IMAGE).astype(np.float32) / 127.5 - 1.0)[np.newaxis]
"""
RUNTIMES = {
    "savedmodel": """
import tensorflow as tf

detect = tf.saved_model.load(MODEL).signatures["serving_default"]
outputs = {name: value.numpy() for name, value in detect(images=tf.constant(images)).items()}
""",
    "tflite": """
try:
    from ai_edge_litert.interpreter import Interpreter
except ImportError:
    import tensorflow as tf

    Interpreter = tf.lite.Interpreter
detect = Interpreter(model_path=MODEL).get_signature_runner("serving_default")
outputs = detect(images=images)
""",
    "onnx": """
import onnxruntime

session = onnxruntime.InferenceSession(MODEL, providers=["CPUExecutionProvider"])
names = [output.name for output in session.get_outputs()]
outputs = dict(zip(names, session.run(None, {"images": images})))
assert "tensorflow" not in sys.modules
""",
    # ONNX Runtime with its graph optimizations off runs every node as its ONNX definition: an int8 graph's
    # DequantizeLinear, float Conv and QuantizeLinear one after another, no fused integer kernel.
    "onnx_reference": """
import onnxruntime

options = onnxruntime.SessionOptions()
options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
session = onnxruntime.InferenceSession(MODEL, options, providers=["CPUExecutionProvider"])
names = [output.name for output in session.get_outputs()]
outputs = dict(zip(names, session.run(None, {"images": images})))
""",
}
EPILOGUE = """
assert not [name for name in sys.modules if name.startswith("keras_retinanet")]
np.savez(RESULT, **outputs)
"""


def run_runtime(runtime, model_path, image_path, folder):
    """Run the exported model in a fresh interpreter; returns its outputs as a dict of arrays."""
    result_path = os.path.join(folder, f"{runtime}_result.npz")
    script = PRELUDE + RUNTIMES[runtime] + EPILOGUE
    completed = subprocess.run(
        [sys.executable, "-c", script, str(model_path), str(image_path), result_path],
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        cwd=folder,  # not the repository, so the package cannot be imported by accident
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    with np.load(result_path) as result:
        return {name: result[name] for name in result.files}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The training model file, a test image and the Keras inference model's detections on it."""
    folder = tmp_path_factory.mktemp("export")
    keras.utils.set_random_seed(0)
    model = scaled_training_model()
    model_path = folder / "training.keras"
    model.save(model_path)

    image_path = folder / "image.png"
    cv2.imwrite(str(image_path), textured_image(seed=1))
    images = models.backbone(BACKBONE).preprocess_image(cv2.imread(str(image_path)))[np.newaxis]
    boxes, scores, labels = models.convert_model(model).predict(images, verbose=0)
    expected = {"boxes": boxes, "scores": scores, "labels": labels}
    assert 50 <= (labels[0] >= 0).sum() < 300, "the model should give a real, uncapped set of detections"

    annotations, classes = folder / "annotations.csv", folder / "classes.csv"
    rows = []
    for index in range(4):
        cv2.imwrite(str(folder / f"train{index}.png"), textured_image(seed=10 + index))
        rows.append(f"train{index}.png,30,20,100,70,box\n")
    annotations.write_text("".join(rows))
    classes.write_text("box,0\n")
    return {
        "folder": folder,
        "model": str(model_path),
        "image": str(image_path),
        "expected": expected,
        "dataset": ["csv", str(annotations), str(classes)],
        "float32_weight_bytes": 4 * model.count_params(),
    }


def convert(setup, output, *options):
    convert_command.main([setup["model"], str(output), "--backbone", BACKBONE, *options])


def assert_valid_detections(outputs, detections=300):
    """Shapes and types as documented, exact -1 padding after the detections, no detection twice."""
    assert outputs["boxes"].shape == (1, detections, 4) and outputs["boxes"].dtype == np.float32
    assert outputs["scores"].shape == (1, detections) and outputs["scores"].dtype == np.float32
    assert outputs["labels"].shape == (1, detections) and outputs["labels"].dtype == np.int32
    count = int((outputs["labels"][0] >= 0).sum())
    assert (outputs["labels"][0, count:] == -1).all()
    assert (outputs["scores"][0, count:] == -1).all()
    assert (outputs["boxes"][0, count:] == -1).all()
    # NMS never keeps two identical boxes of one class (their IoU is 1).
    rows = np.concatenate([outputs["boxes"][0, :count], outputs["labels"][0, :count, np.newaxis]], axis=1)
    assert len(np.unique(rows, axis=0)) == count


@pytest.mark.parametrize(
    "runtime, name",
    [
        ("savedmodel", "detector"),
        ("tflite", "detector.tflite"),
        ("onnx", "detector.onnx"),
    ],
)
@pytest.mark.slow
def test_export_reproduces_the_keras_detections(setup, runtime, name):
    output = setup["folder"] / name
    convert(setup, output)  # the format comes from the name
    outputs = run_runtime(runtime, output, setup["image"], setup["folder"])
    assert_valid_detections(outputs)
    box_difference, score_difference, _ = match_detections(setup["expected"], outputs, BOX_TOLERANCE, SCORE_TOLERANCE)
    print(f"{runtime}: max box difference {box_difference:.2e} px, max score difference {score_difference:.2e}")
    assert not [n for n in os.listdir(setup["folder"]) if ".tmp" in n or ".old" in n]


@pytest.mark.slow
def test_tflite_float16_keeps_the_detections(setup):
    output = setup["folder"] / "detector_fp16.tflite"
    convert(setup, output, "--format", "tflite", "--quantize", "float16")
    assert os.path.getsize(output) < 0.6 * setup["float32_weight_bytes"]
    outputs = run_runtime("tflite", output, setup["image"], setup["folder"])
    assert_valid_detections(outputs)
    # float16 weights (the arithmetic stays float32): every detection clear of the 0.05 threshold is kept. Measured on
    # this model: boxes within 1.7e-2 px, scores within 8.2e-4 (the same with oneDNN at AVX2; the weights' rounding,
    # not the CPU, sets them).
    box_difference, score_difference, _ = match_detections(setup["expected"], outputs, 0.1, 2e-3, min_score=0.1)
    print(f"tflite float16: max box difference {box_difference:.2e} px, max score difference {score_difference:.2e}")


@pytest.mark.slow
def test_tflite_int8_calibrates_on_the_dataset(setup):
    output = setup["folder"] / "detector_int8.tflite"
    convert(
        setup, output, "--quantize", "int8", "--representative-samples", "4",
        "--image-min-side", "128", "--image-max-side", "160", *setup["dataset"],
    )  # fmt: skip
    assert os.path.getsize(output) < 0.45 * setup["float32_weight_bytes"]
    outputs = run_runtime("tflite", output, setup["image"], setup["folder"])
    assert_valid_detections(outputs)  # the -1 padding is exact: post-processing stays in float
    # int8 features move the box deltas and logits a little: the best detections all stay, and of the
    # ~60 clear of the threshold NMS may decide one or two differently.
    match_detections(setup["expected"], outputs, 1.0, 0.03, min_score=0.25)
    box_difference, score_difference, unmatched = match_detections(
        setup["expected"], outputs, 1.0, 0.03, 0.1, max_unmatched=2
    )
    print(f"tflite int8: max box difference {box_difference:.2e} px, max score difference {score_difference:.2e}, "
          f"{unmatched} of those above 0.1 not found")  # fmt: skip
    assert_post_processing_in_float(output)


@pytest.mark.slow
def test_onnx_int8_calibrates_on_the_dataset(setup):
    output = setup["folder"] / "detector_int8.onnx"
    convert(
        setup, output, "--quantize", "int8", "--representative-samples", "4",
        "--image-min-side", "128", "--image-max-side", "160", *setup["dataset"],
    )  # fmt: skip
    # The weights (the graph's node list, long in QDQ form, aside) take a quarter of their float32 bytes.
    assert onnx_weight_bytes(output) < 0.3 * setup["float32_weight_bytes"]
    outputs = run_runtime("onnx", output, setup["image"], setup["folder"])
    assert_valid_detections(outputs)  # the -1 padding is exact: post-processing stays in float
    # ONNX Runtime's int8 kernels compute what the file says on this CPU: the graph run node by node (DequantizeLinear,
    # float Conv, QuantizeLinear; no integer kernel) gives the same detections. The two differ by float32 rounding
    # where a value is requantized: measured 1.5e-5 px and 2.1e-7 in score (AMD EPYC, AVX2 without VNNI); the bounds
    # leave room for a requantization rounding the other way on another CPU. 8-bit weights failed this here by far:
    # the saturating AVX2 kernels gave 142 detections for the graph's 110, 104 of which had none within 1 px and 0.05.
    reference = run_runtime("onnx_reference", output, setup["image"], setup["folder"])
    kernel_box_difference, kernel_score_difference, _ = match_detections(reference, outputs, 1e-2, 1e-4)
    # Against float32: with 7-bit weights (onnx_int8.REDUCE_WEIGHT_RANGE) the int8 graph computes the same on every
    # CPU, so these figures, measured on the AMD EPYC (AVX2, no VNNI), hold anywhere. Of the 5 detections above 0.25,
    # one (0.305) is lost to NMS, a neighbour at IoU 0.61 now scoring above it, and the others are found within 1 px
    # and 0.06 (the largest move 0.057). 8-bit weights, run without saturation (the graph node by node, or on an
    # AVX-512 VNNI CPU), lost none and moved them by 0.015: the bit less costs this random model's crowded detections
    # more (models drawn with seeds 1-3: 3 of 22, 21 of 41 and 8 of 35 above 0.25 not found within 1 px and 0.05,
    # against 3, 10 and 5 with 8 bits). Of the 56 above 0.1, those in the crowded 0.10-0.15 band are where NMS decides
    # differently: measured 5 not found within 1 px and 0.05 (8-bit weights: 6; int8 TFLite: 1).
    match_detections(setup["expected"], outputs, 1.0, 0.06, min_score=0.25, max_unmatched=1)
    box_difference, score_difference, unmatched = match_detections(
        setup["expected"], outputs, 1.0, 0.05, 0.1, max_unmatched=9
    )
    print(f"onnx int8 kernels against the node-by-node graph: max box difference {kernel_box_difference:.2e} px, "
          f"max score difference {kernel_score_difference:.2e}")  # fmt: skip
    print(f"onnx int8: max box difference {box_difference:.2e} px, max score difference {score_difference:.2e}, "
          f"{unmatched} of those above 0.1 not found")  # fmt: skip
    assert_onnx_post_processing_in_float(output, head_outputs=(9 * NUM_CLASSES, 9 * 4))


def onnx_weight_bytes(path):
    import onnx
    from onnx import numpy_helper

    return sum(numpy_helper.to_array(tensor).nbytes for tensor in onnx.load(str(path)).graph.initializer)


def assert_post_processing_in_float(path):
    """The backbone and hidden head convs compute in int8; anchors, decoding, clipping and NMS in float32."""
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=str(path))
    tensors = interpreter.get_tensor_details()
    output_types = {}
    for op in interpreter._get_ops_details():
        name = tensors[op["outputs"][0]]["name"]
        output_types.setdefault(op["op_name"], []).append((name, np.dtype(tensors[op["outputs"][0]]["dtype"]).name))
    convs = output_types["CONV_2D"] + output_types.get("DEPTHWISE_CONV_2D", [])
    assert sum(dtype == "int8" for _, dtype in convs) >= 0.8 * len(convs)
    for op_type, outputs in output_types.items():
        for name, dtype in outputs:
            if any(f"/{layer}" in name for layer in ("anchors", "boxes", "clipped_boxes", "filtered_detections")):
                assert dtype != "int8", f"{op_type} {name} is quantized"


@pytest.mark.parametrize(
    "path, expected",
    [("m.keras", "keras"), ("m.h5", "h5"), ("m.tflite", "tflite"), ("M.ONNX", "onnx"), ("out", "savedmodel"), ("out/", "savedmodel")],
)
def test_format_from_the_output_name(path, expected):
    assert export.resolve_format(path) == expected


@pytest.mark.parametrize(
    "path, export_format, message",
    [
        ("model.pb", None, "cannot tell the format of 'model.pb'"),
        ("model.onnx", "tflite", "--format tflite does not fit the output name 'model.onnx'"),
        ("model.h5", "keras", "--format keras does not fit the output name 'model.h5'"),
        ("model.bin", "keras", "--format keras writes a .keras file"),
        ("model.bin", "pytorch", "unknown format 'pytorch'"),
    ],
)
def test_unusable_format_is_refused(path, export_format, message):
    with pytest.raises(export.ExportError, match=message.replace(".", r"\.")):
        export.resolve_format(path, export_format)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["in.keras", "out.pb"], "cannot tell the format of 'out.pb'"),
        (["in.keras", "out.onnx", "--quantize", "float16"], "--quantize float16 applies to the tflite format only"),
        (["in.keras", "out", "--quantize", "int8"], "--quantize int8 applies to the tflite and onnx formats only"),
        (["in.keras", "out.onnx", "--quantize", "int8"], "--quantize int8 needs a representative dataset"),
        (["in.keras", "out.tflite", "--quantize", "int8"], "--quantize int8 needs a representative dataset"),
        (["in.keras", "out.tflite", "csv", "a.csv", "c.csv"], "a dataset is only read for --quantize int8"),
        (["in.keras", "out.tflite"], "model 'in.keras' does not exist"),
    ],
)
def test_bad_command_line_is_a_one_line_error(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        convert_command.main(argv)
    assert exit_info.value.code == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and message in error and "\n" not in error


def test_missing_onnx_packages_name_the_extra(tmp_path, capsys, monkeypatch):
    # None in sys.modules is how Python marks a module as not importable.
    monkeypatch.setitem(sys.modules, "tf2onnx", None)
    with pytest.raises(SystemExit):
        convert_command.main([str(tmp_path / "in.keras"), str(tmp_path / "out.onnx")])
    error = capsys.readouterr().err.strip()
    assert error == "error: onnx export needs tf2onnx: pip install 'keras3-retinanet[export]' (or pip install tf2onnx)"


def test_savedmodel_folder_is_replaced_whole(tmp_path):
    target = tmp_path / "detector"
    target.mkdir()
    (target / "stale.pb").write_text("old")
    with temporary_folder_for(target) as temporary:
        open(os.path.join(temporary, "saved_model.pb"), "w").write("new")
        replace_folder(temporary, str(target))
    assert sorted(os.listdir(target)) == ["saved_model.pb"]
    assert sorted(os.listdir(tmp_path)) == ["detector"]
