"""A training run's configuration, resolved once: native scale, resume, seed, batch-norm policy and anchors.

:func:`resolve_run` turns the command's :class:`RetinaNetConfig` into the one the run trains with, and reads what
that takes (the snapshot's training state and spec, the training boxes); :mod:`keras_retinanet.engine.trainer` then
builds each piece from it once, in the manner of detectron2's ``DefaultTrainer.build_*``.
"""

import dataclasses
import logging
import os
import re
from typing import Any, Dict, Optional

import keras
import tensorflow as tf

from .. import distribute, models
from ..callbacks.training_run import RECIPE_STATE_KEY
from ..checkpoint import read_spec, read_training_state
from ..config import DetectorSpec, RetinaNetConfig
from ..config.defaults import RECIPE_SETTINGS
from ..config.spec import reconcile
from ..data.augmentation import training_augmentation
from ..data.cropping import tile_crop_of, with_native_scale
from ..data.diagnostics import DatasetBoxes
from ..losses import needs_anchor_columns
from ..anchors import anchor_targets_bbox, anchor_targets_with_anchors
from ..models.base import Backbone
from ..models.precision import set_precision
from ..readers.from_config import configured_generator
from .auto_anchors import auto_fit_anchors, training_boxes
from .initial_weights import imagenet_weights_source

logger = logging.getLogger(__name__)

MODEL_FILE_EXTENSIONS = (".h5", ".hdf5", ".keras")
# Recipes whose backbone BatchNorm trains when the run starts from random weights (He et al., "Rethinking ImageNet
# Pre-training": frozen statistics of random weights never become right); a --trainable-bn given either way wins.
TRAINABLE_BN_FROM_SCRATCH = ("modern",)


@dataclasses.dataclass
class RunPlan:
    """What :func:`resolve_run` found: the configuration to train with and what was read to resolve it.

    Attributes:
        config: the run's configuration (native scale, the snapshot's settings, epoch, seed, batch norm, anchors).
        backbone: the :class:`Backbone` of ``config.model.backbone``.
        resume_state: the resumed snapshot's training state, or None.
        snapshot_spec: the resumed snapshot's spec, or None (a new run, or a file without one).
        train_generator, validation_generator: the readers (built once; their anchor targets are assigned once the
            model is known, :func:`assign_anchor_targets`); validation may be None.
        boxes: the training boxes as the network sees them (coverage table, ``--auto-anchors``, the spec's sizes).
        global_batch: images per step over all replicas.
    """

    config: RetinaNetConfig
    backbone: Backbone
    resume_state: Optional[Dict[str, Any]]
    snapshot_spec: Optional[DetectorSpec]
    train_generator: Any
    validation_generator: Any
    boxes: DatasetBoxes
    global_batch: int


def snapshot_epoch(path: str) -> int:
    """The epoch in a snapshot's name ('resnet50_csv_07.h5' -> 7), or 0 if it has none."""
    match = re.search(r"_(\d+)\.(h5|keras)$", os.path.basename(path))
    return int(match.group(1)) if match else 0


def resumed_config(config: RetinaNetConfig, state: Optional[dict]) -> RetinaNetConfig:
    """The epoch, seed and recipe of a resumed run, from the snapshot's training state.

    Settings the user gave (--initial-epoch, --seed, a recipe option) win; a snapshot without a state
    (older files, keras-retinanet's) resumes at the epoch in its name with the configuration's recipe.
    """
    state = state or {}
    training = config.training
    changes = {"training": {"initial_epoch": training.initial_epoch, "seed": training.seed}, "data": {}}
    if not config.given("training.initial_epoch"):
        epoch = int(state["epoch"]) if state.get("epoch") is not None else snapshot_epoch(training.snapshot)
        changes["training"]["initial_epoch"] = epoch
    if not config.given("training.seed") and state.get("seed") is not None:
        changes["training"]["seed"] = int(state["seed"])
    for key, value in (state.get(RECIPE_STATE_KEY) or {}).items():
        if key in RECIPE_SETTINGS and not config.given(key):
            section, name = key.split(".")
            changes[section][name] = tuple(value) if isinstance(value, list) else value
    return config.replace(**changes)


def stream_start(config: RetinaNetConfig, state: Optional[dict], steps: int) -> int:
    """The place in the training stream of the first batch: where the resumed run's stream had got to."""
    initial_epoch = config.training.initial_epoch
    stream = (state or {}).get("stream") or {}
    if stream and int(state.get("epoch", -1)) == initial_epoch:
        return int(stream["start_position"]) + (initial_epoch - int(stream["start_epoch"])) * int(stream["steps"])
    return initial_epoch * steps


def batch_norm_policy(config: RetinaNetConfig, backbone: Backbone) -> RetinaNetConfig:
    """The recipe's batch-norm policy: a recipe of :data:`TRAINABLE_BN_FROM_SCRATCH` training a new model from random
    weights trains the backbone's BatchNorm (``--trainable-bn``), unless the user said otherwise."""
    training = config.training
    if (training.recipe not in TRAINABLE_BN_FROM_SCRATCH or config.given("model.trainable_bn") or training.snapshot
            or training.weights or config.model.trainable_bn):  # fmt: skip
        return config
    if imagenet_weights_source(config, backbone)[0] is not None:
        return config
    print(f"BatchNorm: trained (the {training.recipe} recipe from random weights)")
    return config.replace(model={"trainable_bn": True})


def create_generators(config: RetinaNetConfig, backbone, batch_size: Optional[int] = None):
    """Training and validation generators (validation may be None).

    ``batch_size`` is the global batch (per-replica batch times replicas; default the
    configured batch): every batch is padded to its largest image as on one device, and
    the strategy gives each replica a slice of it. The training augmentation of the
    batch at stream position p is drawn from ``(seed, p)`` alone, and so are its crops with tiled
    training. The validation set is cropped too, which bounds the memory of ``--compute-val-loss``;
    the per-epoch evaluation slices whole validation images instead (see ``trainer.evaluation_model``).
    With the GIoU box loss the box targets carry the anchors (``anchors.anchor_targets_with_anchors``).
    """
    data = config.data
    shared = dict(
        batch_size=batch_size or data.batch_size,
        group_method=data.group_method,
        tile_crop=tile_crop_of(data),
        compute_anchor_targets=anchor_targets_function(config),
    )
    train_generator = configured_generator(
        config,
        backbone,
        subset="train",
        shuffle_groups=True,
        augmentation=training_augmentation(data.random_transform, data.top_down, data.scale_jitter),
        skip_bad_images=data.skip_bad_images,
        seed=config.training.seed,
        **shared,
    )
    validation_generator = configured_generator(config, backbone, subset="val", **shared)
    return train_generator, validation_generator


def anchor_targets_function(config: RetinaNetConfig):
    """The anchor-target function the box loss needs: keras-retinanet's, or one whose box targets carry the anchors."""
    return anchor_targets_with_anchors if needs_anchor_columns(config.training.box_loss) else anchor_targets_bbox


def _read_resume(config: RetinaNetConfig):
    """(training state, spec) of the snapshot being resumed, or (None, None)."""
    snapshot = config.training.snapshot
    if not snapshot:
        return None, None
    state = read_training_state(snapshot) if os.path.splitext(snapshot)[1].lower() in MODEL_FILE_EXTENSIONS else None
    return state, read_spec(snapshot)


def resolve_run(config: RetinaNetConfig, strategy, chief: bool = True) -> RunPlan:
    """The run's configuration, resolved once, and the readers it needs.

    In order: tiled training's native scale; a resumed snapshot's settings (its spec: backbone, anchors, image
    sides; its state: epoch and seed); the seed (drawn by the chief when none is given) and TensorFlow's random state,
    determinism and precision; the recipe's batch-norm policy; the readers; the training boxes and, with
    ``--auto-anchors``, anchors fitted to them.

    Args:
        config: the command's configuration.
        strategy: the ``tf.distribute`` strategy (every worker must agree on the seed).
        chief: whether this process writes the fitted anchors' file.
    """
    config = with_native_scale(config)  # before the snapshot's spec, whose sizing a resumed run keeps
    resume_state, snapshot_spec = _read_resume(config)
    if snapshot_spec is not None:
        # a resumed run trains the model the snapshot holds: its backbone, anchors and image sides
        config, notes = reconcile(config, snapshot_spec, config.training.snapshot)
        for note in notes:
            print(note)
    if config.training.snapshot:
        config = resumed_config(config, resume_state)
    if config.training.seed is None:
        # every worker must compute the same batches: all take the seed the chief draws
        config = config.replace(training={"seed": distribute.shared_seed(strategy)})
    training = config.training
    logger.info("Seed: %s", training.seed)
    keras.utils.set_random_seed(training.seed)
    if training.deterministic:
        tf.config.experimental.enable_op_determinism()
    if training.mixed_precision:
        policy = set_precision("mixed")
        print(f"Precision: {policy} (logits, losses, box decoding and NMS in float32)"
              + ("; a --snapshot keeps the precision it was saved with" if training.snapshot else ""))  # fmt: skip

    backbone = models.backbone(config.model.backbone)
    config = batch_norm_policy(config, backbone)
    global_batch = distribute.global_batch_size(strategy, config.data.batch_size)
    if strategy.num_replicas_in_sync > 1:
        print(f"Batch: {config.data.batch_size} images per replica x {strategy.num_replicas_in_sync} replicas "
              f"= {global_batch}")  # fmt: skip
    train_generator, validation_generator = create_generators(config, backbone, batch_size=global_batch)
    # Read once for --auto-anchors, the coverage table and the spec's object sizes: the boxes after the resize do not
    # depend on the anchors.
    boxes = training_boxes(config, train_generator)
    config = auto_fit_anchors(config, train_generator, chief=chief, boxes=boxes)  # --auto-anchors
    return RunPlan(config, backbone, resume_state, snapshot_spec, train_generator, validation_generator, boxes,
                   global_batch)  # fmt: skip
