"""keras-retinanet 1.0.0's retinanet-train flags: each one accepted with its meaning, or with one line saying what
to use instead (--tensorboard-freq, --multi-gpu-force, --multi-gpu, the bare --imagenet-weights switch)."""

import keras
import pytest

from keras_retinanet.bin import train as train_command
from keras_retinanet.config.defaults import IMAGENET_WEIGHTS_ENV
from keras_retinanet.callbacks.training_run import create_callbacks
from keras_retinanet.engine.initial_weights import imagenet_weights_source

# keras-retinanet 1.0.0's keras_retinanet/bin/train.py, parse_args: the command's flags, then each subcommand's.
KERAS_RETINANET_FLAGS = (
    "--snapshot", "--imagenet-weights", "--weights", "--no-weights", "--backbone", "--batch-size", "--gpu",
    "--multi-gpu", "--multi-gpu-force", "--initial-epoch", "--epochs", "--steps", "--lr", "--optimizer-clipnorm",
    "--snapshot-path", "--tensorboard-dir", "--tensorboard-freq", "--no-snapshots", "--no-evaluation",
    "--freeze-backbone", "--random-transform", "--image-min-side", "--image-max-side", "--no-resize", "--config",
    "--weighted-average", "--compute-val-loss", "--reduce-lr-patience", "--reduce-lr-factor", "--group-method",
    "--multiprocessing", "--workers", "--max-queue-size",
)  # fmt: skip
KERAS_RETINANET_SUBCOMMAND_FLAGS = {
    "csv": ("--val-annotations",),
    "pascal": ("--image-extension",),
    "oid": ("--version", "--labels-filter", "--annotation-cache-dir", "--parent-label"),
    "coco": (),
    "kitti": (),
}


class FakeBackbone:
    def imagenet_weights_name(self):
        return "mobilenet128_0.25_imagenet"


def _parse(argv):
    return train_command.parse_args(argv)


def _error(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_command.main(argv)
    assert exit_info.value.code in (1, 2)
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_every_keras_retinanet_flag_is_an_option():
    parser_holder = {}
    real = train_command.parsing.command_parser

    def keep(*args, **kwargs):
        parser_holder["parser"] = real(*args, **kwargs)
        return parser_holder["parser"]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train_command.parsing, "command_parser", keep)
        _parse(["demo"])
    parser = parser_holder["parser"]
    missing = [flag for flag in KERAS_RETINANET_FLAGS if flag not in parser._option_string_actions]
    assert missing == []
    subcommands = parser._subcommands().choices
    for name, flags in KERAS_RETINANET_SUBCOMMAND_FLAGS.items():
        assert [flag for flag in flags if flag not in subcommands[name]._option_string_actions] == [], name


@pytest.mark.parametrize("given, expected", [(None, "epoch"), ("epoch", "epoch"), ("batch", "batch"), ("250", 250)])
def test_tensorboard_freq_is_tensorboards_update_freq(given, expected, tmp_path):
    argv = ["--tensorboard-dir", str(tmp_path / "logs"), "--no-snapshots", "--no-evaluation", "demo"]
    config = _parse((["--tensorboard-freq", given] if given else []) + argv).config
    assert config.training.tensorboard_freq == expected
    (tensorboard,) = [c for c in create_callbacks(config, None, None) if isinstance(c, keras.callbacks.TensorBoard)]
    # Keras keeps 'epoch' as is and counts 'batch' as every 1 batch
    assert tensorboard.update_freq == {"batch": 1}.get(expected, expected)
    assert tensorboard.log_dir == str(tmp_path / "logs")


@pytest.mark.parametrize("value", ["weekly", "0", "-5"])
def test_a_tensorboard_freq_that_is_none_of_the_three_is_a_one_line_error(value, capsys):
    assert _error(["--tensorboard-freq", value, "demo"], capsys).endswith(
        f"argument --tensorboard-freq: expected 'epoch', 'batch' or a number of batches, not '{value}'"
    )


def _notes(argv, capsys, tmp_path):
    """The note lines of a run whose dataset is missing: the notes come once the arguments are read, then the
    missing file ends the run before TensorFlow loads."""
    missing = str(tmp_path / "missing.csv")
    with pytest.raises(SystemExit):
        train_command.main([*argv, "csv", missing, missing])
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("note: ")]


def test_tensorboard_freq_without_a_folder_says_it_does_nothing(capsys, tmp_path):
    assert _notes(["--tensorboard-freq", "batch"], capsys, tmp_path) == [
        "note: --tensorboard-freq does nothing without --tensorboard-dir"
    ]
    assert _notes(["--tensorboard-freq", "batch", "--tensorboard-dir", str(tmp_path)], capsys, tmp_path) == []


def test_multi_gpu_force_is_accepted_with_a_note(capsys, tmp_path):
    assert _notes(["--multi-gpu-force"], capsys, tmp_path) == [
        "note: --multi-gpu-force does nothing here: --strategy mirrored trains on several GPUs without it"
    ]
    assert _notes(["--multi-gpu", "1"], capsys, tmp_path) == []


def test_multiprocessing_is_accepted_and_said_to_be_ignored(capsys, tmp_path):
    """keras-retinanet passed it to fit_generator (worker processes); here tf.data's threads prepare the batches."""
    assert _notes(["--multiprocessing", "--workers", "2"], capsys, tmp_path) == [
        "note: --multiprocessing is ignored: tf.data prepares the batches in threads (--workers, --max-queue-size), "
        "not in keras-retinanet's worker processes"
    ]
    assert _notes(["--workers", "2"], capsys, tmp_path) == []


@pytest.mark.parametrize("count", ["0", "1"])
def test_multi_gpu_of_one_device_is_keras_retinanets_single_model(count):
    assert _parse(["--multi-gpu", count, "demo"]).config.training.strategy == "auto"


def test_multi_gpu_on_several_says_what_to_use_instead(capsys):
    line = _error(["--multi-gpu", "2", "--multi-gpu-force", "demo"], capsys)
    assert line.startswith("error: --multi-gpu 2: ") and "use --strategy mirrored" in line and "--gpu 0,1" in line


@pytest.mark.parametrize("argv", [
    ["--imagenet-weights", "csv", "a.csv", "c.csv"],  # right before the subcommand: 'csv' is not its value
    ["--imagenet-weights", "--epochs", "2", "csv", "a.csv", "c.csv"],
])  # fmt: skip
def test_the_bare_imagenet_weights_switch_means_the_backbones_own(argv, monkeypatch):
    monkeypatch.delenv(IMAGENET_WEIGHTS_ENV, raising=False)
    config = _parse(argv).config
    assert config.data.dataset.type == "csv" and config.data.dataset.annotations == "a.csv"
    assert imagenet_weights_source(config, FakeBackbone()) == (
        "mobilenet128_0.25_imagenet", "--imagenet-weights: the backbone's default"
    )  # fmt: skip


def test_the_bare_switch_wins_over_the_demo_preset_and_yields_to_the_environment(monkeypatch):
    monkeypatch.delenv(IMAGENET_WEIGHTS_ENV, raising=False)
    demo = _parse(["demo"]).config
    assert imagenet_weights_source(demo, FakeBackbone()) == (None, "the demo preset")
    switched = _parse(["--imagenet-weights", "demo"]).config
    assert imagenet_weights_source(switched, FakeBackbone())[0] == "mobilenet128_0.25_imagenet"
    # the environment replaces the default, also when the switch asks for it (a machine without internet access)
    monkeypatch.setenv(IMAGENET_WEIGHTS_ENV, "none")
    assert imagenet_weights_source(switched, FakeBackbone()) == (None, f"{IMAGENET_WEIGHTS_ENV}=none")
    # a value is still a value
    named = _parse(["--imagenet-weights", "resnet50_imagenet", "csv", "a.csv", "c.csv"]).config
    assert imagenet_weights_source(named, FakeBackbone()) == ("resnet50_imagenet", "--imagenet-weights")


def test_a_snapshot_that_is_an_inference_model_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    """models.assert_training_model's ModelError, reported by the command as its one-line error (exit status 1)."""
    import cv2
    import numpy as np

    from keras_retinanet import models

    monkeypatch.chdir(tmp_path)
    models.convert_model(models.backbone("mobilenet128_0.25").retinanet(num_classes=1)).save("inference.keras")
    cv2.imwrite("image.png", np.full((96, 96, 3), 128, np.uint8))
    (tmp_path / "annotations.csv").write_text("image.png,10,10,50,50,thing\n")
    (tmp_path / "classes.csv").write_text("thing,0\n")
    argv = ["--snapshot", "inference.keras", "--no-snapshots", "--no-evaluation", "--epochs", "1", "--steps", "1",
            "csv", "annotations.csv", "classes.csv"]  # fmt: skip
    line = _error(argv, capsys)
    assert line.startswith("error: model 'retinanet-bbox' is not a RetinaNet training model: it has outputs")
