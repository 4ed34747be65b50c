"""The training model's optimizer, in one place: how it is made, compiled, swapped and how its averaged weights are read.

* :class:`GlobalBatchAdam`: Adam (and, with ``weight_decay``, AdamW) whose gradient clipping applies to the whole
  global batch under ``tf.distribute``; weight decay leaves norms and biases alone; its moving average of the
  weights (``use_ema``) can ramp its decay up as ultralytics' does.
* :func:`learning_rate_schedule`: keras-retinanet's constant rate (the plateau callback lowers it) or linear warm-up
  then cosine decay.
* :func:`make_optimizer` / :func:`training_optimizer`: the optimizer of a run's settings; :func:`compile_training_model`:
  the one compile of a training model (focal loss, the box loss, the optimizer).
* :func:`rebuild_optimizer`: a fresh optimizer that takes over a compiled one's state (Keras 3 ``.h5`` files, resumed
  keras-retinanet snapshots, ``--lr`` on resume); :func:`swap_average_weights`: the averaged weights in and out of
  the model (evaluation and snapshots use them).

A resumed run is exact: the schedule is a function of the step count, and every variable (moments, averages, step)
is saved with the model and taken over by path.
"""

import logging
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from . import losses
from .config import RetinaNetConfig
from .config.defaults import COSINE_FINAL_FRACTION

logger = logging.getLogger(__name__)

PACKAGE = "keras_retinanet"
# The warm-up starts at this fraction of the learning rate (torchvision's detection references' warmup factor).
WARMUP_START_FRACTION = 0.001


@keras.saving.register_keras_serializable(package=PACKAGE)
class GlobalBatchAdam(keras.optimizers.Adam):
    """Adam whose ``clipnorm``/``global_clipnorm``/``clipvalue`` apply to the global batch's gradients.

    Under ``tf.distribute`` Keras clips each replica's gradients and then sums them, which
    is neither what one device does nor independent of how the batch is split. Here the
    gradients are summed over replicas first and clipped once. The sum is then divided by
    the number of replicas, because Keras sums the (now equal) gradients of all replicas
    once more before the update. On one device it is exactly Adam.

    With ``weight_decay`` it is AdamW (Keras' decoupled decay, ``w -= lr * weight_decay * w``), which here leaves out
    every variable of rank 0 or 1: biases and the scales and offsets of BatchNorm and GroupNorm.

    Args:
        ema_warmup_steps: with ``use_ema``, the moving average's decay at step t (0 at the first) is
            ``ema_momentum * (1 - exp(-t / ema_warmup_steps))`` (ultralytics' ramp), so that a short run's average
            is not held back by its first weights; None: Keras' constant ``ema_momentum``.
        **kwargs: ``keras.optimizers.Adam``'s.
    """

    def __init__(self, *args, ema_warmup_steps: Optional[float] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.ema_warmup_steps = None if ema_warmup_steps is None else float(ema_warmup_steps)

    def get_config(self):
        config = super().get_config()
        config["ema_warmup_steps"] = self.ema_warmup_steps
        return config

    def _clip_gradients(self, grads):
        clipping = any(value for value in (self.clipnorm, self.global_clipnorm, self.clipvalue))
        context = tf.distribute.get_replica_context()
        if not clipping or context is None or context.num_replicas_in_sync == 1:
            return super()._clip_gradients(grads)
        replicas = context.num_replicas_in_sync
        present = [index for index, gradient in enumerate(grads) if gradient is not None]
        summed = context.all_reduce(tf.distribute.ReduceOp.SUM, [grads[index] for index in present])
        clipped = super()._clip_gradients(summed)
        result = list(grads)
        for index, gradient in zip(present, clipped):
            result[index] = gradient / tf.cast(replicas, gradient.dtype)
        return result

    def _use_weight_decay(self, variable):
        if len(variable.shape) <= 1:  # biases, norm scales and offsets
            return False
        return super()._use_weight_decay(variable)

    def _update_model_variables_moving_average(self, trainable_variables):
        if not self.use_ema or self.ema_warmup_steps is None:
            return super()._update_model_variables_moving_average(trainable_variables)
        step = keras.ops.cast(self.iterations, "float32")
        momentum = self.ema_momentum * (1.0 - keras.ops.exp(-step / self.ema_warmup_steps))
        for variable, average in zip(trainable_variables, self._model_variables_moving_average):
            if average is not None:
                decay = keras.ops.cast(momentum, variable.dtype)
                average.assign(decay * average + (1.0 - decay) * variable)


def learning_rate_schedule(learning_rate: float, schedule: str = "plateau", warmup_steps: int = 0,
                           total_steps: Optional[int] = None):  # fmt: skip
    """The optimizer's learning rate: a number, or a schedule of the step.

    Args:
        learning_rate: the base rate.
        schedule: 'plateau' (a number; ``ReduceLROnPlateau`` lowers it) or 'cosine': over the first ``warmup_steps``
            a line from ``WARMUP_START_FRACTION * lr`` towards ``lr``, then ``lr * (f + (1 - f) (1 + cos(pi t / T)) / 2)``
            with t the steps after the warm-up, T = ``total_steps - warmup_steps`` and f = ``COSINE_FINAL_FRACTION``,
            held at ``f * lr`` after the last step.
        warmup_steps: steps of the warm-up.
        total_steps: the run's steps (epochs x steps per epoch), for 'cosine'.
    """
    if schedule == "plateau":
        return float(learning_rate)
    if schedule != "cosine":
        raise ValueError(f"unknown learning-rate schedule '{schedule}'; expected plateau or cosine")
    if total_steps is None or total_steps <= warmup_steps:
        raise ValueError(f"a cosine schedule needs more steps ({total_steps}) than its warm-up ({warmup_steps})")
    options = dict(decay_steps=int(total_steps) - int(warmup_steps), alpha=COSINE_FINAL_FRACTION, name="warmup_cosine")
    if warmup_steps:
        return keras.optimizers.schedules.CosineDecay(
            WARMUP_START_FRACTION * learning_rate, warmup_target=float(learning_rate), warmup_steps=int(warmup_steps),
            **options,
        )  # fmt: skip
    return keras.optimizers.schedules.CosineDecay(float(learning_rate), **options)


def warmup_steps_of(config: RetinaNetConfig, total_steps: Optional[int]) -> int:
    """The warm-up of a cosine schedule: ``training.warmup_steps``, or a tenth of a run too short for it (said)."""
    warmup = int(config.training.warmup_steps)
    if config.training.lr_schedule != "cosine" or total_steps is None or warmup < total_steps:
        return warmup
    shorter = int(total_steps) // 10
    logger.warning(f"--warmup-steps {warmup} is as long as the whole run ({total_steps} steps); warming up over "
                   f"{shorter} steps instead")  # fmt: skip
    return shorter


def make_optimizer(
    learning_rate,
    clipnorm: Optional[float],
    weight_decay: Optional[float] = None,
    ema: Optional[float] = None,
    ema_warmup_steps: Optional[float] = None,
) -> GlobalBatchAdam:
    """A :class:`GlobalBatchAdam`: Adam, or AdamW with ``weight_decay``, with a moving average when ``ema`` is given.

    Args:
        learning_rate: a number or a schedule (:func:`learning_rate_schedule`).
        clipnorm: gradient norm clipping of the global batch, or None.
        weight_decay: decoupled weight decay (AdamW), or None.
        ema: decay of the weights' moving average, or None for none.
        ema_warmup_steps: the average's ramp (see :class:`GlobalBatchAdam`).
    """
    averaging = {"use_ema": True, "ema_momentum": float(ema), "ema_warmup_steps": ema_warmup_steps} if ema else {}
    return GlobalBatchAdam(learning_rate=learning_rate, clipnorm=clipnorm, weight_decay=weight_decay, **averaging)


def training_optimizer(config: RetinaNetConfig, total_steps: Optional[int]) -> GlobalBatchAdam:
    """The optimizer a configuration trains with (``total_steps``: the run's, for a cosine schedule)."""
    training = config.training
    rate = learning_rate_schedule(training.lr, training.lr_schedule, warmup_steps_of(config, total_steps), total_steps)
    return make_optimizer(
        rate,
        clipnorm=training.optimizer_clipnorm,
        weight_decay=training.weight_decay if training.optimizer == "adamw" else None,
        ema=training.ema,
        ema_warmup_steps=training.ema_warmup_steps if training.ema else None,
    )


def compile_training_model(
    model: keras.Model,
    learning_rate: float,
    clipnorm: Optional[float],
    box_loss: str = "smooth_l1",
    optimizer: Optional[keras.optimizers.Optimizer] = None,
) -> keras.Model:
    """Compile a RetinaNet training model for training: focal loss, the box loss and :class:`GlobalBatchAdam`.

    The one compile of a training model, for new models (``retinanet-train``) and for
    keras-retinanet snapshots alike. ``GlobalBatchAdam`` clips the gradient of the whole
    global batch, so ``clipnorm`` means the same on one device and on several; on one
    device it is exactly ``keras.optimizers.Adam``.

    Args:
        model: a training model (outputs 'regression' (B, N, 4) and 'classification' (B, N, C)).
        learning_rate: Adam's learning rate (when ``optimizer`` is None).
        clipnorm: gradient norm clipping, or None for none (when ``optimizer`` is None).
        box_loss: 'smooth_l1' (keras-retinanet's) or 'giou' (its targets carry the anchors).
        optimizer: the optimizer (:func:`training_optimizer`), or None for keras-retinanet's Adam.

    Returns:
        the model, compiled without XLA: batches are padded to their largest image, so
        shapes change from batch to batch and XLA would compile again for each.
    """
    model.compile(
        loss={"regression": losses.box_loss(box_loss), "classification": losses.focal()},
        optimizer=optimizer if optimizer is not None else GlobalBatchAdam(learning_rate=learning_rate, clipnorm=clipnorm),
        jit_compile=False,
    )
    return model


def use_box_loss(model, box_loss: str) -> bool:
    """Compile a (resumed) training model with another box loss, keeping its optimizer and state; True if it changed.

    The data follow the run's configuration (GIoU's targets carry the anchors), so the loss must too.
    """
    current = model.loss.get("regression") if isinstance(model.loss, dict) else None
    wanted = losses.box_loss(box_loss)
    if current is not None and type(current) is type(wanted):
        return False
    model.compile(optimizer=model.optimizer, loss={**(model.loss or {}), "regression": wanted}, jit_compile=False)
    return True


def _without_owner(path):
    """'adam_1/conv1_kernel_momentum' -> 'conv1_kernel_momentum': optimizer names get suffixes per process."""
    return path.split("/", 1)[-1]


def rebuild_optimizer(model, optimizer_class=None, stored_values=None, changes=None):
    """Give ``model`` a fresh optimizer of the same settings that takes over the old one's state.

    The one way this package swaps a compiled model's optimizer, for three reasons:

    * a model loaded from a Keras 3 ``.h5`` file, whose restored optimizer ``fit`` refuses
      ("Unknown variable"): :func:`keras_retinanet.checkpoint.rebind_optimizer`;
    * a resumed snapshot compiled with ``keras.optimizers.Adam``, which becomes a
      :class:`GlobalBatchAdam` (:func:`use_global_batch_clipping`);
    * a resumed run given another learning rate (:func:`set_learning_rate`).

    The new optimizer is built on the model's trainable variables and takes every value
    (step count, learning rate, moment estimates, weight averages) by variable path, the
    optimizer's own name left out. Call it in the strategy's scope.

    Args:
        model: a compiled Keras model.
        optimizer_class: class of the new optimizer (default: the current one's).
        stored_values: dict variable path -> array that overrides the current optimizer's
            values (e.g. read from the model file).
        changes: settings of the new optimizer that differ from the current one's (e.g. its learning rate).

    Returns:
        number of optimizer variables that took a value.
    """
    current = model.optimizer
    optimizer_class = optimizer_class or current.__class__
    optimizer = optimizer_class.from_config({**current.get_config(), **(changes or {})})
    optimizer.build(model.trainable_variables)
    state = {_without_owner(variable.path): np.asarray(variable) for variable in current.variables}
    state.update({_without_owner(path): value for path, value in (stored_values or {}).items()})
    count = 0
    for variable in optimizer.variables:
        if changes and _without_owner(variable.path) == "learning_rate":
            continue  # the new rate, not the stored one
        value = state.get(_without_owner(variable.path))
        if value is not None and tuple(value.shape) == tuple(variable.shape):
            variable.assign(value)
            count += 1
    model.compile(optimizer=optimizer, loss=model.loss, jit_compile=False)
    return count


def use_global_batch_clipping(model):
    """Give a (resumed) model compiled with ``keras.optimizers.Adam`` a :class:`GlobalBatchAdam`.

    The new optimizer has the same settings and takes over the old one's state (step
    count, learning rate, moment estimates; see :func:`rebuild_optimizer`). Call it in the
    strategy's scope. Other optimizers are left as they are.

    Returns:
        the model.
    """
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or type(optimizer) is not keras.optimizers.Adam:
        return model
    rebuild_optimizer(model, GlobalBatchAdam)
    return model


def set_learning_rate(model, config: RetinaNetConfig, total_steps: Optional[int]) -> None:
    """A resumed model given ``--lr``: its rate (a constant) or its schedule's base (a new schedule, same step)."""
    optimizer = model.optimizer
    if not isinstance(optimizer._learning_rate, keras.optimizers.schedules.LearningRateSchedule):
        optimizer.learning_rate = config.training.lr
        return
    training = config.training
    schedule = learning_rate_schedule(training.lr, training.lr_schedule, warmup_steps_of(config, total_steps), total_steps)
    rebuild_optimizer(model, changes={"learning_rate": keras.optimizers.schedules.serialize(schedule)})


def _averaging_optimizer(optimizer):
    """The optimizer that holds the weights' averages (inside a loss-scale wrapper), or None without averaging."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    return inner if getattr(inner, "use_ema", False) and getattr(inner, "built", False) else None


def has_average_weights(model) -> bool:
    """Whether the model's optimizer keeps a moving average of the weights."""
    return _averaging_optimizer(getattr(model, "optimizer", None)) is not None


def swap_average_weights(model) -> bool:
    """Exchange the model's trainable weights with the optimizer's averages of them (exact copies both ways).

    Called twice, the model is as before. Evaluation and snapshots run between a swap in and a swap out, so they see
    the averaged weights while training goes on from its own.

    Returns:
        whether anything was swapped (False: the optimizer keeps no average).
    """
    optimizer = _averaging_optimizer(getattr(model, "optimizer", None))
    if optimizer is None:
        return False
    for variable, average in zip(optimizer._trainable_variables, optimizer._model_variables_moving_average):
        if average is None:
            continue
        own = keras.ops.convert_to_numpy(variable)
        variable.assign(average)
        average.assign(own)
    return True


def total_steps_of(config: RetinaNetConfig, steps_per_epoch: int) -> int:
    """The steps of the whole run (every epoch, those done before a resume included)."""
    return int(config.training.epochs) * int(steps_per_epoch)


__all__ = [
    "GlobalBatchAdam",
    "compile_training_model",
    "has_average_weights",
    "learning_rate_schedule",
    "make_optimizer",
    "rebuild_optimizer",
    "set_learning_rate",
    "swap_average_weights",
    "training_optimizer",
    "use_global_batch_clipping",
]
