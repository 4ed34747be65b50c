"""--precision mixed on inference models, --precision auto's choice, and the fidelity bar it is held to.

The choice is a pure function of the machine's CPU flags, oneDNN and GPU compute capabilities, tested on given
sets; the fidelity measure (issue 18: float32 top-100 found again with the same label at IoU >= 0.9) is checked
on boxes whose IoU is worked out by hand, and on a tiny model against itself, its bfloat16 copy and a copy with
moved boxes.
"""

import logging

import cv2
import keras
import numpy as np
import pytest

from keras_retinanet import load_detector, models
from keras_retinanet.bin import predict as predict_command
from keras_retinanet.inference import Detector
from keras_retinanet.inference.auto_precision import (
    Choice,
    choose_precision,
    cpu_flags,
    float32_parts_for,
    resolve_precision,
)
from keras_retinanet.inference.fidelity import Fidelity, compare_detectors, found_again
from keras_retinanet.models.precision import part_of, with_precision

from helpers.export_models import odd_image, scaled_training_model, spec_model

THIS_MACHINE = {"avx", "avx2", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "fma"}  # no bf16, no AMX


@pytest.mark.parametrize(
    "flags, capabilities, onednn, expected",
    [
        (THIS_MACHINE, (), True, "float32"),  # bfloat16 would be emulated
        (THIS_MACHINE | {"avx512_bf16"}, (), True, "mixed_bfloat16"),  # Cooper Lake, Zen 4
        ({"avx512f", "amx_bf16", "amx_tile"}, (), True, "mixed_bfloat16"),  # Sapphire Rapids
        (THIS_MACHINE | {"avx512_bf16"}, (), False, "float32"),  # oneDNN off: TensorFlow's own kernels
        (set(), (), True, "float32"),  # no /proc/cpuinfo
        (THIS_MACHINE, ((8, 0),), True, "mixed_float16"),  # A100
        (THIS_MACHINE, ((7, 0),), True, "mixed_float16"),  # V100: the first with tensor cores
        (THIS_MACHINE | {"amx_bf16"}, ((6, 1),), True, "float32"),  # a GPU in use decides, P40 has none
        (THIS_MACHINE, ((6, 1), (7, 5)), True, "mixed_float16"),  # the best GPU
    ],
)
def test_the_hardware_choice(flags, capabilities, onednn, expected):
    choice = choose_precision(flags, capabilities, onednn=onednn)
    assert choice.precision == expected
    assert choice.reason and "\n" not in choice.reason


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Xeon\nflags\t\t: fpu avx2 avx512_bf16 amx_bf16\n\nprocessor\t: 1\n")
    assert cpu_flags(str(cpuinfo)) == {"fpu", "avx2", "avx512_bf16", "amx_bf16"}
    assert cpu_flags(str(tmp_path / "missing")) == frozenset()


def test_auto_takes_the_hardware_path_only_for_measured_models(caplog):
    fast = Choice("mixed_bfloat16", "CPU has amx_bf16")
    with caplog.at_level(logging.INFO, logger="keras_retinanet"):
        assert resolve_precision("auto", "mobilenet128_0.25", hardware=fast).precision == "mixed_bfloat16"
        refused = resolve_precision("auto", "densenet121", hardware=fast)
    assert refused.precision == "float32" and "densenet121" in refused.reason
    assert len(caplog.records) == 2 and caplog.records[1].getMessage().startswith("precision auto: float32 (")
    assert resolve_precision("mixed_float16", "densenet121").precision == "mixed_float16"  # asked for: kept
    assert resolve_precision("auto", "mobilenet128_0.25", hardware=Choice("float32", "no bf16")).precision == "float32"


def test_a_resnet_keeps_its_trunk_in_float32(caplog):
    # bench_fidelity: ResNet50 at 800 px found 58% of its float32 top-100 all in bfloat16, 99.5% with the trunk float32.
    assert float32_parts_for("resnet50") == float32_parts_for("resnet152") == ("backbone", "batchnorm")
    assert float32_parts_for("mobilenet128_0.25") == ()  # the demo model kept 96.6% all in bfloat16
    assert float32_parts_for("densenet121") == ("backbone", "batchnorm")  # unmeasured: as careful as a ResNet
    with caplog.at_level(logging.INFO, logger="keras_retinanet"):
        choice = resolve_precision("auto", "resnet50", hardware=Choice("mixed_float16", "GPU 8.0"))
    assert choice.precision == "mixed_float16" and "backbone and batchnorm kept in float32" in choice.reason


def test_found_again_by_hand():
    reference = {
        "boxes": np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50], [0, 0, 10, 10], [60, 0, 70, 10]]),
        "scores": np.array([0.9, 0.8, 0.7, 0.6, 0.5]),
        "labels": np.array([1, 1, 2, 1, 0]),
    }
    candidate = {
        "boxes": np.array([[0, 0, 10, 9], [20, 20, 30, 28.9], [40, 40, 50, 50], [60, 0, 70, 10], [-1, -1, -1, -1]]),
        "scores": np.array([0.95, 0.8, 0.7, 0.4, -1]),
        "labels": np.array([1, 1, 1, 0, -1]),
    }
    # IoU 90/100 = 0.9 (found); 89/100 < 0.9 (not); label 2 vs 1 (not); the second [0,0,10,10] finds its
    # match used by the first (not); the last is found; the padding row is no detection.
    assert found_again(reference, candidate) == (2, 5)
    assert found_again(reference, candidate, top_k=1) == (1, 1)
    assert found_again(reference, candidate, min_iou=0.85) == (3, 5)
    assert found_again(reference, {k: v[:0] for k, v in candidate.items()}) == (0, 5)
    flat = {"boxes": np.array([[0, 5, 0, 9]]), "scores": np.array([0.5]), "labels": np.array([3])}  # no area
    assert found_again(flat, flat) == (1, 1)


def test_the_bar():
    assert Fidelity(80, 100).kept and not Fidelity(79, 100).kept
    assert Fidelity(0, 0).found_fraction == 1.0
    assert Fidelity(95, 100, 0.90, 0.891).kept and not Fidelity(95, 100, 0.90, 0.889).kept
    assert "mAP 0.8890 vs 0.9000" in Fidelity(95, 100, 0.90, 0.889).describe()


def test_parts_are_told_by_layer():
    assert part_of("BatchNormalization", "bn2a_branch2a") == "batchnorm"
    assert part_of("Conv2D", "res2a_branch2a") == "backbone"
    assert part_of("Conv2D", "P3") == part_of("UpsampleLike", "P4_upsampled") == part_of("Add", "P3_merged") == "pyramid"
    assert part_of("Conv2D", "pyramid_classification_3") == "heads"
    assert part_of("Conv2D", "pyramid_classification") is None  # the logits are float32 anyway
    assert part_of("InputLayer", "input_1") is None and part_of("Anchors", "anchors_2") is None


@pytest.fixture(scope="module")
def tiny():
    keras.utils.set_random_seed(0)
    model = scaled_training_model()
    inference = models.convert_model(model)
    spec = spec_model().spec
    return {"inference": inference, "spec": spec, "image": odd_image(seed=5)}


def test_an_inference_model_rebuilds_in_bfloat16_and_keeps_the_detections(tiny):
    mixed = with_precision(tiny["inference"], "mixed_bfloat16")  # failed with "unhashable type: 'dict'"
    assert mixed.get_layer("P3").dtype_policy.name == "mixed_bfloat16"
    assert mixed.get_layer("filtered_detections").dtype_policy.name == "float32"
    kept = with_precision(tiny["inference"], "mixed_bfloat16", float32_parts=("pyramid",))
    assert kept.get_layer("P3").dtype_policy.name == "float32"
    assert kept.get_layer("conv_pw_1").dtype_policy.name == "mixed_bfloat16"
    reference, candidate = Detector(tiny["inference"], tiny["spec"]), Detector(mixed, tiny["spec"])
    expected = reference.predict(tiny["image"], score_threshold=0.05)
    actual = candidate.predict(tiny["image"], score_threshold=0.05)
    assert actual["boxes"].dtype == actual["scores"].dtype == np.float32 and actual["labels"].dtype == np.int32
    # bfloat16 keeps 8 significant bits: each op rounds its inputs and weights by up to 2**-9 (0.2%). Over the ~34
    # convolutions before the float32 logits (MobileNet 0.25: 27, the FPN 3, the head 4), with sums that cancel
    # (random weights) multiplying relative errors, the logits move by a few % of their spread (1.5): the bound is
    # 0.15 (10%; 0.06 seen here), i.e. scores within 0.15 * sigmoid' <= 0.04; box deltas (spread 0.5, times 0.2
    # anchor sides of 32-128 px) by < 2 px. The best detections are found again at IoU >= 0.9.
    found, total = found_again(expected, actual, top_k=10)
    assert (found, total) == (10, 10)
    for box, score, label in zip(expected["boxes"][:10], expected["scores"][:10], expected["labels"][:10]):
        close = (actual["labels"] == label) & (np.abs(actual["boxes"] - box).max(axis=1) <= 2.0)
        logit = np.log(score / (1 - score))
        assert close.any() and np.abs(np.log(actual["scores"][close] / (1 - actual["scores"][close])) - logit).min() <= 0.15
    assert compare_detectors(reference, candidate, [tiny["image"]]).kept


def test_the_fidelity_check_tells_moved_boxes(tiny):
    reference = Detector(tiny["inference"], tiny["spec"])
    assert compare_detectors(reference, reference, [tiny["image"]]).found_fraction == 1.0
    moved = with_precision(tiny["inference"], "float32")  # a copy, same weights
    layer = moved.get_layer("regression_submodel").get_layer("pyramid_regression")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel, bias + 0.5])  # every box corner moves by 0.5 * 0.2 anchor sides: IoU ~0.7
    fidelity = compare_detectors(reference, Detector(moved, tiny["spec"]), [tiny["image"]])
    assert fidelity.total >= 30 and fidelity.found_fraction < 0.2 and not fidelity.kept


def test_predict_command_runs_an_inference_model_in_mixed(tmp_path):
    keras.utils.set_random_seed(0)
    model = spec_model()
    path = tmp_path / "inference.keras"
    models.convert_model(model).save(path)  # as retinanet-convert-model writes it
    image_path = tmp_path / "photo.png"
    cv2.imwrite(str(image_path), odd_image(seed=5))
    predict_command.main([str(path), str(image_path), "--precision", "mixed", "--no-draw",
                          "--output-dir", str(tmp_path / "out")])
    detector = load_detector(str(path), precision="mixed")
    assert detector.model.get_layer("P3").compute_dtype == "bfloat16"
