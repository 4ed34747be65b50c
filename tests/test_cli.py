"""The command line as people expect it: --version, --verbose, helpful argument errors, missing files
reported before TensorFlow loads, no TensorFlow start-up noise, the package's messages through logging."""

import contextlib
import io
import json
import logging
import os
import subprocess
import sys

import pytest

import keras_retinanet
from keras_retinanet.bin import common
from keras_retinanet.bin import convert_model as convert_command
from keras_retinanet.bin import debug as debug_command
from keras_retinanet.bin import evaluate as evaluate_command
from keras_retinanet.bin import predict as predict_command
from keras_retinanet.bin import train as train_command

COMMANDS = {
    "retinanet-train": train_command,
    "retinanet-evaluate": evaluate_command,
    "retinanet-predict": predict_command,
    "retinanet-convert-model": convert_command,
    "retinanet-debug": debug_command,
}

# What TensorFlow 2.21 prints on this kind of machine when it loads and finds no GPU (seen by hand):
# absl's pre-initialisation notice, oneDNN's and the CUDA stub's INFO lines, the CPU feature guard, cuInit.
TF_NOISE = ("absl::InitializeLog", "oneDNN custom operations", "cudart_stub", "cpu_feature_guard", "cuInit", "WARNING:absl")


@pytest.fixture
def package_logger():
    """The package logger, put back as it was after the test (the commands configure it)."""
    logger = logging.getLogger("keras_retinanet")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    yield logger
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logger.propagate = propagate


@pytest.mark.parametrize("prog", sorted(COMMANDS))
def test_version(prog, capsys):
    with pytest.raises(SystemExit) as exit_info:
        COMMANDS[prog].parse_args(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"{prog} {keras_retinanet.__version__} (keras3-retinanet; Keras-3 RetinaNet)"


def test_open_images_keeps_its_own_version_option():
    args = train_command.parse_args(["oid", "/data/oid", "--version", "v6"])
    assert args.config.data.dataset.version == "v6"


def _argument_error(module, argv, capsys):
    """(stderr, exit status) of parsing ``argv``."""
    with pytest.raises(SystemExit) as exit_info:
        module.parse_args(argv)
    return capsys.readouterr().err, exit_info.value.code


def test_command_option_after_the_subcommand(capsys):
    err, status = _argument_error(train_command, ["csv", "a.csv", "c.csv", "--epochs", "3"], capsys)
    assert status == 2
    assert err.startswith("usage: retinanet-train")
    assert err.rstrip().endswith(
        "error: --epochs is an option of retinanet-train, not of 'csv': put it before the dataset subcommand"
    )
    # Before the subcommand's own arguments, where it takes their place.
    err, status = _argument_error(train_command, ["csv", "--epochs", "3"], capsys)
    assert status == 2 and "error: --epochs is an option of retinanet-train, not of 'csv'" in err
    err, status = _argument_error(debug_command, ["pascal", "/data/voc", "--anchors"], capsys)
    assert status == 2 and "error: --anchors is an option of retinanet-debug, not of 'pascal'" in err


def test_misspelt_option_suggests_the_right_one(capsys):
    err, status = _argument_error(train_command, ["--backbon", "resnet50", "csv", "a.csv", "c.csv"], capsys)
    assert status == 2
    assert "error: unrecognized option --backbon; did you mean --backbone?" in err
    assert "invalid choice" not in err  # argparse's own message took 'resnet50' for the dataset type
    err, status = _argument_error(train_command, ["--no-weight", "csv", "a.csv", "c.csv"], capsys)
    assert status == 2 and "did you mean --no-weights?" in err
    err, status = _argument_error(predict_command, ["--scor-threshold", "0.3", "m.keras", "photo.jpg"], capsys)
    assert status == 2 and "unrecognized option --scor-threshold; did you mean --score-threshold?" in err
    err, status = _argument_error(train_command, ["--zzz", "csv", "a.csv", "c.csv"], capsys)
    assert status == 2 and "unrecognized option --zzz" in err and "did you mean" not in err


def test_misspelt_subcommand_suggests_the_right_one(capsys):
    err, status = _argument_error(train_command, ["cvs", "a.csv", "c.csv"], capsys)
    assert status == 2 and "error: unknown dataset type 'cvs'; did you mean 'csv'?" in err
    err, status = _argument_error(debug_command, ["pascl", "/data/voc"], capsys)
    assert status == 2 and "did you mean 'pascal'?" in err


# Each case runs main() in one fresh interpreter, which then says whether TensorFlow was imported.
MISSING_FILE_SCRIPT = """
import json, sys
from keras_retinanet.bin import convert_model, debug, evaluate, predict, train
results = []
for module, argv in json.loads(sys.argv[1]):
    try:
        getattr(sys.modules["keras_retinanet.bin." + module], "main")(argv)
        status = 0
    except SystemExit as exit_info:
        status = exit_info.code
    results.append([status, "tensorflow" in sys.modules])
print(json.dumps(results))
"""


def test_missing_files_are_reported_before_tensorflow_loads(dataset, tmp_path):
    annotations, classes = dataset
    model = tmp_path / "model.h5"
    model.write_bytes(b"not read: the commands stop before")
    image = os.path.join(os.path.dirname(annotations), "img0.png")
    cases = [
        (["train", ["csv", "nope.csv", classes]], "annotations file 'nope.csv' does not exist"),
        (["train", ["csv", annotations, "nope.csv"]], "classes file 'nope.csv' does not exist"),
        (["train", ["csv", annotations, classes, "--val-annotations", "nope.csv"]],
         "validation annotations file 'nope.csv' does not exist"),
        (["train", ["--snapshot", "nope.h5", "csv", annotations, classes]], "snapshot 'nope.h5' does not exist"),
        (["train", ["--weights", "nope/model.h5", "csv", annotations, classes]], "no such file 'nope/model.h5'"),
        (["train", ["--config", "nope.ini", "csv", annotations, classes]], "config file 'nope.ini' does not exist"),
        (["train", ["coco", "nope-coco"]], "COCO dataset folder 'nope-coco' does not exist"),
        (["train", ["pascal", annotations]], f"Pascal VOC dataset folder '{annotations}' is a file, not a folder"),
        (["evaluate", ["kitti", "nope-kitti", str(model)]], "KITTI dataset folder 'nope-kitti' does not exist"),
        (["evaluate", ["csv", annotations, classes, "nope.h5"]], "model 'nope.h5' does not exist"),
        (["predict", ["nope.keras", image]], "model 'nope.keras' does not exist"),
        (["predict", [str(model), "nope.png"]], "input 'nope.png' does not exist"),
        (["predict", ["--classes", "nope.csv", str(model), image]], "classes file 'nope.csv' does not exist"),
        (["convert_model", ["nope.h5", "out.keras"]], "model 'nope.h5' does not exist"),
        (["debug", ["oid", "nope-oid"]], "Open Images dataset folder 'nope-oid' does not exist"),
        (["debug", ["demo", "--data-dir", annotations]], f"demo data folder '{annotations}' is a file, not a folder"),
    ]  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", MISSING_FILE_SCRIPT, json.dumps([case for case, _ in cases])],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == len(cases), result.stderr
    for (status, tensorflow_loaded), line, (case, message) in zip(json.loads(result.stdout), errors, cases):
        assert status == 1 and message in line, (case, line)
        assert not tensorflow_loaded, case


def _run(module, argv, folder):
    return subprocess.Popen(
        [sys.executable, "-m", f"keras_retinanet.bin.{module}", *argv],
        cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"},
    )  # fmt: skip


def test_tensorflow_start_up_noise_only_with_verbose(dataset, tmp_path):
    """A run that loads TensorFlow and then fails on a corrupt model file: its error shows, TF's notices do not."""
    annotations, classes = dataset
    (tmp_path / "corrupt.h5").write_bytes(b"garbage")
    argv = ["csv", annotations, classes, "corrupt.h5"]
    quiet, verbose = _run("evaluate", argv, tmp_path), _run("evaluate", ["--verbose", *argv], tmp_path)
    quiet_out, quiet_err = quiet.communicate(timeout=300)
    verbose_out, verbose_err = verbose.communicate(timeout=300)
    assert quiet.returncode == 1 and verbose.returncode == 1
    assert quiet_err.strip().splitlines() == [line for line in quiet_err.splitlines() if line.startswith("error:")]
    assert len(quiet_err.strip().splitlines()) == 1 and "corrupt.h5" in quiet_err, quiet_err
    assert not [noise for noise in TF_NOISE if noise in quiet_err + quiet_out]
    assert "debug: TensorFlow " in verbose_out  # --verbose shows the package's DEBUG messages
    if not [noise for noise in TF_NOISE if noise in verbose_err]:
        pytest.skip("this TensorFlow prints none of the known start-up notices: nothing to filter")
    assert "corrupt.h5" in verbose_err.strip().splitlines()[-1]


def test_console_handler_streams_and_levels(package_logger):
    common.setup_logging(verbose=False)
    logger = logging.getLogger("keras_retinanet.some.module")
    out, err = io.StringIO(), io.StringIO()
    # The streams are looked up when a message is written: these replace sys.stdout/stderr after setup.
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        logger.debug("hidden")
        logger.info("Wrote model.keras")
        logger.warning("cached file fails its checksum")
        package_logger.setLevel(logging.WARNING)  # how a library user silences the package
        logger.info("silenced")
        common.setup_logging(verbose=True)
        logger.debug("shown")
    assert out.getvalue() == "Wrote model.keras\ndebug: shown\n"
    assert err.getvalue() == "warning: cached file fails its checksum\n"


def test_no_duplicate_lines_over_two_main_calls(dataset, tmp_path, capsys, package_logger):
    argv = [
        "--backbone", "mobilenet128_0.25", "--image-min-side", "96", "--image-max-side", "96", "--max-images", "1",
        "--no-gui", "--output-dir", str(tmp_path / "drawn"), "csv", *dataset,
    ]  # fmt: skip
    for _ in range(2):
        debug_command.main(argv)
        lines = capsys.readouterr().out.splitlines()
        assert lines.count("0 of 1 annotations have no anchor with IoU >= 0.5") == 1, lines
        assert lines.count(f"Images written to {tmp_path / 'drawn'}") == 1, lines
    handlers = [h for h in package_logger.handlers if type(h).__name__ == "ConsoleHandler"]
    assert len(handlers) == 1


FROZEN_WEIGHTS_SCRIPT = """
import json, os, sys

from keras_retinanet.bin import evaluate, predict, train

seen = {}
for name, module in (("train", train), ("predict", predict), ("evaluate", evaluate)):
    if sys.argv[1] == "unset":
        os.environ.pop("TF_ONEDNN_ASSUME_FROZEN_WEIGHTS", None)
    sys.argv = [f"retinanet-{name}", "--version"]  # run as the command is: no arguments, the command line read
    try:
        module.main()
    except SystemExit:
        pass
    seen[name] = os.environ.get("TF_ONEDNN_ASSUME_FROZEN_WEIGHTS")
print(json.dumps(seen))
"""


@pytest.mark.parametrize("user_value, expected", [("unset", "1"), ("0", "0")])
def test_only_the_inference_commands_let_onednn_assume_frozen_weights(user_value, expected):
    """TensorFlow reads the variable once a process and then keeps the weights each compiled function first saw:
    the inference commands set it in their own process (a user's value wins), training never does."""
    import tomllib

    environment = {k: v for k, v in os.environ.items() if k != "TF_ONEDNN_ASSUME_FROZEN_WEIGHTS"}
    if user_value != "unset":
        environment["TF_ONEDNN_ASSUME_FROZEN_WEIGHTS"] = user_value
    result = subprocess.run([sys.executable, "-c", FROZEN_WEIGHTS_SCRIPT, user_value], capture_output=True,
                            text=True, env=environment, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen == {"train": None if user_value == "unset" else user_value, "predict": expected, "evaluate": expected}
    with open(os.path.join(os.path.dirname(__file__), os.pardir, "pyproject.toml"), "rb") as file:
        scripts = tomllib.load(file)["project"]["scripts"]
    # One entry point per command, the same for the installed command and the checkout's bin/ script.
    assert scripts["retinanet-predict"] == "keras_retinanet.bin.predict:main"
    assert scripts["retinanet-evaluate"] == "keras_retinanet.bin.evaluate:main"
    assert scripts["retinanet-train"] == "keras_retinanet.bin.train:main"


def test_calling_main_from_a_program_leaves_onednn_as_it_is(monkeypatch):
    """``main(args)`` from a program that may also train does not set the process-wide oneDNN variable."""
    from keras_retinanet.bin import predict

    monkeypatch.delenv("TF_ONEDNN_ASSUME_FROZEN_WEIGHTS", raising=False)
    with pytest.raises(SystemExit):
        predict.main(["--version"])
    assert "TF_ONEDNN_ASSUME_FROZEN_WEIGHTS" not in os.environ
