"""A training run from its configuration: models, data, callbacks, resume, and ``model.fit``."""

import logging
import os
import re
import sys
from typing import List, Optional, Sequence

import keras
import tensorflow as tf

from .. import distribute, models
from ..checkpoint import compile_training_model, read_training_state
from ..checkpoint import read_spec
from ..config import DetectorSpec, RetinaNetConfig
from ..config.spec import check_class_count, reconcile
from ..anchors import DEFAULT_PYRAMID_LEVELS, AnchorParameters
from ..data.augmentation import training_augmentation
from ..preprocessing.from_config import configured_generator
from ..data.cropping import describe_sizing, tile_crop_of, with_native_scale
from .auto_anchors import CHECK_IMAGES, auto_fit_anchors, object_sizes, report_coverage, training_boxes
from ..data.pipeline import make_dataset
from ..errors import RetinaNetError
from ..models.base import freeze
from ..models.precision import set_precision
from .initial_weights import load_initial_weights
from ..callbacks.run_record import choose_run_folder
from ..callbacks.training_run import create_callbacks

logger = logging.getLogger(__name__)

MODEL_FILE_EXTENSIONS = (".h5", ".hdf5", ".keras")
COVERAGE_CHECK_IMAGES = CHECK_IMAGES  # the table and --auto-anchors read the same images


def snapshot_epoch(path: str) -> int:
    """The epoch in a snapshot's name ('resnet50_csv_07.h5' -> 7), or 0 if it has none."""
    match = re.search(r"_(\d+)\.(h5|keras)$", os.path.basename(path))
    return int(match.group(1)) if match else 0


def class_names_of(generator) -> List[str]:
    """The dataset's class names in label order ('7' for a label the dataset does not name)."""
    return [
        generator.label_to_name(label) if generator.has_label(label) else str(label)
        for label in range(generator.num_classes())
    ]


def build_training_model(config: RetinaNetConfig, backbone, class_names: Sequence[str], object_sizes=None):
    """The compiled training model: resumed from the configured snapshot, or built (and initialised) anew.

    Either way it carries the run's :class:`DetectorSpec` (a resumed snapshot keeps its own, given the training
    boxes' ``object_sizes`` when it has none), which every snapshot and the inference model then store.
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
        if config.given("training.lr") and getattr(model, "optimizer", None) is not None:
            model.optimizer.learning_rate = training.lr
            logger.info("Learning rate set to %s (the snapshot's was replaced by --lr)", training.lr)
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
            **kwargs,
        )
        load_initial_weights(model, config, backbone)
        model.spec = spec

    if not training.snapshot or not getattr(model, "optimizer", None):
        compile_training_model(model, learning_rate=training.lr, clipnorm=training.optimizer_clipnorm)
    else:
        distribute.use_global_batch_clipping(model)  # snapshots were compiled with keras.optimizers.Adam
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


def create_models(config: RetinaNetConfig, backbone, class_names: Sequence[str], strategy=None, object_sizes=None):
    """The training model and its inference twin.

    The training model, its optimiser and metrics are made in the strategy's scope, so
    their variables are mirrored on every replica. The inference model is made outside
    it: evaluation runs on the chief alone, and a model of the strategy would wait for
    the other workers at every prediction.

    Returns:
        (training_model, prediction_model).
    """
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        training_model = build_training_model(config, backbone, class_names, object_sizes=object_sizes)
    prediction_model = models.convert_model(
        training_model,
        anchor_params=config.model.anchor_parameters,
        pyramid_levels=config.model.pyramid_levels,
    )
    return training_model, prediction_model


def create_generators(config: RetinaNetConfig, backbone, batch_size: Optional[int] = None):
    """Training and validation generators (validation may be None).

    ``batch_size`` is the global batch (per-replica batch times replicas; default the
    configured batch): every batch is padded to its largest image as on one device, and
    the strategy gives each replica a slice of it. The training augmentation of the
    batch at stream position p is drawn from ``(seed, p)`` alone, and so are its crops with tiled
    training. The validation set is cropped too, which bounds the memory of ``--compute-val-loss``;
    the per-epoch evaluation slices whole validation images instead (see :func:`evaluation_model`).
    """
    data = config.data
    shared = dict(
        batch_size=batch_size or data.batch_size,
        group_method=data.group_method,
        tile_crop=tile_crop_of(data),
    )
    train_generator = configured_generator(
        config,
        backbone,
        subset="train",
        shuffle_groups=True,
        augmentation=training_augmentation(data.random_transform),
        skip_bad_images=data.skip_bad_images,
        seed=config.training.seed,
        **shared,
    )
    validation_generator = configured_generator(config, backbone, subset="val", **shared)
    return train_generator, validation_generator


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
    from ..inference.slicing import Tiling

    detector = Detector(prediction_model, models.spec_of(prediction_model))
    detector.tiling = Tiling.of(tuple(config.data.tile))
    return detector


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


def resumed_config(config: RetinaNetConfig, state: Optional[dict]) -> RetinaNetConfig:
    """The epoch and seed of a resumed run, from the snapshot's training state.

    Settings the user gave (--initial-epoch, --seed) win; a snapshot without a state
    (older files, keras-retinanet's) resumes at the epoch in its name.
    """
    state = state or {}
    training = config.training
    initial_epoch, seed = training.initial_epoch, training.seed
    if not config.given("training.initial_epoch"):
        initial_epoch = int(state["epoch"]) if state.get("epoch") is not None else snapshot_epoch(training.snapshot)
    if not config.given("training.seed") and state.get("seed") is not None:
        seed = int(state["seed"])
    return config.replace(training={"initial_epoch": initial_epoch, "seed": seed})


def stream_start(config: RetinaNetConfig, state: Optional[dict], steps: int) -> int:
    """The place in the training stream of the first batch: where the resumed run's stream had got to."""
    initial_epoch = config.training.initial_epoch
    stream = (state or {}).get("stream") or {}
    if stream and int(state.get("epoch", -1)) == initial_epoch:
        return int(stream["start_position"]) + (initial_epoch - int(stream["start_epoch"])) * int(stream["steps"])
    return initial_epoch * steps


def report_bad_images(generator):
    """Print the images --skip-bad-images left out (count and paths)."""
    bad = getattr(generator, "bad_images", {})
    if not bad:
        return
    print(f"Skipped {len(bad)} unreadable image(s):", file=sys.stderr)
    for path, reason in sorted(bad.items()):
        print(f"  {path}: {reason}", file=sys.stderr)


def train(config: RetinaNetConfig, command: Optional[Sequence[str]] = None):
    """Train as the configuration says and record the run (``command``: its command line); returns the History."""
    training = config.training
    strategy = distribute.make_strategy(training.strategy)  # before TensorFlow runs anything else
    print(distribute.describe_strategy(strategy))
    chief = distribute.is_chief(strategy)
    workers = distribute.num_workers(strategy)

    config = with_native_scale(config)  # before the snapshot's spec, whose sizing a resumed run keeps
    resume_state = None
    if training.snapshot and os.path.splitext(training.snapshot)[1].lower() in MODEL_FILE_EXTENSIONS:
        resume_state = read_training_state(training.snapshot)
    spec = read_spec(training.snapshot) if training.snapshot else None
    if spec is not None:
        # a resumed run trains the model the snapshot holds: its backbone, anchors and image sides
        config, notes = reconcile(config, spec, training.snapshot)
        for note in notes:
            print(note)
    if training.snapshot:
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
              + ("; a --snapshot keeps the precision it was saved with" if training.snapshot else ""))

    backbone = models.backbone(config.model.backbone)
    global_batch = distribute.global_batch_size(strategy, config.data.batch_size)
    if strategy.num_replicas_in_sync > 1:
        print(f"Batch: {config.data.batch_size} images per replica x {strategy.num_replicas_in_sync} replicas "
              f"= {global_batch}")
    train_generator, validation_generator = create_generators(config, backbone, batch_size=global_batch)
    # Read once for --auto-anchors, the coverage table and the spec's object sizes: the boxes after the resize do not
    # depend on the anchors.
    boxes = training_boxes(config, train_generator)
    fitted = auto_fit_anchors(config, train_generator, chief=chief, boxes=boxes)  # --auto-anchors
    if fitted is not config:  # anchors fitted to the training set: the generators must assign those
        config = fitted
        train_generator, validation_generator = create_generators(config, backbone, batch_size=global_batch)

    class_names = class_names_of(train_generator)
    if spec is not None:
        check_class_count(spec, class_names, f"the {config.data.dataset_type} training set", training.snapshot)
    training_model, prediction_model = create_models(
        config, backbone, class_names, strategy, object_sizes=object_sizes(boxes)
    )
    if training.snapshot and backbone.follow_model_padding(training_model):  # a keras-retinanet MobileNet file
        train_generator, validation_generator = create_generators(config, backbone, batch_size=global_batch)
    if chief:
        describe(config, train_generator, validation_generator, training_model, boxes=boxes)

    steps = training.steps if training.steps is not None else len(train_generator)
    start = stream_start(config, resume_state, steps) if training.snapshot else 0
    stream = {"start_epoch": training.initial_epoch, "start_position": start, "steps": steps}
    run_folder = choose_run_folder(config, resume_state) if chief else None  # once, after the model loaded
    callbacks = create_callbacks(
        config,
        evaluation_model(prediction_model, config),
        validation_generator,
        resume_state=resume_state,
        stream=stream,
        chief=chief,
        workers=workers,
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
