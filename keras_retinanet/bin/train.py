"""retinanet-train: train a RetinaNet on a CSV, COCO, Pascal VOC, Open Images, KITTI or the demo dataset.

Global flags go before the dataset subcommand, as in keras-retinanet:

    retinanet-train --backbone resnet50 --epochs 20 csv annotations.csv classes.csv
"""

import argparse
import importlib.util
import os
import re
import sys

from . import common

# keras_retinanet.distribute.STRATEGY_NAMES, spelt out so that --help does not import TensorFlow.
STRATEGY_CHOICES = ("auto", "one", "mirrored", "multi-worker")

# Settings the demo dataset trains well with on a CPU; every other dataset gets keras-retinanet's.
STANDARD_DEFAULTS = {
    "backbone": "resnet50",
    "batch_size": 1,
    "epochs": 50,
    "steps": 10000,
    "lr": 1e-5,
    "optimizer_clipnorm": 0.001,
    "image_min_side": 800,
    "image_max_side": 1333,
    "pyramid_feature_size": 256,
    "classification_feature_size": 256,
    "regression_feature_size": 256,
    "trainable_bn": False,
}
DEMO_DEFAULTS = {
    "backbone": "mobilenet128_0.5",
    "batch_size": 4,
    "epochs": 20,
    "steps": None,
    "lr": 1e-3,
    "optimizer_clipnorm": 0.001,
    "image_min_side": 160,
    "image_max_side": 160,
    "pyramid_feature_size": 64,
    "classification_feature_size": 64,
    "regression_feature_size": 64,
    "trainable_bn": True,
}


def parse_args(args):
    parser = argparse.ArgumentParser(
        prog="retinanet-train",
        description="Train a RetinaNet. Global options go before the dataset subcommand.",
    )
    common.add_dataset_subparsers(parser, training=True)

    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--snapshot", help="Resume training from this snapshot (.h5 or .keras).")
    weights.add_argument(
        "--imagenet-weights",
        metavar="PATH",
        help="Initialise the backbone from this local ImageNet weights file "
        "(e.g. ResNet-50-model.keras.h5 or resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5).",
    )
    weights.add_argument("--weights", help="Initialise the model from this weights file, by layer name.")
    weights.add_argument("--no-weights", action="store_true", help="Start from random weights (the default).")

    parser.add_argument("--backbone", help="Backbone name (default: resnet50).")
    parser.add_argument(
        "--batch-size",
        type=common.positive_int,
        help="Images per batch on each replica (default: 1); a step trains on this times the replicas.",
    )
    parser.add_argument(
        "--strategy",
        default="auto",
        choices=STRATEGY_CHOICES,
        help="tf.distribute strategy: one device, every GPU of this machine (mirrored), or the workers TF_CONFIG "
        "names (multi-worker); auto picks multi-worker with TF_CONFIG, else mirrored with several GPUs, else one "
        "device (default: %(default)s).",
    )
    parser.add_argument(
        "--mixed-precision",
        action="store_true",
        help="Compute in bfloat16 (CPU, TPU) or float16 with loss scaling (GPU), weights and outputs in float32.",
    )
    parser.add_argument("--gpu", help="Id of the GPU to use (as reported by nvidia-smi).")
    parser.add_argument("--multi-gpu", type=int, default=0, help="Not supported; use tf.distribute (see README).")
    parser.add_argument(
        "--initial-epoch",
        type=int,
        default=None,
        help="Epoch to start from (default: 0, or the epoch in the --snapshot file name).",
    )
    parser.add_argument("--epochs", type=common.positive_int, help="Number of epochs (default: 50).")
    parser.add_argument(
        "--steps", type=common.positive_int, help="Steps per epoch (default: 10000; demo: one pass over the data)."
    )
    parser.add_argument("--lr", type=float, help="Learning rate (default: 1e-5).")
    parser.add_argument("--optimizer-clipnorm", type=float, help="Clip gradients to this norm (default: 0.001).")
    parser.add_argument("--snapshot-path", default="./snapshots", help="Folder for snapshots (default: %(default)s).")
    parser.add_argument("--tensorboard-dir", default="", help="TensorBoard log folder (default: none).")
    parser.add_argument("--no-snapshots", dest="snapshots", action="store_false", help="Do not save snapshots.")
    parser.add_argument("--save-keras", action="store_true", help="Also save each snapshot in the .keras format.")
    parser.add_argument("--no-evaluation", dest="evaluation", action="store_false", help="Skip per-epoch evaluation.")
    parser.add_argument("--freeze-backbone", action="store_true", help="Do not train the backbone's layers.")
    parser.add_argument(
        "--trainable-bn", action="store_true", default=None, help="Train BatchNorm layers (for training from scratch)."
    )
    parser.add_argument("--random-transform", action="store_true", help="Augment with random affine transforms.")
    parser.add_argument("--image-min-side", type=common.positive_int, help="Rescale the smaller image side to this.")
    parser.add_argument("--image-max-side", type=common.positive_int, help="Cap the larger image side at this.")
    parser.add_argument("--no-resize", action="store_true", help="Do not resize images.")
    parser.add_argument("--config", help="Config .ini with anchor parameters and pyramid levels.")
    parser.add_argument("--weighted-average", action="store_true", help="Weight each class's AP by its instances.")
    parser.add_argument("--compute-val-loss", action="store_true", help="Compute the validation loss each epoch.")
    parser.add_argument("--reduce-lr-patience", type=int, default=2, help="Epochs without improvement before lr drops.")
    parser.add_argument("--reduce-lr-factor", type=float, default=0.1, help="Factor the lr drops by.")
    parser.add_argument("--group-method", default="ratio", choices=("none", "random", "ratio"))
    parser.add_argument(
        "--workers", type=int, default=1, help="Batches prepared in parallel (0: no prefetching; >1: as many as help)."
    )
    parser.add_argument("--multiprocessing", action="store_true", help="Accepted for keras-retinanet; threads are used.")
    parser.add_argument("--max-queue-size", type=int, default=10, help="Batches prepared ahead of training.")
    parser.add_argument("--pyramid-feature-size", type=common.positive_int, help="FPN channels (default: 256).")
    parser.add_argument("--classification-feature-size", type=common.positive_int, help="Classification subnet width.")
    parser.add_argument("--regression-feature-size", type=common.positive_int, help="Regression subnet width.")
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="Random seed of the weights, the batch order and the augmentation (default: a random one, "
        "printed and stored in the snapshots; a resumed run takes the snapshot's).",
    )
    parser.add_argument(
        "--deterministic",
        action="store_true",
        help="Deterministic TensorFlow ops, so that a run with the same --seed repeats exactly (slower on GPU).",
    )
    parser.add_argument(
        "--skip-bad-images",
        action="store_true",
        help="Skip training images that cannot be read (their place in the batch goes to the next image) "
        "and list them at the end, instead of stopping at the first.",
    )
    common.add_unsafe_load_argument(parser, "a --snapshot")
    args = parser.parse_args(args)
    apply_defaults(args)
    return args


def apply_defaults(args):
    """Fill the options left unset with the demo's or keras-retinanet's defaults."""
    defaults = DEMO_DEFAULTS if args.dataset_type == "demo" else STANDARD_DEFAULTS
    # What the user set on the command line wins over what a resumed snapshot stored.
    args.given = {name for name in ("lr", "initial_epoch", "seed") if getattr(args, name, None) is not None}
    for name, value in defaults.items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)
    if args.multi_gpu:
        raise common.CommandLineError("--multi-gpu is not supported; tf.distribute strategies replace it")
    if args.snapshot:
        common.check_file(args.snapshot, "snapshot")
    if args.initial_epoch is None:
        args.initial_epoch = snapshot_epoch(args.snapshot) if args.snapshot else 0
    if args.imagenet_weights:
        common.check_file(args.imagenet_weights, "ImageNet weights file")
    if args.weights:
        common.check_file(args.weights, "weights file")


def snapshot_epoch(path):
    """The epoch in a snapshot's name ('resnet50_csv_07.h5' -> 7), or 0 if it has none."""
    match = re.search(r"_(\d+)\.(h5|keras)$", os.path.basename(path))
    return int(match.group(1)) if match else 0


def create_models(backbone, num_classes, args, anchor_params=None, pyramid_levels=None, strategy=None):
    """Build (or resume) the training model and its inference twin.

    The training model, its optimiser and metrics are made in the strategy's scope, so
    their variables are mirrored on every replica. The inference model is made outside
    it: evaluation runs on the chief alone, and a model of the strategy would wait for
    the other workers at every prediction.

    Returns:
        (training_model, prediction_model).
    """
    import tensorflow as tf

    from .. import models

    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        training_model = _build_training_model(backbone, num_classes, args, anchor_params, pyramid_levels)
    prediction_model = models.convert_model(training_model, anchor_params=anchor_params, pyramid_levels=pyramid_levels)
    return training_model, prediction_model


def _build_training_model(backbone, num_classes, args, anchor_params=None, pyramid_levels=None):
    """The compiled training model: resumed from --snapshot, or built (and initialised) anew."""
    from .. import distribute, losses, models
    from ..utils.model import freeze

    if args.snapshot:
        print(f"Loading model {args.snapshot}, this may take a second...")
        training_model = models.load_model(args.snapshot, backbone_name=args.backbone, safe_mode=not args.unsafe_load)
        models.assert_training_model(training_model)
        if "lr" in args.given and getattr(training_model, "optimizer", None) is not None:
            training_model.optimizer.learning_rate = args.lr
            print(f"Learning rate set to {args.lr} (the snapshot's was replaced by --lr)")
    else:
        modifier = freeze if args.freeze_backbone else None
        kwargs = {}
        if anchor_params is not None:
            kwargs["num_anchors"] = anchor_params.num_anchors()
        if pyramid_levels is not None:
            kwargs["pyramid_levels"] = pyramid_levels
        if backbone.has_frozen_batch_norm:
            kwargs["freeze_bn"] = not args.trainable_bn
        training_model = backbone.retinanet(
            num_classes,
            modifier=modifier,
            pyramid_feature_size=args.pyramid_feature_size,
            classification_feature_size=args.classification_feature_size,
            regression_feature_size=args.regression_feature_size,
            **kwargs,
        )
        if args.imagenet_weights:
            loaded = backbone.load_imagenet_weights(training_model, args.imagenet_weights)
            print(f"Loaded ImageNet weights of {loaded} layers from {args.imagenet_weights}")
        elif args.weights:
            from ..utils.weights import assign_layer_weights, read_layer_weights

            loaded = assign_layer_weights(training_model, read_layer_weights(args.weights), args.weights)
            print(f"Loaded weights of {loaded} layers from {args.weights}")

    if not args.snapshot or not getattr(training_model, "optimizer", None):
        training_model.compile(
            loss={"regression": losses.smooth_l1(), "classification": losses.focal()},
            # Adam that clips the gradient of the whole global batch, as one device does
            optimizer=distribute.GlobalBatchAdam(learning_rate=args.lr, clipnorm=args.optimizer_clipnorm),
            jit_compile=False,
        )
    else:
        distribute.use_global_batch_clipping(training_model)  # snapshots compiled with keras.optimizers.Adam
    return training_model


def create_callbacks(
    training_model, prediction_model, validation_generator, args, resume_state=None, stream=None, chief=True, workers=1
):
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
        resume_state: the training state of the snapshot being resumed, or None.
        stream: ``{'start_epoch', 'start_position', 'steps'}`` of the training stream, stored
            in the snapshots so a resumed run continues at the same batch.
        chief: whether this process is the chief (see ``keras_retinanet.distribute.is_chief``).
        workers: number of training processes.
    """
    import keras

    from ..callbacks import RedirectModel
    from ..callbacks.guard import NonFiniteGuard
    from ..callbacks.snapshot import Snapshot

    callbacks = [NonFiniteGuard()]
    tensorboard = None
    if args.tensorboard_dir and chief:
        if importlib.util.find_spec("tensorboard") is None:  # TensorFlow no longer installs it
            raise common.CommandLineError("--tensorboard-dir needs the tensorboard package: pip install tensorboard")
        os.makedirs(args.tensorboard_dir, exist_ok=True)
        tensorboard = keras.callbacks.TensorBoard(log_dir=args.tensorboard_dir, histogram_freq=0)

    evaluating = args.evaluation and validation_generator is not None and chief
    if evaluating:
        if args.dataset_type == "coco":
            from ..callbacks.coco import CocoEval

            evaluation = CocoEval(validation_generator, tensorboard=tensorboard)
        else:
            from ..callbacks.eval import Evaluate

            evaluation = Evaluate(validation_generator, tensorboard=tensorboard, weighted_average=args.weighted_average)
        callbacks.append(RedirectModel(evaluation, prediction_model))
    if tensorboard is not None:
        callbacks.append(tensorboard)

    stateful = {
        "reduce_lr": keras.callbacks.ReduceLROnPlateau(
            monitor="loss",
            factor=args.reduce_lr_factor,
            patience=args.reduce_lr_patience,
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
        stateful["early_stopping"] = keras.callbacks.EarlyStopping(monitor="mAP", patience=5, mode="max", min_delta=0.01)
    callbacks.extend(stateful.values())

    if args.snapshots and chief:
        os.makedirs(args.snapshot_path, exist_ok=True)
        template = os.path.join(args.snapshot_path, f"{args.backbone}_{args.dataset_type}_{{epoch:02d}}")
        callbacks.append(
            Snapshot(
                template,
                save_keras=args.save_keras,
                best_monitor="mAP" if evaluating else None,
                stateful_callbacks=stateful,
                extra_state={"seed": args.seed, "stream": stream},
                resume_state=resume_state,
            )
        )
    return callbacks


def create_generators(args, backbone, config=None, batch_size=None):
    """Training and validation generators (validation may be None).

    ``batch_size`` is the global batch (per-replica batch times replicas; default
    ``args.batch_size``): every batch is padded to its largest image as on one device,
    and the strategy gives each replica a slice of it.

    The training augmentation draws from one ``RandomState`` that the generator reseeds
    per batch from ``(args.seed, position)`` (see :func:`training_dataset`).
    """
    import numpy as np

    from ..utils.transform import random_transform_generator

    common_args = {
        "batch_size": batch_size or args.batch_size,
        "config": config,
        "image_min_side": args.image_min_side,
        "image_max_side": args.image_max_side,
        "no_resize": args.no_resize,
        "preprocess_image": backbone.preprocess_image,
        "compute_shapes": backbone.feature_shapes,
        "group_method": args.group_method,
    }
    random_state = np.random.RandomState(args.seed)
    if args.random_transform:
        transform_generator, visual_effect_generator = common.random_augmentation(prng=random_state)
    else:
        transform_generator = random_transform_generator(flip_x_chance=0.5, prng=random_state)
        visual_effect_generator = None

    train_generator = common.create_generator(
        args,
        "train",
        transform_generator=transform_generator,
        visual_effect_generator=visual_effect_generator,
        skip_bad_images=args.skip_bad_images,
        random_state=random_state,
        seed=args.seed,
        **common_args,
    )
    validation_args = dict(common_args, shuffle_groups=False)
    validation_generator = common.create_generator(args, "val", **validation_args)
    return train_generator, validation_generator


def describe(args, train_generator, validation_generator, anchor_params, pyramid_levels, training_model):
    """Print what is about to be trained, and warn about objects no anchor can learn."""
    from ..utils.anchors import DEFAULT_PYRAMID_LEVELS, AnchorParameters
    from ..utils.diagnostics import count_unmatched_annotations

    anchor_params = anchor_params or AnchorParameters.default
    pyramid_levels = pyramid_levels or list(DEFAULT_PYRAMID_LEVELS)
    classes = [train_generator.label_to_name(label) for label in range(train_generator.num_classes())]
    print(f"Dataset: {args.dataset_type}, {train_generator.size()} training images", end="")
    print(f", {validation_generator.size()} validation images" if validation_generator is not None else "")
    print(f"Classes ({len(classes)}): {', '.join(classes)}")
    print(
        f"Backbone: {args.backbone}, {training_model.count_params():,} parameters; "
        f"images resized to min side {args.image_min_side}, max side {args.image_max_side}"
        + (" (resizing off)" if args.no_resize else "")
    )
    print(
        f"Anchors: levels {list(pyramid_levels)}, sizes {anchor_params.sizes}, strides {anchor_params.strides}, "
        f"ratios {[round(float(r), 3) for r in anchor_params.ratios]}, "
        f"scales {[round(float(s), 3) for s in anchor_params.scales]}"
    )
    if args.skip_bad_images:
        unmatched, total = count_unmatched_readable(train_generator, max_images=500)
    else:
        unmatched, total = count_unmatched_annotations(train_generator, max_images=500)
    if unmatched:
        print(
            f"WARNING: {unmatched} of {total} annotations (checked on up to 500 images) have no anchor with IoU >= 0.5 "
            "and cannot be learned; adjust the anchors with --config (see retinanet-debug --anchors).",
            file=sys.stderr,
        )


def count_unmatched_readable(generator, max_images=None):
    """:func:`count_unmatched_annotations` over the images that can be read (``--skip-bad-images``)."""
    from ..errors import DatasetError
    from ..utils.diagnostics import image_anchor_coverage

    count = generator.size() if max_images is None else min(generator.size(), max_images)
    unmatched = total = 0
    for index in range(count):
        try:
            _, boxes, _, _, missing = image_anchor_coverage(generator, index)
        except DatasetError as error:
            generator.record_bad_image(index, error)
            continue
        unmatched += int(missing.sum())
        total += len(boxes)
    return unmatched, total


def training_dataset(generator, args, start=0):
    """The generator as an endless, parallel, prefetching, resumable tf.data stream.

    Endless because keras-retinanet trained ``--steps`` batches an epoch whatever the
    dataset size; resumable because each batch depends only on ``(seed, place)`` (see
    :func:`keras_retinanet.preprocessing.pipeline.make_dataset`).

    Args:
        generator: the training generator (``random_state`` and ``seed`` set).
        args: parsed arguments (``workers``, ``max_queue_size``).
        start: place of the first batch (``epochs done * steps``).
    """
    import tensorflow as tf

    from .. import distribute
    from ..preprocessing.pipeline import make_dataset

    if not generator.groups:
        raise common.CommandLineError("the training set has no images")
    parallel = tf.data.AUTOTUNE if args.workers > 1 else max(1, args.workers)
    prefetch = args.max_queue_size if args.workers > 0 else 0
    dataset = make_dataset(generator, num_parallel_calls=parallel, prefetch=prefetch, repeat=True, start=start)
    # Under multi-worker training every worker computes the same global batches and keeps its own slices.
    return distribute.shard_by_data(dataset)


def resume_settings(args, state, steps):
    """Epoch, seed and stream place of a resumed run, from the snapshot's training state.

    Options the user gave (--initial-epoch, --seed) win; a snapshot without a state
    (older files, keras-retinanet's) resumes at the epoch in its name.

    Returns:
        the stream place of the first batch.
    """
    state = state or {}
    if "initial_epoch" not in args.given and state.get("epoch") is not None:
        args.initial_epoch = int(state["epoch"])
    if "seed" not in args.given and state.get("seed") is not None:
        args.seed = int(state["seed"])
    stream = state.get("stream") or {}
    if stream and int(state.get("epoch", -1)) == args.initial_epoch:
        return int(stream["start_position"]) + (args.initial_epoch - int(stream["start_epoch"])) * int(stream["steps"])
    return args.initial_epoch * steps


def report_bad_images(generator):
    """Print the images --skip-bad-images left out (count and paths)."""
    bad = getattr(generator, "bad_images", {})
    if not bad:
        return
    print(f"Skipped {len(bad)} unreadable image(s):", file=sys.stderr)
    for path, reason in sorted(bad.items()):
        print(f"  {path}: {reason}", file=sys.stderr)


@common.reports_errors
def main(args=None):
    common.quiet_tensorflow()
    if args is None:
        args = sys.argv[1:]
    args = parse_args(args)

    if args.gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = args.gpu

    from .. import distribute

    strategy = distribute.make_strategy(args.strategy)  # before TensorFlow runs anything else
    print(distribute.describe_strategy(strategy))
    chief = distribute.is_chief(strategy)
    workers = distribute.num_workers(strategy)

    import keras

    from .. import models
    from ..utils.model_files import read_training_state

    resume_state = None
    if args.snapshot and os.path.splitext(args.snapshot)[1].lower() in (".h5", ".hdf5", ".keras"):
        resume_state = read_training_state(args.snapshot)
        if resume_state is not None and "seed" not in args.given and resume_state.get("seed") is not None:
            args.seed = int(resume_state["seed"])
    if args.seed is None:
        # every worker must compute the same batches: all take the seed the chief draws
        args.seed = distribute.shared_seed(strategy)
    print(f"Seed: {args.seed}")
    keras.utils.set_random_seed(args.seed)
    if args.deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()

    if args.mixed_precision:
        from ..utils.precision import set_precision

        policy = set_precision("mixed")
        print(f"Precision: {policy} (logits, losses, box decoding and NMS in float32)"
              + ("; a --snapshot keeps the precision it was saved with" if args.snapshot else ""))

    backbone = models.backbone(args.backbone)
    config, anchor_params, pyramid_levels = common.read_config(args)
    global_batch = distribute.global_batch_size(strategy, args.batch_size)
    if strategy.num_replicas_in_sync > 1:
        print(f"Batch: {args.batch_size} images per replica x {strategy.num_replicas_in_sync} replicas = {global_batch}")
    train_generator, validation_generator = create_generators(args, backbone, config, batch_size=global_batch)

    training_model, prediction_model = create_models(
        backbone,
        train_generator.num_classes(),
        args,
        anchor_params=anchor_params,
        pyramid_levels=pyramid_levels,
        strategy=strategy,
    )
    if chief:
        describe(args, train_generator, validation_generator, anchor_params, pyramid_levels, training_model)

    steps = args.steps if args.steps is not None else len(train_generator)
    start = resume_settings(args, resume_state, steps) if args.snapshot else 0
    stream = {"start_epoch": args.initial_epoch, "start_position": start, "steps": steps}
    callbacks = create_callbacks(
        training_model,
        prediction_model,
        validation_generator,
        args,
        resume_state=resume_state,
        stream=stream,
        chief=chief,
        workers=workers,
    )
    try:
        history = training_model.fit(
            training_dataset(train_generator, args, start=start),
            steps_per_epoch=steps,
            epochs=args.epochs,
            shuffle=False,  # the stream has its own order
            verbose=1 if chief else 2,  # the other workers print a line an epoch
            callbacks=callbacks,
            validation_data=validation_generator if args.compute_val_loss else None,
            initial_epoch=args.initial_epoch,
        )
    finally:
        report_bad_images(train_generator)

    return history


if __name__ == "__main__":
    main()
