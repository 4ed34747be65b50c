"""The record a training run leaves: one folder per run with ``config.json``, ``metrics.csv`` and ``curves.png``.

keras-retinanet kept a run's snapshots in ``./snapshots``; here every ``retinanet-train`` run gets a folder of its
own there that the next run does not overwrite, in the manner of ultralytics' ``runs/detect/trainN`` and
detectron2's OUTPUT_DIR (``--run-dir DIR``, else the first free one of ``snapshots/{backbone}_{dataset}``,
``..._2``, ``..._3``, ..., relative to the working directory), holding

- ``config.json``: the :class:`RetinaNetConfig` (``to_json``; ``RetinaNetConfig.from_json`` reads the file back)
  plus a ``run`` section: package version, command line, start time, class names, seed, folders, resumes;
- ``metrics.csv``: one row per epoch (epoch, time_s, lr, the losses, the mAP and each class's ``AP/<name>``);
- ``curves.png``: the losses and the mAP against the epoch, redrawn after every epoch;
- the snapshots, unless ``--snapshot-path`` sends them elsewhere (``config.json`` says where).

Every file is replaced atomically, so a killed run leaves the record of its last complete epoch. A resumed run
continues the record of the run it resumes (the snapshots store the folder).
"""

import csv
import datetime
import io
import json
import logging
import math
import os
import shlex
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import keras
import numpy as np

from .. import __version__
from ..atomic_files import claim_new_folder, write_bytes_atomically
from ..config import RetinaNetConfig
from ..config.defaults import RUNS_FOLDER
from ..errors import RetinaNetError
from .curves import write_curves

logger = logging.getLogger(__name__)

RUNS_ROOT = RUNS_FOLDER  # "snapshots": keras-retinanet's snapshot folder (its --snapshot-path default)
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.csv"
CURVES_FILE = "curves.png"
# The key of the run folder in the snapshots' training state (Snapshot's extra_state).
STATE_KEY = "run_dir"
# metrics.csv's first columns; the validation losses (--compute-val-loss), the mAP and the per-class APs follow.
LEADING_COLUMNS = ("epoch", "time_s", "lr", "loss", "classification_loss", "regression_loss")
LOSS_ORDER = LEADING_COLUMNS[3:] + ("val_loss", "val_classification_loss", "val_regression_loss")
MAP_COLUMN = "mAP"
CLASS_AP_PREFIX = "AP/"


class RunFolderError(RetinaNetError):
    """A run folder that cannot be used (e.g. ``--run-dir`` names a file)."""


def display_path(path: str) -> str:
    """``path`` relative to the working directory when it lies inside it, else absolute."""
    absolute = os.path.abspath(path)
    relative = os.path.relpath(absolute)
    return absolute if relative == ".." or relative.startswith(".." + os.sep) else relative


def default_run_name(config: RetinaNetConfig) -> str:
    """``{backbone}_{dataset}``, as keras-retinanet named the snapshots (e.g. 'resnet50_csv')."""
    return f"{config.model.backbone}_{config.data.dataset_type}"


def choose_run_folder(config: RetinaNetConfig, resume_state: Optional[dict] = None) -> str:
    """The run's folder, created: ``training.run_dir`` if set, else the resumed run's, else a new one.

    Call it once, at the start, on the chief only.

    Args:
        config: the run's configuration.
        resume_state: the training state of the snapshot being resumed (its ``run_dir``), or None.

    Raises:
        RunFolderError: ``training.run_dir`` is a file.
    """
    chosen = config.training.run_dir
    if chosen:
        if os.path.exists(chosen) and not os.path.isdir(chosen):
            raise RunFolderError(f"--run-dir {chosen}: a file, not a folder")
        os.makedirs(chosen, exist_ok=True)
        return chosen
    stored = (resume_state or {}).get(STATE_KEY)
    if stored and os.path.isdir(stored):
        return stored
    folder = claim_new_folder(RUNS_ROOT, default_run_name(config))
    if stored:
        logger.warning(
            "The run folder %s of %s no longer exists; this run records in a new one, %s",
            stored, config.training.snapshot, display_path(folder),
        )  # fmt: skip
    return folder


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def _number(value) -> Optional[float]:
    """A log value as a float, or None for what is not a single number."""
    if value is None:
        return None
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return float(array) if array.ndim == 0 else None


def _text(value) -> str:
    """A metrics.csv cell: numbers to 6 significant digits; text (rows kept from the file) as it was."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    number = float(value)
    return format(number, ".6g") if math.isfinite(number) else str(number)


def read_metrics(path: str) -> Tuple[List[str], List[Dict[str, str]]]:
    """(columns, rows) of a metrics.csv; rows are dicts column -> text; a missing file is ([], [])."""
    if not os.path.exists(path):
        return [], []
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        rows = [dict(row) for row in reader]
        return list(reader.fieldnames or []), rows


def _epoch_of(row: Dict[str, Any]) -> Optional[int]:
    try:
        return int(float(row["epoch"]))
    except (KeyError, TypeError, ValueError):
        return None


def best_epoch(rows: Sequence[Dict[str, Any]]) -> Optional[Tuple[int, float]]:
    """(epoch, mAP) of the first row with the highest mAP (the one the '_best' snapshot keeps), or None."""
    best = None
    for row in rows:
        text = row.get(MAP_COLUMN)
        value, epoch = (None if text is None or text == "" else _number(text)), _epoch_of(row)
        if value is not None and math.isfinite(value) and epoch is not None and (best is None or value > best[1]):
            best = (epoch, value)
    return best


class RunRecord(keras.callbacks.Callback):
    """Write the run's ``config.json`` at the start, and ``metrics.csv`` and ``curves.png`` after every epoch.

    Put it last: it reads the mAP the evaluation put in the logs and the snapshots the Snapshot callback
    saved, and its closing lines (run folder, best model) come after everything else the run prints.

    Args:
        folder: the run folder (:func:`choose_run_folder`).
        config: the run's configuration (resumed epoch and seed already set).
        class_names: the dataset's class names in label order.
        snapshot_folder: where the snapshots go, or None when none are saved.
        snapshot: the :class:`keras_retinanet.callbacks.snapshot.Snapshot` callback, or None.
        evaluation: the evaluation callback; its ``class_average_precisions`` ({name: AP}) after each
            epoch give the ``AP/<name>`` columns. None without evaluation.
        command: the command line (list of words), or None.
    """

    def __init__(
        self,
        folder: str,
        config: RetinaNetConfig,
        class_names: Sequence[str],
        snapshot_folder: Optional[str] = None,
        snapshot=None,
        evaluation=None,
        command: Optional[Sequence[str]] = None,
    ):
        super().__init__()
        self.folder = folder
        self.config = config
        self.class_names = [str(name) for name in class_names]
        self.snapshot_folder = snapshot_folder
        self.snapshot = snapshot
        self.evaluation = evaluation
        self.command = shlex.join(command) if command is not None else None
        self.columns: List[str] = list(LEADING_COLUMNS)
        self.rows: List[Dict[str, Any]] = []
        self._epoch_start = None
        self._lr = None
        self._curves_failed = False

    def path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    @property
    def resumed(self) -> bool:
        return bool(self.config.training.snapshot)

    def run_facts(self) -> Dict[str, Any]:
        """The ``run`` section of config.json."""
        return {
            "version": __version__,
            "command": self.command,
            "started": _now(),
            "run_dir": os.path.abspath(self.folder),
            "class_names": self.class_names,
            "seed": self.config.training.seed,
            "initial_epoch": self.config.training.initial_epoch,
            "snapshot_folder": os.path.abspath(self.snapshot_folder) if self.snapshot_folder else None,
            "resumed": [],
        }

    def _resume_entry(self) -> Dict[str, Any]:
        training = self.config.training
        return {
            "time": _now(),
            "snapshot": os.path.abspath(training.snapshot),
            "initial_epoch": training.initial_epoch,
            "epochs": training.epochs,
            "command": self.command,
            "snapshot_folder": os.path.abspath(self.snapshot_folder) if self.snapshot_folder else None,
        }

    def _start_config(self) -> None:
        """Write config.json; a resumed run keeps the one there and adds itself to ``run.resumed``."""
        path = self.path(CONFIG_FILE)
        existing = None
        if os.path.exists(path):
            try:
                with open(path) as handle:
                    existing = json.load(handle)
            except (OSError, ValueError) as error:
                logger.warning("%s cannot be read (%s); a new one replaces it", path, error)
        if self.resumed and isinstance(existing, dict) and isinstance(existing.get("run"), dict):
            record = existing
            record["run"].setdefault("resumed", []).append(self._resume_entry())
        else:
            if existing is not None:
                logger.warning("%s held the record of another run; this run's replaces it", display_path(self.folder))
            record = json.loads(self.config.to_json())
            record["run"] = self.run_facts()
            if self.resumed:
                record["run"]["resumed"].append(self._resume_entry())
        write_bytes_atomically((json.dumps(record, indent=2, sort_keys=True) + "\n").encode(), path)

    def _start_metrics(self) -> None:
        """Keep the rows of the epochs a resumed run does not redo; a new run starts an empty table.

        A resumed run leaves the file as it is until its first epoch ends: one that diverges or is
        killed before that does not cost the record the rows of the epochs it was to redo.
        """
        if not self.resumed:
            self.rows = []
            self._write_metrics()
            return
        columns, rows = read_metrics(self.path(METRICS_FILE))
        initial_epoch = self.config.training.initial_epoch
        self.rows = [row for row in rows if 1 <= (_epoch_of(row) or 0) <= initial_epoch]
        self.columns = columns + [column for column in self.columns if column not in columns]

    def on_train_begin(self, logs=None):
        os.makedirs(self.folder, exist_ok=True)
        self._start_config()
        self._start_metrics()
        kept = f", continuing its {len(self.rows)} epoch(s)" if self.rows else ""
        logger.info("Recording the run in %s%s", display_path(self.folder), kept)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.monotonic()
        self._lr = self._learning_rate()

    def _learning_rate(self) -> Optional[float]:
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            return None
        return _number(keras.ops.convert_to_numpy(optimizer.learning_rate))

    def epoch_row(self, epoch: int, logs: Dict[str, Any]) -> Dict[str, Any]:
        """metrics.csv's row for 0-based ``epoch`` from Keras' logs and the evaluation callback."""
        elapsed = time.monotonic() - self._epoch_start if self._epoch_start is not None else None
        row: Dict[str, Any] = {"epoch": epoch + 1, "time_s": elapsed, "lr": self._lr}
        # The losses Keras logged (val_* with --compute-val-loss); the COCO stats stay in the logs only.
        order = {name: index for index, name in enumerate(LOSS_ORDER)}
        for key in sorted(logs, key=lambda name: (order.get(name, len(order)), name)):
            if key.endswith("loss") and _number(logs[key]) is not None:
                row[key] = _number(logs[key])
        if _number(logs.get(MAP_COLUMN)) is not None:
            row[MAP_COLUMN] = _number(logs[MAP_COLUMN])
            per_class = getattr(self.evaluation, "class_average_precisions", None) or {}
            for name in self.class_names:
                if name in per_class:
                    row[CLASS_AP_PREFIX + name] = float(per_class[name])
        return row

    def on_epoch_end(self, epoch, logs=None):
        row = self.epoch_row(epoch, dict(logs or {}))
        self.rows = [kept for kept in self.rows if _epoch_of(kept) != row["epoch"]] + [row]
        self.columns += [column for column in row if column not in self.columns]
        self._write_metrics()
        self._draw_curves()

    def _write_metrics(self) -> None:
        stream = io.StringIO()
        writer = csv.DictWriter(stream, fieldnames=self.columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({column: _text(row.get(column)) if column in row else "" for column in self.columns})
        write_bytes_atomically(stream.getvalue().encode(), self.path(METRICS_FILE))

    def _draw_curves(self) -> None:
        try:
            write_curves(self.rows, self.path(CURVES_FILE), title=f"{os.path.basename(self.folder)} - losses and mAP")
        except Exception as error:  # noqa: BLE001 - a plot that fails must not end a long training
            if not self._curves_failed:
                logger.warning("%s not drawn: %s", self.path(CURVES_FILE), error)
            self._curves_failed = True

    def closing_lines(self) -> List[str]:
        """'Run folder: ...' and the best model with its mAP and epoch (or the last snapshot)."""
        lines = [f"Run folder: {display_path(self.folder)}"]
        best = best_epoch(self.rows)
        template = getattr(self.snapshot, "path_template", None)
        if best is not None:
            epoch, value = best
            best_file = template.replace("{epoch:02d}", "best") + ".h5" if template else None
            if best_file and os.path.exists(best_file):
                lines.append(f"Best model: {display_path(best_file)} (mAP {value:.4f}, epoch {epoch})")
            else:
                lines.append(f"Best mAP: {value:.4f} (epoch {epoch}; no snapshot saved)")
        else:
            saved = [path for path in getattr(self.snapshot, "saved", []) if path.endswith(".h5")]
            if saved:
                last = self.rows[-1]["epoch"] if self.rows else None
                lines.append(f"Last snapshot: {display_path(saved[-1])} (epoch {last}; no evaluation)")
            else:
                lines.append("No snapshot saved")
        return lines

    def on_train_end(self, logs=None):
        for line in self.closing_lines():
            logger.info(line)
