"""The callbacks of a training run: NaN guard, evaluation, TensorBoard, schedule, early stopping, snapshots, record."""

import importlib.util
import logging
import os
from typing import List, Optional, Sequence

import keras

from ..config import RetinaNetConfig
from ..config.defaults import RECIPE_SETTINGS
from ..errors import RetinaNetError
from . import RedirectModel
from .coco import CocoEval
from .ema import SNAPSHOT_STATE_KEY, AverageWeightsIn, AverageWeightsOut
from .eval import Evaluate
from .guard import NonFiniteGuard
from .run_record import STATE_KEY, RunRecord
from .snapshot import Snapshot

logger = logging.getLogger(__name__)

# The metric the best-model snapshot and early stopping follow: every evaluation callback logs it.
MONITORED_METRIC = "mAP"
# keras-retinanet's early stopping: the mAP must improve by this much within this many epochs.
EARLY_STOPPING_PATIENCE = 5
EARLY_STOPPING_MIN_DELTA = 0.01
# Where snapshots go when neither --snapshot-path nor a run folder says (keras-retinanet's default).
FALLBACK_SNAPSHOT_PATH = "./snapshots"


class ExplainedEarlyStopping(keras.callbacks.EarlyStopping):
    """Keras' EarlyStopping that says, when it ends a run, why and how to keep training.

    A run that stops at epoch 6 of 50 without a word looks like a crash or a finished run.
    """

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0:
            logger.info(
                f"Stopped early after epoch {self.stopped_epoch + 1} of {self.params.get('epochs', '?')}: the "
                f"{self.monitor} did not improve by {EARLY_STOPPING_MIN_DELTA:g} in {self.patience} epochs "
                "(keras-retinanet's rule; --no-evaluation trains every epoch)"
            )
        super().on_train_end(logs)


# The key of the recipe's settings in the snapshots' training state (a resumed run takes them).
RECIPE_STATE_KEY = "recipe"


def recipe_settings(config: RetinaNetConfig) -> dict:
    """{'section.name': value} of :data:`RECIPE_SETTINGS`, as JSON holds them."""
    values = {}
    for key in RECIPE_SETTINGS:
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        values[key] = list(value) if isinstance(value, tuple) else value
    return values


def snapshot_folder(config: RetinaNetConfig, run_folder: Optional[str] = None) -> str:
    """``--snapshot-path`` when given, else the run folder (else ``./snapshots``, for callers keeping no record)."""
    return config.training.snapshot_path or run_folder or FALLBACK_SNAPSHOT_PATH


def snapshot_template(config: RetinaNetConfig, run_folder: Optional[str] = None) -> str:
    """keras-retinanet's snapshot names: ``{snapshot folder}/{backbone}_{dataset}_{epoch:02d}``."""
    return os.path.join(
        snapshot_folder(config, run_folder), f"{config.model.backbone}_{config.data.dataset_type}_{{epoch:02d}}"
    )


def create_callbacks(
    config: RetinaNetConfig,
    prediction_model,
    validation_generator,
    resume_state: Optional[dict] = None,
    stream: Optional[dict] = None,
    chief: bool = True,
    workers: int = 1,
    run_folder: Optional[str] = None,
    class_names: Sequence[str] = (),
    command: Optional[Sequence[str]] = None,
) -> List[keras.callbacks.Callback]:
    """NaN guard, evaluation, TensorBoard, learning-rate schedule (plateau), early stopping, snapshots, the run
    record, and the weight average's exchange (``--ema``).

    Under multi-worker training only the chief evaluates and writes TensorBoard logs and
    snapshots; every worker keeps the guard and the learning-rate schedule, which follow
    the loss of the global batch and so decide alike. Early stopping needs the mAP, which
    only the chief has, so it is off when there are several workers (a chief that stopped
    alone would leave the others waiting).

    The order matters: the guard raises before anything sees a broken epoch; with ``--ema`` the averaged weights
    go into the model next (evaluation and snapshots use them) and back out last; the snapshot comes after them, so it records the schedule's state after the epoch and restores
    it, on a resumed run, after the other callbacks reset themselves; the run record comes last,
    so it sees the epoch's mAP and snapshots and its closing lines end the output.

    Args:
        config: the run's configuration.
        prediction_model: the inference model evaluation runs.
        validation_generator: the validation set, or None.
        resume_state: the training state of the snapshot being resumed, or None.
        stream: ``{'start_epoch', 'start_position', 'steps'}`` of the training stream, stored
            in the snapshots so a resumed run continues at the same batch.
        chief: whether this process is the chief (see ``keras_retinanet.distribute.is_chief``).
        workers: number of training processes.
        run_folder: the run folder (:func:`keras_retinanet.callbacks.run_record.choose_run_folder`) on the
            chief, or None for no record; snapshots go there unless ``training.snapshot_path`` is set.
        class_names: the dataset's class names in label order (for the record).
        command: the command line, for the record.
    """
    training = config.training
    callbacks = [NonFiniteGuard()]
    if training.ema:
        callbacks.append(AverageWeightsIn())  # evaluation and the snapshots see the average
    tensorboard = None
    if training.tensorboard_dir and chief:
        if importlib.util.find_spec("tensorboard") is None:  # TensorFlow no longer installs it
            raise RetinaNetError("--tensorboard-dir needs the tensorboard package: pip install tensorboard")
        os.makedirs(training.tensorboard_dir, exist_ok=True)
        tensorboard = keras.callbacks.TensorBoard(
            log_dir=training.tensorboard_dir, histogram_freq=0, update_freq=training.tensorboard_freq
        )

    evaluating = training.evaluation and validation_generator is not None and chief
    evaluation = None
    if evaluating:
        if config.data.dataset_type == "coco":
            evaluation = CocoEval(validation_generator, tensorboard=tensorboard)
        else:
            evaluation = Evaluate(
                validation_generator, tensorboard=tensorboard, weighted_average=training.weighted_average
            )
        callbacks.append(RedirectModel(evaluation, prediction_model))
    if tensorboard is not None:
        callbacks.append(tensorboard)

    stateful = {}
    if training.lr_schedule == "plateau":  # a cosine schedule is the optimizer's, a function of the step
        stateful["reduce_lr"] = keras.callbacks.ReduceLROnPlateau(
            monitor="loss",
            factor=training.reduce_lr_factor,
            patience=training.reduce_lr_patience,
            verbose=1,
            mode="auto",
            min_delta=0.0001,
            cooldown=0,
            min_lr=0,
        )
    if evaluating and workers > 1:
        logger.info("Early stopping is off: with several workers only the chief knows the mAP.")
    elif evaluating:
        stateful["early_stopping"] = ExplainedEarlyStopping(
            monitor=MONITORED_METRIC, patience=EARLY_STOPPING_PATIENCE, mode="max", min_delta=EARLY_STOPPING_MIN_DELTA
        )
    callbacks.extend(stateful.values())

    snapshot = None
    if training.snapshots and chief:
        os.makedirs(snapshot_folder(config, run_folder), exist_ok=True)
        extra_state = {"seed": training.seed, "stream": stream, RECIPE_STATE_KEY: recipe_settings(config)}
        if training.ema:
            extra_state[SNAPSHOT_STATE_KEY] = True
        if run_folder is not None:
            # absolute, so that a run resumed from another working directory still finds its record
            extra_state[STATE_KEY] = os.path.abspath(run_folder)
        snapshot = Snapshot(
            snapshot_template(config, run_folder),
            save_keras=training.save_keras,
            best_monitor=MONITORED_METRIC if evaluating else None,
            stateful_callbacks=stateful,
            extra_state=extra_state,
            resume_state=resume_state,
            keep=training.keep_snapshots,
        )
        callbacks.append(snapshot)
    if run_folder is not None and chief:
        callbacks.append(
            RunRecord(
                run_folder,
                config,
                class_names,
                snapshot_folder=snapshot_folder(config, run_folder) if snapshot is not None else None,
                snapshot=snapshot,
                evaluation=evaluation,
                command=command,
            )
        )
    if training.ema:
        callbacks.append(AverageWeightsOut())
    return callbacks
