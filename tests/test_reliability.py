"""Training survives kills and NaNs, resumes exactly, and refuses bad or unsafe files (issue 8).

Every training run is tiny (MobileNet 0.25, 64 px images, narrow heads, 2 steps an epoch);
most of a run's time is TensorFlow tracing the training step, so runs are shared.
"""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile

import cv2
import h5py
import keras
import numpy as np
import pytest

from keras_retinanet import models
from keras_retinanet.bin import evaluate as evaluate_command
from keras_retinanet.bin import train as train_command
from keras_retinanet.errors import DatasetError, ModelFileError
from keras_retinanet.checkpoint import read_h5_optimizer_weights, read_training_state
from keras_retinanet.data.image_io import read_image_bgr

from helpers.datasets import write_square_dataset

BACKBONE = "mobilenet128_0.25"
TRAIN_ARGS = [
    "--backbone", BACKBONE, "--batch-size", "2", "--steps", "2",
    "--image-min-side", "64", "--image-max-side", "64", "--no-evaluation",
    "--pyramid-feature-size", "16", "--classification-feature-size", "8", "--regression-feature-size", "8",
]  # fmt: skip


def snapshot_name(folder, epoch):
    return os.path.join(folder, f"{BACKBONE}_csv_{epoch:02d}.h5")


def command(*argv):
    """The installed ``retinanet-train`` console script (or the module, if not installed)."""
    script = shutil.which("retinanet-train")
    return [script, *argv] if script else [sys.executable, "-m", "keras_retinanet.bin.train", *argv]


def environment():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")


def file_digest(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


@pytest.fixture(scope="module")
def straight(tmp_path_factory, dataset):
    """Three epochs straight, deterministic, with parallel input workers; snapshots after each."""
    folder = str(tmp_path_factory.mktemp("straight"))
    keras.utils.clear_session()
    train_command.main([
        *TRAIN_ARGS, "--epochs", "3", "--lr", "1e-3", "--seed", "7", "--deterministic", "--workers", "2",
        "--random-transform", "--snapshot-path", folder, "csv", *dataset,
    ])  # fmt: skip
    return folder


# --------------------------------------------------------------------------------------
# Resume exactness
# --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_epochs_plus_resume_equals_three_straight(straight, dataset, tmp_path):
    """Resuming from the epoch-2 snapshot ends with the weights, Adam state and schedule of the straight run, bit for
    bit (--deterministic: the same batches and the same ops in the same order).

    The resumed run gets neither --lr nor --seed: both come from the snapshot.
    """
    resumed = str(tmp_path / "resumed")
    keras.utils.clear_session()
    train_command.main([
        *TRAIN_ARGS, "--epochs", "3", "--deterministic", "--workers", "2", "--random-transform",
        "--snapshot", snapshot_name(straight, 2), "--snapshot-path", resumed, "csv", *dataset,
    ])  # fmt: skip
    assert sorted(name for name in os.listdir(resumed) if name.endswith(".h5")) == [os.path.basename(snapshot_name(resumed, 3))]

    expected = keras.models.load_model(snapshot_name(straight, 3), compile=False)
    actual = keras.models.load_model(snapshot_name(resumed, 3), compile=False)
    before = keras.models.load_model(snapshot_name(straight, 2), compile=False)
    moved = 0.0
    for want, got, old in zip(expected.weights, actual.weights, before.weights):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want), err_msg=want.path)
        moved = max(moved, float(np.max(np.abs(np.asarray(want) - np.asarray(old)))))
    assert moved > 1e-5  # the third epoch changed the weights, so equality is not trivial

    # Adam's moments, iteration count and learning rate, as stored in the .h5 files.
    strip = lambda values: {path.split("/", 1)[-1]: value for path, value in values.items()}  # noqa: E731
    want_optimizer = strip(read_h5_optimizer_weights(snapshot_name(straight, 3)))
    got_optimizer = strip(read_h5_optimizer_weights(snapshot_name(resumed, 3)))
    assert set(want_optimizer) == set(got_optimizer) and len(want_optimizer) > 100
    for path, value in want_optimizer.items():
        np.testing.assert_array_equal(got_optimizer[path], value, err_msg=path)
    assert int(got_optimizer["iteration"]) == 3 * 2
    assert float(got_optimizer["learning_rate"]) == pytest.approx(1e-3)
    # the moments were not zero at the resume point, so losing them would have shown
    epoch_two = strip(read_h5_optimizer_weights(snapshot_name(straight, 2)))
    assert max(float(np.abs(v).max()) for k, v in epoch_two.items() if k.endswith("_momentum")) > 0

    # epoch, seed and the learning-rate schedule's state
    want_state, got_state = read_training_state(snapshot_name(straight, 3)), read_training_state(snapshot_name(resumed, 3))
    assert want_state["epoch"] == got_state["epoch"] == 3
    assert got_state["seed"] == 7
    assert got_state["callbacks"] == want_state["callbacks"]
    assert want_state["callbacks"]["reduce_lr"]["best"] is not None


@pytest.mark.slow
def test_h5_snapshot_restores_adam_moments(straight):
    """Loading a .h5 training snapshot gives back the optimizer state it stored, not a fresh one."""
    path = snapshot_name(straight, 2)
    model = models.load_model(path, backbone_name=BACKBONE)
    stored = {k.split("/", 1)[-1]: v for k, v in read_h5_optimizer_weights(path).items()}
    restored = {v.path.split("/", 1)[-1]: np.asarray(v) for v in model.optimizer.variables}
    assert set(stored) == set(restored)
    for key, value in stored.items():
        np.testing.assert_array_equal(restored[key], value, err_msg=key)


# --------------------------------------------------------------------------------------
# SIGKILL at any instant
# --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sigkill_mid_save_leaves_last_snapshot_and_resume_finishes(dataset, tmp_path):
    folder = str(tmp_path / "snapshots")
    os.makedirs(folder)
    args = [*TRAIN_ARGS, "--lr", "1e-3", "--seed", "1", "--workers", "0", "--snapshot-path", folder]
    process = subprocess.Popen(
        command(*args, "--epochs", "3", "csv", *dataset),
        env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    # Kill the moment the epoch-2 snapshot's temporary file exists: the save is under way.
    caught = None
    deadline = time.time() + 600
    while process.poll() is None and time.time() < deadline and caught is None:
        names = os.listdir(folder)
        temporaries = [n for n in names if n.startswith(f".{BACKBONE}_csv_02.h5.") and ".tmp" in n]
        if temporaries:
            process.send_signal(signal.SIGKILL)
            caught = temporaries
        time.sleep(0.002)
    process.wait(timeout=60)
    assert caught, f"the run ended before the second save was seen: {process.stderr.read()[-2000:]}"
    assert process.returncode == -signal.SIGKILL

    names = sorted(os.listdir(folder))
    assert os.path.basename(snapshot_name(folder, 1)) in names
    assert os.path.basename(snapshot_name(folder, 2)) not in names  # never a half-written snapshot
    last = models.load_model(snapshot_name(folder, 1), backbone_name=BACKBONE)
    models.assert_training_model(last)
    assert read_training_state(snapshot_name(folder, 1))["epoch"] == 1

    result = subprocess.run(
        command(*args, "--epochs", "3", "--snapshot", snapshot_name(folder, 1), "csv", *dataset),
        env=environment(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Epoch 2/3" in result.stdout and "Epoch 1/3" not in result.stdout
    names = sorted(os.listdir(folder))
    assert not [name for name in names if ".tmp" in name]  # the killed save's leftover was removed
    assert read_training_state(snapshot_name(folder, 3))["epoch"] == 3
    models.load_model(snapshot_name(folder, 3), backbone_name=BACKBONE)


SAVE_LOOP = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras, numpy as np
from keras_retinanet.atomic_files import save_model_atomically
model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(2048), keras.layers.Dense(64)])
step = 0
while True:
    for variable in model.weights:
        variable.assign(np.full(variable.shape, step, dtype="float32"))
    save_model_atomically(model, sys.argv[1])
    step += 1
    print(step, flush=True)
"""


@pytest.mark.parametrize("extension, delay", [(".h5", 0.05), (".keras", 0.23)])
def test_atomic_save_killed_at_any_instant_leaves_a_complete_file(tmp_path, extension, delay):
    """A process that saves over and over, killed at some instant: the file is always a whole model."""
    path = str(tmp_path / f"model{extension}")
    process = subprocess.Popen(
        [sys.executable, "-c", SAVE_LOOP, path], env=environment(), stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "1"  # one complete save before the kill
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    model = keras.models.load_model(path)
    values = {float(np.asarray(w).flat[0]) for w in model.weights}
    assert len(values) == 1  # every weight from the same save: never a mix of two
    assert {np.asarray(w).min() for w in model.weights} == {np.asarray(w).max() for w in model.weights}


# --------------------------------------------------------------------------------------
# NaN / inf loss
# --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_nan_loss_stops_with_epoch_and_step_and_keeps_last_snapshot(straight, dataset, tmp_path):
    folder = str(tmp_path / "snapshots")
    os.makedirs(folder)
    good = shutil.copy(snapshot_name(straight, 1), snapshot_name(folder, 1))
    digest = file_digest(good)
    result = subprocess.run(
        command(*TRAIN_ARGS, "--epochs", "3", "--workers", "0", "--lr", "1e30", "--snapshot", good,
                "--snapshot-path", folder, "csv", *dataset),
        env=environment(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, result.stderr[-3000:]
    message = error_lines[0]
    assert "training diverged at epoch 2, step " in message
    assert "learning rate" in message and "boxes" in message
    assert "Traceback" not in result.stderr
    assert sorted(n for n in os.listdir(folder) if not n.startswith(".")) == [os.path.basename(good)]
    assert file_digest(good) == digest
    models.load_model(good, backbone_name=BACKBONE)


# --------------------------------------------------------------------------------------
# Corrupt images, --skip-bad-images
# --------------------------------------------------------------------------------------


def _corrupt_images(folder):
    """A truncated PNG and a JPEG-named file of random bytes, in place of two dataset images."""
    with open(os.path.join(folder, "img1.png"), "rb") as handle:
        data = handle.read()
    with open(os.path.join(folder, "img1.png"), "wb") as handle:
        handle.write(data[: len(data) // 2])
    bogus = os.path.join(folder, "img4.jpg")
    with open(bogus, "wb") as handle:
        handle.write(b"\xff\xd8\xff\xe0" + np.random.default_rng(1).bytes(300))
    with open(os.path.join(folder, "annotations.csv"), "a") as handle:
        handle.write("img4.jpg,1,1,30,30,square\n")


def test_corrupt_image_files_raise_dataset_error_naming_the_file(tmp_path):
    image = np.full((40, 50, 3), 128, np.uint8)
    jpeg = cv2.imencode(".jpg", image)[1].tobytes()
    png = cv2.imencode(".png", image)[1].tobytes()
    cases = {
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "truncated.png": png[: len(png) // 2],
        "noise.jpg": np.random.default_rng(0).bytes(500),
        "empty.png": b"",
        "text.png": b"hello, I am not an image\n",
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(DatasetError) as caught:
            read_image_bgr(path)
        assert caught.value.path == str(path) and str(path) in str(caught.value)


@pytest.mark.slow
def test_skip_bad_images_trains_and_reports_them(tmp_path):
    folder = str(tmp_path)
    annotations, classes = write_square_dataset(folder, count=6)
    _corrupt_images(folder)
    args = [*TRAIN_ARGS, "--epochs", "1", "--steps", "4", "--workers", "0", "--no-snapshots", "--seed", "2"]

    refused = subprocess.run(
        command(*args, "csv", annotations, classes), env=environment(), capture_output=True, text=True, timeout=300
    )
    assert refused.returncode == 1
    last_line = refused.stderr.strip().splitlines()[-1]  # TensorFlow's own start-up lines come first
    assert last_line.startswith("error: ") and "img" in last_line and "Traceback" not in refused.stderr

    result = subprocess.run(
        command(*args, "--skip-bad-images", "csv", annotations, classes),
        env=environment(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Skipped 2 unreadable image(s):" in result.stderr
    for name in ("img1.png", "img4.jpg"):
        assert os.path.join(folder, name) in result.stderr
    assert "4/4" in result.stdout  # every step ran with full batches


def test_skip_bad_images_fills_the_batch_with_the_next_readable_image(tmp_path):
    from keras_retinanet.preprocessing.csv_generator import CSVGenerator

    folder = str(tmp_path)
    annotations, classes = write_square_dataset(folder, count=6)
    _corrupt_images(folder)
    generator = CSVGenerator(annotations, classes, batch_size=2, group_method="none", shuffle_groups=False,
                             image_min_side=64, image_max_side=64, skip_bad_images=True)  # fmt: skip
    assert generator.image_names[6] == "img4.jpg"  # the bogus file, last in the CSV
    used, images = generator.load_readable_group([1, 6])
    assert used == [2, 0] and len(images) == 2  # img1.png -> img2.png; img4.jpg -> wraps to img0.png
    assert sorted(os.path.basename(p) for p in generator.bad_images) == ["img1.png", "img4.jpg"]
    inputs, (regression, labels) = generator.compute_input_output([0, 1])
    assert inputs.shape[0] == 2 and regression.shape[0] == 2

    strict = CSVGenerator(annotations, classes, batch_size=2, group_method="none", image_min_side=64, image_max_side=64)
    with pytest.raises(DatasetError, match="img1.png"):
        strict.compute_input_output([0, 1])


# --------------------------------------------------------------------------------------
# Bad model files, code in model files
# --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_truncated_and_foreign_model_files_raise_model_file_error(straight, tmp_path):
    source = snapshot_name(straight, 1)
    data = open(source, "rb").read()
    truncated_h5 = tmp_path / "truncated.h5"
    truncated_h5.write_bytes(data[: len(data) // 3])
    keras_file = tmp_path / "model.keras"
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save(keras_file)
    keras_data = keras_file.read_bytes()
    truncated_keras = tmp_path / "truncated.keras"
    truncated_keras.write_bytes(keras_data[: len(keras_data) // 2])
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not hdf5 at all" * 10)
    for path in (truncated_h5, truncated_keras, garbage):
        with pytest.raises(ModelFileError) as caught:
            models.load_model(str(path), backbone_name=BACKBONE)
        assert str(path) in str(caught.value)


def test_non_retinanet_snapshot_is_a_one_line_error(dataset, tmp_path, capsys):
    path = str(tmp_path / "dense_01.keras")
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save(path)
    with pytest.raises(SystemExit) as caught:
        train_command.main([*TRAIN_ARGS, "--snapshot", path, "csv", *dataset])
    assert caught.value.code == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: ")


def _lambda_model_file(folder, function):
    path = os.path.join(folder, "with_lambda_01.keras")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Lambda(function), keras.layers.Dense(2)])
    model.save(path)
    return path


@pytest.mark.parametrize("function", [lambda x: x * 2, keras.ops.relu], ids=["python-lambda", "named-function"])
def test_model_with_lambda_is_refused_unless_unsafe(tmp_path, function):
    path = _lambda_model_file(str(tmp_path), function)
    with zipfile.ZipFile(path) as archive:
        assert b'"Lambda"' in archive.read("config.json")  # a real Lambda in the file
    with pytest.raises(ModelFileError) as caught:
        models.load_model(path, backbone_name=BACKBONE)
    message = str(caught.value)
    assert path in message and "Lambda" in message and "--unsafe-load" in message
    loaded = models.load_model(path, backbone_name=BACKBONE, safe_mode=False)
    assert any(type(layer).__name__ == "Lambda" for layer in loaded.layers)


def test_train_snapshot_with_lambda_needs_unsafe_load(dataset, tmp_path, capsys):
    path = _lambda_model_file(str(tmp_path), lambda x: x * 2)
    with pytest.raises(SystemExit):
        train_command.main([*TRAIN_ARGS, "--snapshot", path, "csv", *dataset])
    refused = capsys.readouterr().err
    assert "Lambda" in refused and "--unsafe-load" in refused
    # with the flag the file loads, and is then refused for what it is: not a RetinaNet
    with pytest.raises(SystemExit):
        train_command.main([*TRAIN_ARGS, "--unsafe-load", "--snapshot", path, "csv", *dataset])
    second = capsys.readouterr().err
    assert "--unsafe-load" not in second and "error: " in second


def test_evaluate_refuses_a_lambda_model_unless_unsafe(dataset, tmp_path, capsys):
    path = _lambda_model_file(str(tmp_path), lambda x: x * 2)
    with pytest.raises(SystemExit):
        evaluate_command.main(["--backbone", BACKBONE, "csv", *dataset, path])
    refused = capsys.readouterr().err
    assert "Lambda" in refused and "--unsafe-load" in refused
    with pytest.raises(SystemExit):  # loads, then is refused for what it is: not a RetinaNet
        evaluate_command.main(["--backbone", BACKBONE, "--unsafe-load", "csv", *dataset, path])
    assert "Lambda" not in capsys.readouterr().err.splitlines()[-1]


def test_unknown_layer_is_refused_with_its_name(tmp_path):
    @keras.saving.register_keras_serializable(package="reliability_test")
    class Doubler(keras.layers.Layer):
        def call(self, inputs):
            return inputs * 2

    path = str(tmp_path / "custom.keras")
    keras.Sequential([keras.Input((3,)), Doubler(), keras.layers.Dense(2)]).save(path)
    keras.saving.get_custom_objects().pop("reliability_test>Doubler")
    with pytest.raises(ModelFileError) as caught:
        models.load_model(path, backbone_name=BACKBONE)
    assert "Doubler" in str(caught.value) and path in str(caught.value)


def test_h5_snapshot_with_lambda_is_refused(tmp_path):
    path = str(tmp_path / "lambda.h5")
    keras.Sequential([keras.Input((3,)), keras.layers.Lambda(lambda x: x + 1)]).save(path)
    with h5py.File(path) as handle:
        assert b"Lambda" in handle.attrs["model_config"].encode() if isinstance(
            handle.attrs["model_config"], str) else b"Lambda" in handle.attrs["model_config"]  # fmt: skip
    with pytest.raises(ModelFileError, match="Lambda"):
        models.load_model(path, backbone_name=BACKBONE)
