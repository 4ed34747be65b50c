"""The run record of retinanet-train: a folder per run with config.json, metrics.csv, curves.png and the snapshots,
a second run in a folder of its own, and a resumed run continuing the record of the run it resumes."""

import csv
import json
import logging
import os
import re

import cv2
import pytest

import keras_retinanet
from keras_retinanet.bin import train as train_command
from keras_retinanet.checkpoint import read_spec
from keras_retinanet.config import DatasetConfig, RetinaNetConfig
from keras_retinanet.atomic_files import claim_new_folder
from keras_retinanet.callbacks.run_record import RUNS_ROOT, RunFolderError, RunRecord, choose_run_folder

from helpers.datasets import write_square_and_bar_dataset

BACKBONE = "mobilenet128_0.25"
NAME = f"{BACKBONE}_csv"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TINY = [
    "--backbone", BACKBONE, "--batch-size", "2", "--steps", "1", "--lr", "1e-3",
    "--image-min-side", "96", "--image-max-side", "96", "--seed", "1", "--workers", "0",
    "--pyramid-feature-size", "16", "--classification-feature-size", "8", "--regression-feature-size", "8",
]  # fmt: skip


class _Messages(logging.Handler):
    """The package's log messages, whatever handlers the commands attach."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _train(argv):
    """Run retinanet-train; returns its log messages (the closing lines are the last two)."""
    package = logging.getLogger("keras_retinanet")
    handler, level = _Messages(), package.level
    package.addHandler(handler)
    package.setLevel(logging.INFO)
    try:
        train_command.main(argv)
    finally:
        package.removeHandler(handler)
        package.setLevel(level)
    return handler.messages


def _read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _rows_of(data):
    return list(csv.DictReader(data.decode().splitlines()))


def _file_bytes(folder):
    return {name: open(os.path.join(folder, name), "rb").read() for name in sorted(os.listdir(folder))}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """In a fresh working directory: a 2-epoch run with evaluation, a second 1-epoch run without evaluation and
    with --snapshot-path, then a resume of the first from its epoch-1 snapshot to epoch 2."""
    cwd = tmp_path_factory.mktemp("cwd")
    annotations, classes = write_square_and_bar_dataset(tmp_path_factory.mktemp("data"))
    dataset = ["csv", annotations, classes, "--val-annotations", annotations]
    first_argv = [*TINY, "--no-weights", "--epochs", "2", *dataset]
    second_snapshots = str(cwd / "elsewhere")
    result = {"cwd": cwd, "first_argv": first_argv, "second_snapshots": second_snapshots}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        result["first_log"] = _train(first_argv)
        first = cwd / "snapshots" / NAME
        result["first_files"] = _file_bytes(first)
        result["second_log"] = _train([*TINY, "--no-weights", "--epochs", "1", "--no-evaluation", "--snapshot-path", second_snapshots,
                                       *dataset])  # fmt: skip
        result["first_files_after_second"] = _file_bytes(first)
        snapshot = str(first / f"{NAME}_01.h5")
        result["resume_log"] = _train([*TINY, "--epochs", "2", "--snapshot", snapshot, *dataset])
    return result


@pytest.mark.slow
def test_a_run_leaves_config_metrics_curves_and_snapshots(runs):
    folder = runs["cwd"] / "snapshots" / NAME
    names = set(runs["first_files"])
    assert {"config.json", "metrics.csv", "curves.png", f"{NAME}_01.h5", f"{NAME}_02.h5", f"{NAME}_best.h5"} <= names
    assert not [name for name in names if ".tmp" in name]  # every file written atomically

    record = json.loads(runs["first_files"]["config.json"])
    expected = train_command.parse_args(runs["first_argv"]).config  # --seed given: the run trains exactly this
    assert RetinaNetConfig.from_dict(record) == expected
    run = record["run"]
    assert run["version"] == keras_retinanet.__version__
    assert run["class_names"] == ["square", "bar"] and run["seed"] == 1
    assert run["command"].startswith("retinanet-train --backbone mobilenet128_0.25 ")
    assert run["snapshot_folder"] == str(folder) and run["run_dir"] == str(folder)

    rows = _rows_of(runs["first_files"]["metrics.csv"])
    assert [row["epoch"] for row in rows] == ["1", "2"]
    for column in ("time_s", "lr", "loss", "classification_loss", "regression_loss", "mAP", "AP/square", "AP/bar"):
        assert all(row[column] != "" for row in rows), column
    assert float(rows[0]["lr"]) == pytest.approx(1e-3)  # --lr, not yet reduced
    for row in rows:
        # Keras' loss is the sum of the two heads' losses
        total = float(row["classification_loss"]) + float(row["regression_loss"])
        assert float(row["loss"]) == pytest.approx(total, rel=1e-4)
        assert 0.0 <= float(row["mAP"]) <= 1.0 and float(row["time_s"]) > 0.0
        # an unweighted mAP is the mean of the two classes' APs
        assert float(row["mAP"]) == pytest.approx((float(row["AP/square"]) + float(row["AP/bar"])) / 2, abs=1e-5)

    # the training boxes' longer sides, unresized (96 px images at 96): four 40 px squares and four 76 px bars
    spec = read_spec(str(folder / f"{NAME}_02.h5"))
    assert spec.object_sizes == pytest.approx({"p50": 58.0, "p90": 76.0, "p95": 76.0, "p99": 76.0, "max": 76.0})

    png = runs["first_files"]["curves.png"]
    assert png.startswith(PNG_SIGNATURE)
    image = cv2.imread(str(folder / "curves.png"))
    assert image is not None and image.shape == (450, 1200, 3)
    assert image.std() > 10  # drawn on, not a blank canvas


@pytest.mark.slow
def test_closing_lines_name_the_run_folder_and_the_best_model(runs):
    rows = _rows_of(runs["first_files"]["metrics.csv"])
    best = max(rows, key=lambda row: (float(row["mAP"]), -int(row["epoch"])))  # the first best epoch
    assert runs["first_log"][-2:] == [
        f"Run folder: {os.path.join('snapshots', NAME)}",
        f"Best model: {os.path.join('snapshots', NAME, NAME + '_best.h5')} "
        f"(mAP {float(best['mAP']):.4f}, epoch {int(best['epoch'])})",
    ]
    # without evaluation: the last snapshot, where --snapshot-path put it
    last = os.path.join(runs["second_snapshots"], f"{NAME}_01.h5")
    assert runs["second_log"][-2:] == [
        f"Run folder: {os.path.join('snapshots', NAME + '_2')}",
        f"Last snapshot: {os.path.join('elsewhere', f'{NAME}_01.h5')} (epoch 1; no evaluation)",
    ]
    assert os.path.exists(last)


@pytest.mark.slow
def test_a_second_run_gets_its_own_folder_and_leaves_the_first_alone(runs):
    assert runs["first_files_after_second"] == runs["first_files"]
    second = runs["cwd"] / "snapshots" / f"{NAME}_2"
    assert sorted(os.listdir(second)) == ["config.json", "curves.png", "metrics.csv"]  # snapshots went elsewhere
    record = json.loads((second / "config.json").read_text())
    assert record["run"]["snapshot_folder"] == runs["second_snapshots"]
    assert record["training"]["snapshot_path"] == runs["second_snapshots"]
    rows = _read_rows(second / "metrics.csv")
    assert [row["epoch"] for row in rows] == ["1"] and "mAP" not in rows[0]


@pytest.mark.slow
def test_a_resumed_run_continues_the_record_of_the_run_it_resumes(runs):
    folder = runs["cwd"] / "snapshots" / NAME
    assert sorted(os.listdir(runs["cwd"] / "snapshots")) == [NAME, f"{NAME}_2"]  # no third folder
    before = _rows_of(runs["first_files"]["metrics.csv"])
    rows = _read_rows(folder / "metrics.csv")
    assert [row["epoch"] for row in rows] == ["1", "2"]  # the redone epoch 2 replaced, not duplicated
    assert rows[0] == before[0]  # epoch 1 is the first run's, untouched
    assert rows[1]["time_s"] != before[1]["time_s"]  # epoch 2 is the resumed run's
    record = json.loads((folder / "config.json").read_text())
    first_record = json.loads(runs["first_files"]["config.json"])
    assert {key: value for key, value in record.items() if key != "run"} == {
        key: value for key, value in first_record.items() if key != "run"
    }  # the first run's configuration is kept
    (resumed,) = record["run"]["resumed"]
    assert resumed["snapshot"] == str(folder / f"{NAME}_01.h5") and resumed["initial_epoch"] == 1
    assert runs["resume_log"][-2].startswith(f"Run folder: {os.path.join('snapshots', NAME)}")
    assert re.fullmatch(rf"Best model: .*{NAME}_best\.h5 \(mAP \d\.\d{{4}}, epoch [12]\)", runs["resume_log"][-1])
    assert cv2.imread(str(folder / "curves.png")) is not None


def test_run_folders_are_numbered_and_an_explicit_one_is_used_as_is(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert [claim_new_folder(RUNS_ROOT, "resnet50_csv") for _ in range(3)] == [
        os.path.join("snapshots", "resnet50_csv"), os.path.join("snapshots", "resnet50_csv_2"), os.path.join("snapshots", "resnet50_csv_3")
    ]  # fmt: skip
    config = RetinaNetConfig.build({"data.dataset": DatasetConfig(type="csv")})
    explicit = config.replace(training={"run_dir": str(tmp_path / "mine" / "run")})
    assert choose_run_folder(explicit) == str(tmp_path / "mine" / "run") and (tmp_path / "mine" / "run").is_dir()
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(RunFolderError, match="a_file: a file, not a folder"):
        choose_run_folder(config.replace(training={"run_dir": str(tmp_path / "a_file")}))
    # a resumed run whose folder is gone records in a new one
    resumed = config.replace(training={"snapshot": "old.h5"})
    assert choose_run_folder(resumed, {"run_dir": str(tmp_path / "gone")}) == os.path.join("snapshots", "resnet50_csv_4")
    assert choose_run_folder(resumed, {"run_dir": str(tmp_path / "mine")}) == str(tmp_path / "mine")


def test_resuming_drops_the_rows_of_the_redone_epochs(tmp_path):
    (tmp_path / "metrics.csv").write_text(
        "epoch,time_s,lr,loss,mAP\n1,10,0.001,3.0,0.1\n2,10,0.001,2.0,0.2\n3,10,0.0001,1.5,0.3\n"
    )
    (tmp_path / "config.json").write_text(json.dumps({"run": {"resumed": []}}))
    config = RetinaNetConfig.build({"training.snapshot": "x_02.h5"}).replace(training={"initial_epoch": 2})
    record = RunRecord(str(tmp_path), config, ["a"])
    record.on_train_begin()
    # nothing dropped yet: a resume that dies before its first epoch ends keeps the whole record
    assert [row["epoch"] for row in _read_rows(tmp_path / "metrics.csv")] == ["1", "2", "3"]
    record.on_epoch_begin(2)
    record.on_epoch_end(2, {"loss": 1.25, "classification_loss": 0.5, "regression_loss": 0.75})
    rows = _read_rows(tmp_path / "metrics.csv")
    assert [(row["epoch"], row["loss"], row["mAP"]) for row in rows] == [
        ("1", "3.0", "0.1"), ("2", "2.0", "0.2"), ("3", "1.25", "")
    ]  # fmt: skip
    assert list(rows[0]) == ["epoch", "time_s", "lr", "loss", "mAP", "classification_loss", "regression_loss"]
    assert len(json.loads((tmp_path / "config.json").read_text())["run"]["resumed"]) == 1
