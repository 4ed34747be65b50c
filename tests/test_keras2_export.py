"""The h5-keras2 export: a Keras 2 .h5 file that tf.keras 2.x and keras-retinanet 1.0.0 load.

The reference is keras-retinanet 1.0.0's own file tests/data/keras_retinanet_mobilenet128_0.25.h5
(written by TensorFlow 2.3 / Keras 2.4, see tests/data/make_keras_retinanet_mobilenet.py): the same
model, loaded here and written back as Keras 2, must have its configuration (class names, keys,
values, inbound nodes) and its weight layout (layer order, which Keras 2 loads by, and weight names).
Whether keras-retinanet 1.0.0 itself loads the files and detects the same is checked by
benchmarks/check_keras2_export.py, run below when $KERAS_RETINANET_VENV38 names its venv.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from keras_retinanet import models
from keras_retinanet.bin import convert_model
from keras_retinanet.export import ExportError, export_model, resolve_format

DATA = Path(__file__).parent / "data"
REFERENCE_FILE = DATA / "keras_retinanet_mobilenet128_0.25.h5"
OUTPUTS_FILE = DATA / "keras_retinanet_mobilenet128_0.25_outputs.npz"
CHECK_SCRIPT = Path(__file__).parent.parent / "benchmarks" / "check_keras2_export.py"
# What Keras 3 writes and Keras 2.4 cannot read.
KERAS3_KEYS = ("batch_shape", "optional", "module", "registered_name", "build_config", "DTypePolicy")
KERAS2_CLASSES = {
    "Functional", "InputLayer", "ZeroPadding2D", "Conv2D", "DepthwiseConv2D", "BatchNormalization", "ReLU",
    "Activation", "Add", "Concatenate", "Reshape", "UpsampleLike", "Anchors", "RegressBoxes", "ClipBoxes",
    "FilterDetections",
}


def read(path):
    handle = h5py.File(path, "r")
    return handle, json.loads(handle.attrs["model_config"])


def names(values):
    return [value.decode() if isinstance(value, bytes) else str(value) for value in values]


def all_keys(value):
    if isinstance(value, dict):
        return set(value) | {key for item in value.values() for key in all_keys(item)}
    if isinstance(value, list):
        return {key for item in value for key in all_keys(item)}
    return {value} if isinstance(value, str) else set()


@pytest.fixture(scope="module")
def legacy_model():
    return models.load_model(str(REFERENCE_FILE), backbone_name="mobilenet128_0.25", compile=False)


@pytest.fixture(scope="module")
def exported(legacy_model, tmp_path_factory):
    """{'training': path, 'inference': path} of the keras-retinanet model written back as Keras 2."""
    folder = tmp_path_factory.mktemp("keras2")
    paths = {"training": str(folder / "training.h5"), "inference": str(folder / "inference.h5")}
    export_model(legacy_model, paths["training"], export_format="h5-keras2")
    export_model(models.convert_model(legacy_model), paths["inference"], export_format="h5-keras2")
    return paths


def test_the_written_configuration_is_keras_retinanets(exported):
    theirs_file, theirs = read(REFERENCE_FILE)
    ours_file, ours = read(exported["training"])
    with theirs_file, ours_file:
        assert ours_file.attrs["keras_version"] in (b"2.4.0", "2.4.0") and ours_file.attrs["backend"] in (b"tensorflow", "tensorflow")
        assert not set(KERAS3_KEYS) & all_keys(ours)
        assert ours["class_name"] == "Functional"
        # Keras 2 sets weights by position: the stored layer order must be the one Keras 2 rebuilds.
        their_layers = names(theirs_file["model_weights"].attrs["layer_names"])
        our_layers = names(ours_file["model_weights"].attrs["layer_names"])
        assert our_layers[1:] == their_layers[1:] and our_layers[0].startswith("input")
        for name in our_layers[1:]:
            assert names(ours_file["model_weights"][name].attrs["weight_names"]) == names(
                theirs_file["model_weights"][name].attrs["weight_names"]
            ), name
        np.testing.assert_array_equal(
            ours_file["model_weights/conv_dw_2/conv_dw_2/depthwise_kernel:0"][()],
            theirs_file["model_weights/conv_dw_2/conv_dw_2/depthwise_kernel:0"][()],
        )
        assert json.loads(ours_file.attrs["training_config"])["loss"] == json.loads(theirs_file.attrs["training_config"])["loss"]

    compare_layers(theirs["config"], ours["config"])


def renamed(value, mapping):
    """A JSON value with the strings that are keys of ``mapping`` replaced (input layer names)."""
    if isinstance(value, dict):
        return {key: renamed(item, mapping) for key, item in value.items()}
    if isinstance(value, list):
        return [renamed(item, mapping) for item in value]
    return mapping.get(value, value)


def compare_layers(theirs, ours):
    """Our Keras 2 model config against keras-retinanet's: classes, keys, values, inbound nodes; only input names differ."""
    mapping = {ours["input_layers"][0][0]: theirs["input_layers"][0][0]}
    assert [layer["name"] for layer in ours["layers"]][1:] == [layer["name"] for layer in theirs["layers"]][1:]
    for their_layer, our_layer in zip(theirs["layers"], ours["layers"]):
        assert our_layer["class_name"] == their_layer["class_name"] and our_layer["class_name"] in KERAS2_CLASSES
        assert renamed(our_layer["inbound_nodes"], mapping) == their_layer["inbound_nodes"], our_layer["name"]
        if our_layer["class_name"] == "Functional":
            compare_layers(their_layer["config"], our_layer["config"])
            continue
        # TensorFlow 2.3 also wrote DepthwiseConv2D's inherited 'groups' (always 1).
        extra = {"groups"} if our_layer["class_name"] == "DepthwiseConv2D" else set()
        assert set(our_layer["config"]) == set(their_layer["config"]) - extra, our_layer["name"]
        for key, value in our_layer["config"].items():
            # BatchNormalization's axis: -1 here, its resolved [3] there.
            if key not in ("axis", "name"):
                assert value == their_layer["config"][key], (our_layer["name"], key)
    assert renamed(ours["output_layers"], mapping) == theirs["output_layers"]


def test_inference_file_has_keras_retinanets_layers(exported):
    handle, config = read(exported["inference"])
    with handle:
        layers = {layer["name"]: layer for layer in config["config"]["layers"]}
        assert "training_config" not in handle.attrs
    assert layers["filtered_detections"]["config"] == {
        "name": "filtered_detections", "trainable": True, "dtype": "float32", "nms": True, "class_specific_filter": True,
        "nms_threshold": 0.5, "score_threshold": 0.05, "max_detections": 300, "parallel_iterations": 32,
    }
    # keras-retinanet's FilterDetections takes [boxes, classification]; our per-level anchors are left out.
    assert layers["filtered_detections"]["inbound_nodes"] == [[["clipped_boxes", 0, 0, {}], ["classification", 0, 0, {}]]]
    assert [layers[f"anchors_{i}"]["config"]["size"] for i in range(5)] == [32, 64, 128, 256, 512]
    assert layers["boxes"]["config"]["std"] == pytest.approx([0.2] * 4)
    # Keras 2 counted a nested model's construction as its node 0: its five calls are nodes 1-5.
    assert [ref[1] for ref in layers["regression"]["inbound_nodes"][0]] == [1, 2, 3, 4, 5]
    assert config["config"]["output_layers"] == [["filtered_detections", 0, i] for i in range(3)]


@pytest.mark.parametrize("kind", ["training", "inference"])
def test_the_keras2_file_loads_back_with_keras_retinanets_detections(exported, kind):
    """Loaded back through the legacy loader: the detections keras-retinanet 1.0.0 gave for the same weights."""
    with np.load(OUTPUTS_FILE) as reference:
        image = reference["image_2"]  # 101 x 133
        want = [reference[f"{part}_2"] for part in ("boxes", "scores", "labels")]
    back = models.load_model(exported[kind], backbone_name="mobilenet128_0.25", compile=False)
    if kind == "training":
        back = models.convert_model(back)
    got = [np.asarray(t) for t in back(image, training=False)]
    count = int((want[1] > -1).sum())
    assert count > 0 and int((got[1] > -1).sum()) == count
    np.testing.assert_allclose(got[0][0, :count], want[0][0, :count], rtol=0, atol=1e-3)
    np.testing.assert_allclose(got[1][0, :count], want[1][0, :count], rtol=0, atol=1e-5)  # measured: 5.4e-7
    np.testing.assert_array_equal(got[2][0, :count], want[2][0, :count])


def test_format_needs_an_h5_name_and_a_keras_retinanet_backbone(tmp_path):
    assert resolve_format("out.h5", "h5-keras2") == "h5-keras2"
    with pytest.raises(ExportError, match="does not end in .h5"):
        resolve_format("out.keras", "h5-keras2")
    inputs = keras.Input((None, None, 3))
    other = keras.Model(inputs, keras.layers.Conv2D(2, 3, name="stem_conv")(inputs))
    with pytest.raises(ExportError, match="keras-retinanet 1.0.0 has"):
        export_model(other, str(tmp_path / "other.h5"), export_format="h5-keras2")
    assert not (tmp_path / "other.h5").exists()


def test_convert_command_writes_keras2(tmp_path, capsys):
    out = tmp_path / "inference_keras2.h5"
    convert_model.main([str(REFERENCE_FILE), str(out), "--format", "h5-keras2", "--backbone", "mobilenet128_0.25"])
    handle, config = read(out)
    with handle:
        assert handle.attrs["keras_version"] in (b"2.4.0", "2.4.0")
    assert config["config"]["layers"][-1]["class_name"] == "FilterDetections"


def venv_python():
    venv = os.environ.get("KERAS_RETINANET_VENV38")
    python = os.path.join(venv, "bin", "python") if venv else None
    return python if python and os.path.exists(python) else None


@pytest.mark.skipif(venv_python() is None, reason="set KERAS_RETINANET_VENV38 to a venv with keras-retinanet 1.0.0")
def test_keras_retinanet_100_loads_the_files_and_detects_the_same(tmp_path):
    out = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, str(CHECK_SCRIPT), "--venv", venv_python(), "--out", str(out)],
        capture_output=True, text=True, timeout=1200,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    results = json.loads(out.read_text())
    assert results["ok"] and len(results["files"]) == 4
    for entry in results["files"]:
        for comparison in entry["keras_retinanet"]:
            assert comparison["unmatched"] == 0 and comparison["reference_count"] > 0
            assert comparison["max_box_difference"] <= 1e-3 and comparison["max_score_difference"] <= 1e-4
