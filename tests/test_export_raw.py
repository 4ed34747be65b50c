"""retinanet-convert-model --raw-input, and convert-model reading the model's spec.

A raw-input export takes one uint8 BGR image of any size and returns boxes in its pixels. Each
format runs in a fresh process that imports only its runtime, on an image of an odd size
(150x203), and must give the detections of the hand-assembled Keras pipeline: preprocess with the
spec's mode, ``cv2.resize`` the float image by ``compute_resize_scale``'s scale, the inference
model, boxes divided by the scale. Each export must also hold the spec (class names and all).
"""

import json
import os
import subprocess
import sys

import cv2
import keras
import numpy as np
import pytest

from keras_retinanet import export, models
from keras_retinanet.bin import convert_model as convert_command
from keras_retinanet.config.spec import DetectorSpec
from keras_retinanet.data.input_transform import compute_resize_scale, preprocess_image

from helpers.export_models import (
    BACKBONE,
    BOX_TOLERANCE,
    CLASS_NAMES,
    MAX_SIDE,
    MIN_SIDE,
    SCORE_TOLERANCE,
    match_detections,
    odd_image,
    spec_model,
)

# At other sides (160, 200 for this image: a 0.985 scale) the graph's float32 sample positions put its resized
# input further from cv2.resize's (test_graph_input_equals_opencv: 9.1e-6 of the value range, against 1.2e-7 at
# MIN_SIDE, MAX_SIDE = 128, 256); the network turns that into larger differences than test_export's float32 bounds.
# Measured on the tests' model (seed 0): boxes within 8.0e-5 px, scores within 3.0e-6 (oneDNN at AVX-512, AVX2 or
# off); on models drawn with seeds 0-4: 2.4e-4 px and 1.3e-5.
RESAMPLED_BOX_TOLERANCE = 5e-4  # px
RESAMPLED_SCORE_TOLERANCE = 2.5e-5
# Only numpy, OpenCV (to read the image) and the format's runtime are imported.
PRELUDE = """
import json
import sys
import cv2
import numpy as np

MODEL, IMAGE, RESULT = sys.argv[1:4]
image = cv2.imread(IMAGE)  # (H, W, 3) uint8 BGR, as read: the graph does the rest
"""
RUNTIMES = {
    "savedmodel": """
import tensorflow as tf

loaded = tf.saved_model.load(MODEL)
outputs = {name: value.numpy() for name, value in loaded.signatures["serving_default"](image=tf.constant(image)).items()}
spec = json.loads(loaded.signatures["spec"]()["spec"].numpy().decode())
with open(MODEL + "/assets/keras_retinanet_spec.json") as file:
    assert json.load(file) == spec
""",
    "tflite": """
try:
    from ai_edge_litert.interpreter import Interpreter
except ImportError:
    import tensorflow as tf

    Interpreter = tf.lite.Interpreter
outputs = Interpreter(model_path=MODEL).get_signature_runner("serving_default")(image=image)
# The flatbuffer's metadata list, read with TFLite's own schema module.
from tensorflow.lite.python import schema_py_generated as schema

model = schema.Model.GetRootAsModel(open(MODEL, "rb").read(), 0)
entries = {model.Metadata(i).Name().decode(): model.Metadata(i).Buffer() for i in range(model.MetadataLength())}
spec = json.loads(model.Buffers(entries["keras_retinanet_spec"]).DataAsNumpy().tobytes().decode())
""",
    "onnx": """
import onnxruntime

session = onnxruntime.InferenceSession(MODEL, providers=["CPUExecutionProvider"])
assert [value.name for value in session.get_inputs()] == ["image"]
names = [output.name for output in session.get_outputs()]
outputs = dict(zip(names, session.run(None, {"image": image})))
spec = json.loads(session.get_modelmeta().custom_metadata_map["keras_retinanet_spec"])
assert "tensorflow" not in sys.modules
""",
}
EPILOGUE = """
assert not [name for name in sys.modules if name.startswith("keras_retinanet")]
np.savez(RESULT, spec=json.dumps(spec), **outputs)
"""


def run_raw_runtime(runtime, model_path, image_path, folder):
    """Run a raw-input export in a fresh interpreter; returns (outputs, the spec JSON it holds)."""
    result_path = os.path.join(folder, f"{runtime}_raw_result.npz")
    completed = subprocess.run(
        [sys.executable, "-c", PRELUDE + RUNTIMES[runtime] + EPILOGUE, str(model_path), str(image_path), result_path],
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        cwd=folder,  # not the repository, so the package cannot be imported by accident
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    with np.load(result_path) as result:
        outputs = {name: result[name] for name in result.files if name != "spec"}
        return outputs, json.loads(str(result["spec"]))


def hand_assembled(inference, image, min_side=MIN_SIDE, max_side=MAX_SIDE):
    """The detections of the Keras pipeline on one image, boxes in its pixels, batch axis of 1, -1 padding kept."""
    scale = compute_resize_scale(image.shape, min_side, max_side)
    network_input = cv2.resize(preprocess_image(image, "tf"), None, fx=scale, fy=scale)
    boxes, scores, labels = inference.predict_on_batch(network_input[np.newaxis])
    boxes = np.where(labels[..., np.newaxis] >= 0, boxes / scale, -1.0)
    return {"boxes": boxes, "scores": scores, "labels": labels}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export_raw")
    keras.utils.set_random_seed(0)  # test_export's model: the measured differences depend on the weights
    model = spec_model()
    model_path = folder / "training.keras"
    model.save(model_path)
    image = odd_image(seed=3)
    image_path = folder / "odd.png"
    cv2.imwrite(str(image_path), image)
    expected = hand_assembled(models.convert_model(model), image)
    assert 30 <= (expected["labels"][0] >= 0).sum() < 300, "the model should give a real, uncapped set of detections"
    return {"folder": folder, "model": str(model_path), "image": str(image_path), "expected": expected}


@pytest.mark.slow
@pytest.mark.parametrize("runtime, name", [("savedmodel", "raw_detector"), ("tflite", "raw.tflite"), ("onnx", "raw.onnx")])
def test_raw_input_export_gives_the_keras_pipeline_detections(setup, runtime, name):
    output = setup["folder"] / name
    # No --backbone, --config or image sides: the file's spec says them.
    convert_command.main([setup["model"], str(output), "--raw-input"])
    outputs, stored = run_raw_runtime(runtime, output, setup["image"], setup["folder"])

    count = int((outputs["labels"] >= 0).sum())
    assert outputs["boxes"].shape == (300, 4) and outputs["boxes"].dtype == np.float32
    assert outputs["scores"].shape == (300,) and outputs["labels"].dtype == np.int32
    assert (outputs["boxes"][count:] == -1).all() and (outputs["scores"][count:] == -1).all()
    actual = {key: value[np.newaxis] for key, value in outputs.items()}
    box_difference, score_difference, _ = match_detections(setup["expected"], actual, BOX_TOLERANCE, SCORE_TOLERANCE)
    print(f"{runtime} raw input: max box difference {box_difference:.2e} px, max score difference {score_difference:.2e}")

    assert stored["input"] == "raw"
    spec = DetectorSpec.from_dict(stored)
    assert spec.class_names == CLASS_NAMES and spec.backbone == BACKBONE and spec.preprocessing == "tf"
    assert (spec.image_min_side, spec.image_max_side) == (MIN_SIDE, MAX_SIDE)
    assert spec.filter["score_threshold"] == 0.05 and spec.filter["max_detections"] == 300
    assert export.read_exported_spec(output) == spec  # the package's own reader agrees


@pytest.mark.parametrize(
    "shape, mode, min_side, max_side, resize",
    [
        ((150, 203), "tf", 128, 256, True),  # upscale, 173.23 columns round down
        ((150, 203), "tf", 160, 200, True),  # a 0.985 scale: the sample positions drift the most
        ((97, 61), "caffe", 100, 1000, True),  # the smaller side is the width
        ((300, 120), "none", 128, 256, True),  # the larger side caps the scale (0.853)
        ((64, 200), "caffe", 32, 100, True),  # exactly half: OpenCV's area shortcut, the same values
        ((45, 77), "tf", 128, 256, False),  # no resizing
    ],
)
def test_graph_input_equals_opencv(shape, mode, min_side, max_side, resize):
    """The graph's preprocessing and resize give what InputTransform (cv2.resize of the float image) gives."""
    import tensorflow as tf

    from keras_retinanet.data.input_transform import InputTransform
    from keras_retinanet.export.raw_input import network_input

    image = np.random.default_rng(sum(shape)).integers(0, 256, (*shape, 3)).astype(np.uint8)
    spec = DetectorSpec(BACKBONE, mode, ("a",), min_side, max_side, resize=resize)
    values, scale = tf.function(lambda x: network_input(x, spec))(tf.constant(image))
    expected, expected_scale = InputTransform(mode, min_side, max_side, resize=resize)(image, preprocess_first=True)
    assert values.shape == expected.shape
    # The graph's scale is float32: within one float32 step (measured: 2.9e-8 relative at most).
    assert float(scale) == pytest.approx(expected_scale, rel=1.2e-7)
    # float32 sample positions (OpenCV computes them alike, in another order) move a value by up to 9.1e-6 of the
    # range (measured at the 0.985 scale; 7.0e-6 for the 97x61 upscale, 1.2e-7 or less for the others).
    value_range = 2.0 if mode == "tf" else 255.0
    difference = float(np.abs(values.numpy() - expected).max()) / value_range
    print(f"{shape} {mode} sides {min_side}/{max_side}: input within {difference:.2g} of the value range of OpenCV's")
    assert difference <= 2e-5, difference


def test_convert_reads_the_spec_and_keeps_it(setup, capsys):
    output = setup["folder"] / "inference.keras"
    convert_command.main([setup["model"], str(output), "--image-max-side", "200", "--score-threshold", "0.2"])
    out = capsys.readouterr().out
    assert f"using --image-max-side 200 ({setup['model']} was trained at {MAX_SIDE})" in out
    spec = models.load_model(str(output), compile=False).spec
    assert spec.class_names == CLASS_NAMES and spec.backbone == BACKBONE
    assert spec.filter["score_threshold"] == 0.2 and spec.filter["nms_threshold"] == 0.5
    assert spec.image_max_side == MAX_SIDE  # the Keras model keeps the sides it was trained at


@pytest.mark.slow
def test_convert_an_inference_model_again(setup, capsys):
    inference = setup["folder"] / "inference_again.keras"
    convert_command.main([setup["model"], str(inference)])
    exported = setup["folder"] / "again.onnx"
    convert_command.main([str(inference), str(exported), "--raw-input"])
    assert "is already an inference model" in capsys.readouterr().out
    assert export.read_exported_spec(exported).class_names == CLASS_NAMES
    with pytest.raises(SystemExit):
        convert_command.main([str(inference), str(exported), "--score-threshold", "0.3"])
    error = capsys.readouterr().err.strip()
    assert "--score-threshold cannot change them" in error and "\n" not in error


@pytest.mark.parametrize(
    "options, message",
    [
        (["--backbone", "resnet50"], "--backbone resnet50 contradicts"),
        (["--config", "anchors.ini"], "--config anchors.ini: its anchors"),
        (["--format", "keras", "--raw-input"], "--raw-input applies to the savedmodel, tflite, onnx formats"),
        (["--quantize", "int8", "--raw-input", "csv", "a.csv", "c.csv"], "--raw-input cannot be combined with --quantize int8"),
    ],
)
def test_contradicting_flags_are_one_line_errors(setup, options, message, capsys, monkeypatch):
    monkeypatch.chdir(setup["folder"])
    (setup["folder"] / "anchors.ini").write_text(
        "[anchor_parameters]\nsizes = 32 64 128 256 512\nstrides = 8 16 32 64 128\nratios = 0.5 1 2\nscales = 1 1.5\n"
    )
    output = "out.keras" if "keras" in options else "out.tflite" if "--quantize" in options else "out.onnx"
    with pytest.raises(SystemExit) as exit_info:
        convert_command.main([setup["model"], output, *options])
    assert exit_info.value.code == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and message in error and "\n" not in error
    assert not os.path.exists(setup["folder"] / output)


@pytest.mark.slow
def test_raw_input_of_a_model_without_spec_takes_the_flags(setup, tmp_path):
    """A model without a spec (as keras-retinanet's files) gets one from --backbone and the image sides."""
    model = models.load_model(setup["model"], compile=False)
    model.spec = None
    path = tmp_path / "no_spec.keras"
    model.save(path)
    output = tmp_path / "no_spec.onnx"
    sides = ["--image-min-side", "160", "--image-max-side", "200"]
    convert_command.main([str(path), str(output), "--backbone", BACKBONE, "--raw-input", *sides])
    outputs, stored = run_raw_runtime("onnx", output, setup["image"], tmp_path)
    expected = hand_assembled(models.convert_model(model), cv2.imread(setup["image"]), 160, 200)
    actual = {key: value[np.newaxis] for key, value in outputs.items()}
    box_difference, score_difference, _ = match_detections(
        expected, actual, RESAMPLED_BOX_TOLERANCE, RESAMPLED_SCORE_TOLERANCE
    )
    print(f"onnx raw input without spec: max box difference {box_difference:.2e} px, score {score_difference:.2e}")
    assert stored["class_names"] == ["0", "1", "2"] and stored["preprocessing"] == "tf"
    assert (stored["image_min_side"], stored["image_max_side"]) == (160, 200)
