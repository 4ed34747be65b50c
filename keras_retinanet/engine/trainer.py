"""A training run from its configuration: the run resolved once (:mod:`.run_setup`), then each piece built once
(models, anchor targets, callbacks, the training stream), as detectron2's ``DefaultTrainer.build_*``, and
``model.fit``."""

import logging
import sys
from typing import List, Optional, Sequence

import tensorflow as tf

from .. import distribute, models, optimizers
from ..config import DetectorSpec, RetinaNetConfig
from ..config.spec import check_class_count
from ..anchors import DEFAULT_PYRAMID_LEVELS, AnchorParameters
from ..callbacks.ema import SNAPSHOT_STATE_KEY
from ..data.batch_targets import AnchorTargets
from ..data.cropping import describe_sizing
from ..data.pipeline import make_dataset
from ..errors import RetinaNetError
from ..models.base import freeze
from ..callbacks.run_record import choose_run_folder
from ..callbacks.training_run import create_callbacks
from .auto_anchors import CHECK_IMAGES, object_sizes, report_coverage
from .initial_weights import load_initial_weights
from .run_setup import (  # noqa: F401  (resumed_config, snapshot_epoch, create_generators: importable from here, as before)
    MODEL_FILE_EXTENSIONS,
    RunPlan,
    anchor_targets_function,
    create_generators,
    resolve_run,
    resumed_config,
    snapshot_epoch,
    stream_start,
)

logger = logging.getLogger(__name__)

COVERAGE_CHECK_IMAGES = CHECK_IMAGES  # the table and --auto-anchors read the same images


def class_names_of(generator) -> List[str]:
    """The dataset's class names in label order ('7' for a label the dataset does not name)."""
    return [
        generator.label_to_name(label) if generator.has_label(label) else str(label)
        for label in range(generator.num_classes())
    ]


def build_training_model(
    config: RetinaNetConfig,
    backbone,
    class_names: Sequence[str],
    object_sizes=None,
    resume_state: Optional[dict] = None,
    total_steps: Optional[int] = None,
):
    """The compiled training model: resumed from the configured snapshot, or built (and initialised) anew.

    Either way it carries the run's :class:`DetectorSpec` (a resumed snapshot keeps its own, given the training
    boxes' ``object_sizes`` when it has none), which every snapshot and the inference model then store. A new model
    is compiled with the configuration's box loss and optimizer (:func:`keras_retinanet.optimizers.training_optimizer`;
    ``total_steps``: the run's, for a cosine schedule); a resumed one keeps the snapshot's (its schedule, moments and
    weight averages; averaged weights saved as the model's, ``--ema``, go back to the optimizer).
    """
    training, model_config = config.training, config.model
    spec = DetectorSpec.from_config(config, class_names, backbone.preprocessing_mode, object_sizes=object_sizes)
    if training.snapshot:
        logger.info("Loading model %s, this may take a second...", training.snapshot)
        model = models.load_model(
            training.snapshot,
            backbone_name=model_config.backbone if config.given("model.backbone") else None,
            safe_mode=not training.unsafe_load,
        )
        models.assert_training_model(model)
        if models.spec_of(model) is None:  # keras-retinanet's snapshots and older ones of this package
            model = attach_spec(model, spec)
        elif model.spec.object_sizes is None and object_sizes is not None:
            model.spec = model.spec.replace(object_sizes=object_sizes)
    else:
        kwargs = {}
        if model_config.num_anchors is not None:
            kwargs["num_anchors"] = model_config.num_anchors
        if model_config.pyramid_levels is not None:
            kwargs["pyramid_levels"] = model_config.pyramid_levels
        if backbone.has_frozen_batch_norm:
            kwargs["freeze_bn"] = not model_config.trainable_bn
        model = backbone.retinanet(
            len(class_names),
            modifier=freeze if model_config.freeze_backbone else None,
            pyramid_feature_size=model_config.pyramid_feature_size,
            classification_feature_size=model_config.classification_feature_size,
            regression_feature_size=model_config.regression_feature_size,
            head_norm=model_config.head_norm,
            **kwargs,
        )
        load_initial_weights(model, config, backbone)
        model.spec = spec

    if not training.snapshot or not getattr(model, "optimizer", None):
        optimizer = optimizers.training_optimizer(config, total_steps)
        optimizers.compile_training_model(model, training.lr, training.optimizer_clipnorm, training.box_loss, optimizer)
        return model
    optimizers.use_global_batch_clipping(model)  # snapshots were compiled with keras.optimizers.Adam
    if optimizers.use_box_loss(model, training.box_loss):
        print(f"Box loss: {training.box_loss} (the snapshot was compiled with another)")
    if (resume_state or {}).get(SNAPSHOT_STATE_KEY):
        optimizers.swap_average_weights(model)  # the snapshot holds the averaged weights as the model's
    if config.given("training.lr"):
        optimizers.set_learning_rate(model, config, total_steps)
        logger.info("Learning rate set to %s (the snapshot's was replaced by --lr)", training.lr)
    return model


def attach_spec(model, spec: DetectorSpec):
    """``model`` as a :class:`RetinaNetModel` carrying ``spec`` (the same layers and weights)."""
    if isinstance(model, models.RetinaNetModel):
        model.spec = spec
        return model
    rebuilt = models.RetinaNetModel(inputs=model.inputs, outputs=model.outputs, name=model.name, spec=spec)
    if getattr(model, "optimizer", None) is not None:
        rebuilt.compile(optimizer=model.optimizer, loss=model.loss, jit_compile=False)
    return rebuilt


def create_models(config: RetinaNetConfig, backbone, class_names: Sequence[str], strategy=None, **options):
    """The training model and its inference twin.

    The training model, its optimiser and metrics are made in the strategy's scope, so
    their variables are mirrored on every replica. The inference model is made outside
    it: evaluation runs on the chief alone, and a model of the strategy would wait for
    the other workers at every prediction.

    Args:
        **options: :func:`build_training_model`'s ``object_sizes``, ``resume_state``, ``total_steps``.

    Returns:
        (training_model, prediction_model).
    """
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        training_model = build_training_model(config, backbone, class_names, **options)
    prediction_model = models.convert_model(
        training_model,
        anchor_params=config.model.anchor_parameters,
        pyramid_levels=config.model.pyramid_levels,
    )
    return training_model, prediction_model


def assign_anchor_targets(plan: RunPlan, config: RetinaNetConfig) -> None:
    """Give both readers the run's anchor targets: its (fitted) anchors, counted as the built model pads (a
    keras-retinanet MobileNet file rounds odd sides down), with the anchors in the box targets for GIoU."""
    for generator in (plan.train_generator, plan.validation_generator):
        if generator is not None:
            generator.anchor_targets = AnchorTargets(
                config.model.anchor_parameters, config.model.pyramid_levels, plan.backbone.feature_shapes,
                anchor_targets_function(config),
            )  # fmt: skip


def evaluation_model(prediction_model, config: RetinaNetConfig):
    """What the per-epoch evaluation runs: the inference model on whole validation images; with tiled training, a
    :class:`~keras_retinanet.inference.Detector` slicing each of them into tiles of the training tile (overlap and
    merging as ``retinanet-evaluate --tile``'s defaults).

    Sliced, because that is how a model trained on crops is used on large images, and its memory does not grow with
    the image; validation images no larger than a tile are one tile, the same as whole.
    """
    if config.data.tile is None:
        return prediction_model
    from ..inference.detector import Detector
    from ..inference.slicing import TileOptions

    return Detector(prediction_model, models.spec_of(prediction_model), tiles=TileOptions.of(tuple(config.data.tile)))


def describe_tiles(config: RetinaNetConfig) -> List[str]:
    """What tiled training does, in a line or two (none without a tile)."""
    data = config.data
    if data.tile is None:
        return []
    height, width = data.tile
    lines = [
        f"Tiles: {describe_sizing(data)}, {100 * data.tile_object_chance:g}% of them around an object; boxes keeping "
        f"less than {100 * data.tile_min_visibility:g}% of their area dropped; evaluation slices the validation images "
        f"into {height}x{width} tiles"
    ]
    if not data.no_resize:
        lines.append(
            f"note: the crops are resized as whole images would be, and so is a whole image at prediction; predict "
            f"large images in tiles (retinanet-predict --tile {height}x{width}, Detector.predict(image, tile=...))"
        )
    return lines


def describe(config: RetinaNetConfig, train_generator, validation_generator, training_model, boxes=None):
    """Print what is about to be trained, and warn about objects no anchor can learn.

    ``boxes``: the training boxes (``auto_anchors.training_boxes``) when already read, else they are read here.
    """
    parameters = config.model.anchor_parameters or AnchorParameters.default
    levels = config.model.pyramid_levels or list(DEFAULT_PYRAMID_LEVELS)
    data = config.data
    classes = [train_generator.label_to_name(label) for label in range(train_generator.num_classes())]
    print(f"Dataset: {data.dataset_type}, {train_generator.size()} training images", end="")
    print(f", {validation_generator.size()} validation images" if validation_generator is not None else "")
    print(f"Classes ({len(classes)}): {', '.join(classes)}")
    sizing = (f"images resized to min side {data.image_min_side}, max side {data.image_max_side}"
              + (" (resizing off)" if data.no_resize else "")) if data.tile is None else "trained on tiles"  # fmt: skip
    print(f"Backbone: {config.model.backbone}, {training_model.count_params():,} parameters; {sizing}")
    for line in describe_tiles(config):
        print(line)
    print(
        f"Anchors: levels {levels}, sizes {parameters.sizes}, strides {parameters.strides}, "
        f"ratios {[round(float(r), 3) for r in parameters.ratios]}, "
        f"scales {[round(float(s), 3) for s in parameters.scales]}"
    )
    # the coverage table (by class and object size) and a warning for annotations no anchor can learn
    report_coverage(train_generator, max_images=COVERAGE_CHECK_IMAGES, skip_bad_images=data.skip_bad_images, boxes=boxes)


def training_dataset(generator, config: RetinaNetConfig, start: int = 0) -> tf.data.Dataset:
    """The generator as an endless, parallel, prefetching, resumable tf.data stream.

    Endless because keras-retinanet trained ``--steps`` batches an epoch whatever the
    dataset size; resumable because each batch depends only on ``(seed, place)`` (see
    :func:`keras_retinanet.data.pipeline.make_dataset`).

    Args:
        generator: the training generator (its ``seed`` set).
        config: ``data.workers`` and ``data.max_queue_size`` set the parallelism.
        start: place of the first batch (``epochs done * steps``).
    """
    if not generator.groups:
        raise RetinaNetError("the training set has no images")
    workers = config.data.workers
    parallel = tf.data.AUTOTUNE if workers > 1 else max(1, workers)
    prefetch = config.data.max_queue_size if workers > 0 else 0
    dataset = make_dataset(generator, num_parallel_calls=parallel, prefetch=prefetch, repeat=True, start=start)
    # Under multi-worker training every worker computes the same global batches and keeps its own slices.
    return distribute.shard_by_data(dataset)


def report_bad_images(generator):
    """Print the images --skip-bad-images left out (count and paths)."""
    bad = getattr(generator, "bad_images", {})
    if not bad:
        return
    print(f"Skipped {len(bad)} unreadable image(s):", file=sys.stderr)
    for path, reason in sorted(bad.items()):
        print(f"  {path}: {reason}", file=sys.stderr)


def describe_recipe(config: RetinaNetConfig, steps: int) -> str:
    """The training recipe in a line: optimizer, schedule, box loss, head norm, averaging and extra augmentation."""
    training, data = config.training, config.data
    optimizer = f"AdamW (weight decay {training.weight_decay:g})" if training.optimizer == "adamw" else "Adam"
    if training.lr_schedule == "cosine":
        total = optimizers.total_steps_of(config, steps)
        warmup = optimizers.warmup_steps_of(config, total)
        schedule = f"lr {training.lr:g}, {warmup} warm-up steps then cosine to {optimizers.COSINE_FINAL_FRACTION:g}x lr at step {total}"
    else:
        schedule = f"lr {training.lr:g}, lowered x{training.reduce_lr_factor:g} on a {training.reduce_lr_patience}-epoch loss plateau"
    parts = [optimizer, schedule, f"{training.box_loss} box loss", f"head norm {config.model.head_norm}"]
    if training.ema:
        parts.append(f"weight average {training.ema:g} (ramp {training.ema_warmup_steps} steps)")
    if data.top_down:
        parts.append("vertical flips and quarter turns")
    if data.scale_jitter:
        parts.append(f"scale jitter {data.scale_jitter[0]:g}-{data.scale_jitter[1]:g}")
    return f"Recipe {training.recipe}: " + ", ".join(parts)


def train(config: RetinaNetConfig, command: Optional[Sequence[str]] = None):
    """Train as the configuration says and record the run (``command``: its command line); returns the History."""
    strategy = distribute.make_strategy(config.training.strategy)  # before TensorFlow runs anything else
    print(distribute.describe_strategy(strategy))
    chief = distribute.is_chief(strategy)
    plan = resolve_run(config, strategy, chief=chief)
    config, training = plan.config, plan.config.training
    train_generator, validation_generator = plan.train_generator, plan.validation_generator

    class_names = class_names_of(train_generator)
    if plan.snapshot_spec is not None:
        check_class_count(plan.snapshot_spec, class_names, f"the {config.data.dataset_type} training set", training.snapshot)
    steps = training.steps if training.steps is not None else len(train_generator)
    training_model, prediction_model = create_models(
        config, plan.backbone, class_names, strategy, object_sizes=object_sizes(plan.boxes),
        resume_state=plan.resume_state, total_steps=optimizers.total_steps_of(config, steps),
    )  # fmt: skip
    if training.snapshot:
        plan.backbone.follow_model_padding(training_model)  # a keras-retinanet MobileNet file pads as Keras 2 did
    assign_anchor_targets(plan, config)
    if chief:
        describe(config, train_generator, validation_generator, training_model, boxes=plan.boxes)
        print(describe_recipe(config, steps))

    start = stream_start(config, plan.resume_state, steps) if training.snapshot else 0
    stream = {"start_epoch": training.initial_epoch, "start_position": start, "steps": steps}
    run_folder = choose_run_folder(config, plan.resume_state) if chief else None  # once, after the model loaded
    callbacks = create_callbacks(
        config,
        evaluation_model(prediction_model, config),
        validation_generator,
        resume_state=plan.resume_state,
        stream=stream,
        chief=chief,
        workers=distribute.num_workers(strategy),
        run_folder=run_folder,
        class_names=class_names,
        command=command,
    )
    try:
        return training_model.fit(
            training_dataset(train_generator, config, start=start),
            steps_per_epoch=steps,
            epochs=training.epochs,
            shuffle=False,  # the stream has its own order
            verbose=1 if chief else 2,  # the other workers print a line an epoch
            callbacks=callbacks,
            validation_data=validation_generator if training.compute_val_loss else None,
            initial_epoch=training.initial_epoch,
        )
    finally:
        report_bad_images(train_generator)
