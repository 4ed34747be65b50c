"""The callbacks of a training run: NaN guard, evaluation, TensorBoard, schedule, early stopping, snapshots."""

import importlib.util
import os
from typing import List, Optional

import keras

from ..callbacks import RedirectModel
from ..callbacks.coco import CocoEval
from ..callbacks.eval import Evaluate
from ..callbacks.guard import NonFiniteGuard
from ..callbacks.snapshot import Snapshot
from ..config import RetinaNetConfig
from ..errors import RetinaNetError

# The metric the best-model snapshot and early stopping follow: every evaluation callback logs it.
MONITORED_METRIC = "mAP"


def snapshot_template(config: RetinaNetConfig) -> str:
    """keras-retinanet's snapshot names: ``{snapshot_path}/{backbone}_{dataset}_{epoch:02d}``."""
    return os.path.join(
        config.training.snapshot_path, f"{config.model.backbone}_{config.data.dataset_type}_{{epoch:02d}}"
    )


def create_callbacks(
    config: RetinaNetConfig,
    prediction_model,
    validation_generator,
    resume_state: Optional[dict] = None,
    stream: Optional[dict] = None,
    chief: bool = True,
    workers: int = 1,
) -> List[keras.callbacks.Callback]:
    """NaN guard, evaluation, TensorBoard, learning-rate schedule, early stopping and snapshots.

    Under multi-worker training only the chief evaluates and writes TensorBoard logs and
    snapshots; every worker keeps the guard and the learning-rate schedule, which follow
    the loss of the global batch and so decide alike. Early stopping needs the mAP, which
    only the chief has, so it is off when there are several workers (a chief that stopped
    alone would leave the others waiting).

    The order matters: the guard raises before anything sees a broken epoch; the
    snapshot comes last, so it records the schedule's state after the epoch and restores
    it, on a resumed run, after the other callbacks reset themselves.

    Args:
        config: the run's configuration.
        prediction_model: the inference model evaluation runs.
        validation_generator: the validation set, or None.
        resume_state: the training state of the snapshot being resumed, or None.
        stream: ``{'start_epoch', 'start_position', 'steps'}`` of the training stream, stored
            in the snapshots so a resumed run continues at the same batch.
        chief: whether this process is the chief (see ``keras_retinanet.distribute.is_chief``).
        workers: number of training processes.
    """
    training = config.training
    callbacks = [NonFiniteGuard()]
    tensorboard = None
    if training.tensorboard_dir and chief:
        if importlib.util.find_spec("tensorboard") is None:  # TensorFlow no longer installs it
            raise RetinaNetError("--tensorboard-dir needs the tensorboard package: pip install tensorboard")
        os.makedirs(training.tensorboard_dir, exist_ok=True)
        tensorboard = keras.callbacks.TensorBoard(log_dir=training.tensorboard_dir, histogram_freq=0)

    evaluating = training.evaluation and validation_generator is not None and chief
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

    stateful = {
        "reduce_lr": keras.callbacks.ReduceLROnPlateau(
            monitor="loss",
            factor=training.reduce_lr_factor,
            patience=training.reduce_lr_patience,
            verbose=1,
            mode="auto",
            min_delta=0.0001,
            cooldown=0,
            min_lr=0,
        )
    }
    if evaluating and workers > 1:
        print("Early stopping is off: with several workers only the chief knows the mAP.")
    elif evaluating:
        stateful["early_stopping"] = keras.callbacks.EarlyStopping(
            monitor=MONITORED_METRIC, patience=5, mode="max", min_delta=0.01
        )
    callbacks.extend(stateful.values())

    if training.snapshots and chief:
        os.makedirs(training.snapshot_path, exist_ok=True)
        callbacks.append(
            Snapshot(
                snapshot_template(config),
                save_keras=training.save_keras,
                best_monitor=MONITORED_METRIC if evaluating else None,
                stateful_callbacks=stateful,
                extra_state={"seed": training.seed, "stream": stream},
                resume_state=resume_state,
            )
        )
    return callbacks
