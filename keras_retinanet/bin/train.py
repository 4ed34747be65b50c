"""retinanet-train: train a RetinaNet on a CSV, COCO, Pascal VOC, Open Images, KITTI or the demo dataset.

Global flags go before the dataset subcommand, as in keras-retinanet:

    retinanet-train --backbone resnet50 --epochs 20 csv annotations.csv classes.csv
    retinanet-train --weights resnet50_coco csv annotations.csv classes.csv   # fine-tune keras-retinanet's COCO model
"""

import argparse
import os
import sys

from .. import hub
from ..config.defaults import BACKBONE_IMAGENET_WEIGHTS, IMAGENET_WEIGHTS_ENV, NO_WEIGHTS
from ..config.schema import DATASET_TYPES
from . import arguments, common, detection_options, parsing, recipe_options

# keras_retinanet.distribute.STRATEGY_NAMES, spelt out so that --help does not import TensorFlow.
STRATEGY_CHOICES = ("auto", "one", "mirrored", "multi-worker")
TENSORBOARD_FREQ_WORDS = ("epoch", "batch")


def tensorboard_freq(text):
    """--tensorboard-freq: 'epoch', 'batch' or a number of batches (keras-retinanet's choices, TensorBoard's update_freq)."""
    if text in TENSORBOARD_FREQ_WORDS:
        return text
    try:
        return arguments.positive_int(text)
    except (ValueError, argparse.ArgumentTypeError):
        raise argparse.ArgumentTypeError(f"expected 'epoch', 'batch' or a number of batches, not '{text}'") from None


def bare_switches(argv):
    """keras-retinanet's bare ``--imagenet-weights`` (a switch there) right before the dataset subcommand: the
    subcommand ('csv', ...) is not its value."""
    argv = list(argv)
    for index, token in enumerate(argv[:-1]):
        if token == "--imagenet-weights" and argv[index + 1] in DATASET_TYPES:
            argv[index] = f"--imagenet-weights={BACKBONE_IMAGENET_WEIGHTS}"
    return argv


def parse_args(args):
    """The parsed arguments, with the run's configuration built once as ``.config``."""
    default = arguments.default_of
    parser = parsing.command_parser(
        "retinanet-train", "Train a RetinaNet. Global options go before the dataset subcommand."
    )
    arguments.add_dataset_subparsers(parser, training=True)

    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--snapshot", dest="training.snapshot", help="Resume training from this snapshot (.h5 or .keras).")
    weights.add_argument(
        "--imagenet-weights",
        dest="training.imagenet_weights",
        metavar="PATH|NAME|URL",
        nargs="?",
        const=BACKBONE_IMAGENET_WEIGHTS,
        help="Initialise the backbone from these ImageNet weights (alone, as keras-retinanet's switch: the "
        "default ones, also with the demo): a local file (e.g. ResNet-50-model.keras.h5 or "
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5), a weights name or a URL. Default: the backbone's "
        "own, as keras-retinanet used them ({backbone}_imagenet, e.g. resnet50_imagenet), downloaded once into "
        f"the cache (${hub.ENV_HOME}, default ~/.cache/keras_retinanet) and verified; ${hub.ENV_MIRROR} names a "
        f"mirror, ${IMAGENET_WEIGHTS_ENV} replaces the default ('{NO_WEIGHTS}': random).",
    )
    weights.add_argument(
        "--weights",
        dest="training.weights",
        metavar="FILE|PRESET|URL",
        help="Initialise the whole model from this model file, by layer name: a local file, a URL or a preset, "
        "downloaded once into the cache. With another number of classes (transfer learning) the classification "
        "head's last layer is re-initialised and every other layer loaded; the start-up lines say so. "
        f"Presets: {hub.describe_presets()}.",
    )
    weights.add_argument(
        "--no-weights",
        dest="training.imagenet_weights",
        action="store_const",
        const=NO_WEIGHTS,
        help="Start from random weights (the demo does); a ResNet then needs --trainable-bn to learn.",
    )

    arguments.add_backbone_argument(parser)
    parser.add_argument(
        "--batch-size",
        dest="data.batch_size",
        type=arguments.positive_int,
        help=f"Images per batch on each replica (default: {default('data.batch_size')}); "
        "a step trains on this times the replicas.",
    )
    parser.add_argument(
        "--strategy",
        dest="training.strategy",
        choices=STRATEGY_CHOICES,
        help="tf.distribute strategy: one device, every GPU of this machine (mirrored), or the workers TF_CONFIG "
        "names (multi-worker); auto picks multi-worker with TF_CONFIG, else mirrored with several GPUs, else one "
        f"device (default: {default('training.strategy')}).",
    )
    parser.add_argument(
        "--mixed-precision",
        dest="training.mixed_precision",
        action="store_true",
        help="Compute in bfloat16 (CPU, TPU) or float16 with loss scaling (GPU), weights and outputs in float32.",
    )
    parser.add_argument("--gpu", default=None, help="Id of the GPU to use (as reported by nvidia-smi).")
    parser.add_argument(
        "--multi-gpu",
        type=int,
        default=0,
        metavar="N",
        help="keras-retinanet's multi_gpu_model: 0 or 1 train on one device; for more use --strategy mirrored.",
    )
    parser.add_argument(
        "--multi-gpu-force",
        action="store_true",
        default=False,
        help="Accepted for keras-retinanet (it unlocked --multi-gpu); --strategy mirrored needs no such flag.",
    )
    parser.add_argument(
        "--initial-epoch",
        dest="training.initial_epoch",
        type=int,
        help="Epoch to start from (default: 0, or the epoch in the --snapshot file name).",
    )
    parser.add_argument("--epochs", dest="training.epochs", type=arguments.positive_int,
                        help=f"Number of epochs (default: {default('training.epochs')}).")
    parser.add_argument(
        "--steps",
        dest="training.steps",
        type=arguments.positive_int,
        help=f"Steps per epoch (default: {default('training.steps')}; demo: one pass over the data).",
    )
    parser.add_argument("--lr", dest="training.lr", type=float, help=f"Learning rate (default: {default('training.lr')}).")
    parser.add_argument("--optimizer-clipnorm", dest="training.optimizer_clipnorm", type=float,
                        help=f"Clip gradients to this norm (default: {default('training.optimizer_clipnorm')}).")
    parser.add_argument("--snapshot-path", dest="training.snapshot_path",
                        help="Folder for snapshots (default: the run folder, snapshots/{backbone}_{dataset}; "
                        "keras-retinanet's was ./snapshots itself: --snapshot-path snapshots).")
    parser.add_argument(
        "--run-dir",
        dest="training.run_dir",
        metavar="DIR",
        help="Folder of this run's record: config.json, metrics.csv (a row per epoch), curves.png and, without "
        "--snapshot-path, the snapshots (default: the first free one of snapshots/{backbone}_{dataset}, "
        "snapshots/{backbone}_{dataset}_2, ...; a --snapshot resume continues its run's folder).",
    )
    parser.add_argument("--tensorboard-dir", dest="training.tensorboard_dir", help="TensorBoard log folder (default: none).")
    parser.add_argument(
        "--tensorboard-freq",
        dest="training.tensorboard_freq",
        metavar="epoch|batch|N",
        type=tensorboard_freq,
        help="How often TensorBoard logs the losses: after every epoch, every batch or every N batches "
        f"(default: {default('training.tensorboard_freq')}; with --tensorboard-dir).",
    )
    parser.add_argument("--no-snapshots", dest="training.snapshots", action="store_false", help="Do not save snapshots.")
    parser.add_argument("--save-keras", dest="training.save_keras", action="store_true",
                        help="Also save each snapshot in the .keras format.")
    parser.add_argument("--no-evaluation", dest="training.evaluation", action="store_false",
                        help="Skip per-epoch evaluation.")
    parser.add_argument("--freeze-backbone", dest="model.freeze_backbone", action="store_true",
                        help="Do not train the backbone's layers.")
    parser.add_argument("--trainable-bn", dest="model.trainable_bn", action="store_true",
                        help="Train BatchNorm layers (for training from scratch; the demo does).")
    parser.add_argument("--random-transform", dest="data.random_transform", action="store_true",
                        help="Augment with random affine transforms and colour changes.")
    recipe_options.add_recipe_arguments(parser)
    arguments.add_image_side_arguments(parser)
    detection_options.add_train_tile_arguments(parser)
    arguments.add_anchor_config_argument(parser)
    parser.add_argument(
        "--auto-anchors",
        dest="training.auto_anchors",
        action="store_true",
        help="Before training, fit anchor ratios, scales and sizes to the training set when the anchors give fewer "
        "than --auto-anchors-threshold of its annotations an IoU >= 0.5; the fitted .ini is written to the snapshot "
        "folder (anchors.ini) and the model carries them. Not with --snapshot (a resumed model keeps its anchors).",
    )
    parser.add_argument(
        "--auto-anchors-threshold",
        dest="training.auto_anchors_threshold",
        metavar="SHARE",
        type=arguments.probability,
        help="Share of the annotations (0-1) with an anchor of IoU >= 0.5 below which --auto-anchors fits "
        f"(default: {default('training.auto_anchors_threshold')}).",
    )
    parser.add_argument("--weighted-average", dest="training.weighted_average", action="store_true",
                        help="Weight each class's AP by its instances.")
    parser.add_argument("--compute-val-loss", dest="training.compute_val_loss", action="store_true",
                        help="Compute the validation loss each epoch.")
    parser.add_argument("--reduce-lr-patience", dest="training.reduce_lr_patience", type=int,
                        help=f"Epochs without improvement before lr drops (default: {default('training.reduce_lr_patience')}).")
    parser.add_argument("--reduce-lr-factor", dest="training.reduce_lr_factor", type=float,
                        help=f"Factor the lr drops by (default: {default('training.reduce_lr_factor')}).")
    parser.add_argument("--group-method", dest="data.group_method", choices=("none", "random", "ratio"),
                        help=f"How images are batched together (default: {default('data.group_method')}).")
    parser.add_argument(
        "--workers",
        dest="data.workers",
        type=int,
        help=f"Batches prepared in parallel (0: no prefetching; >1: as many as help; default: {default('data.workers')}).",
    )
    parser.add_argument("--multiprocessing", action="store_true", default=False,
                        help="Accepted for keras-retinanet and ignored (a note says so): tf.data prepares the batches "
                        "in threads, --workers of them.")
    parser.add_argument("--max-queue-size", dest="data.max_queue_size", type=int,
                        help=f"Batches prepared ahead of training (default: {default('data.max_queue_size')}).")
    parser.add_argument("--pyramid-feature-size", dest="model.pyramid_feature_size", type=arguments.positive_int,
                        help=f"FPN channels (default: {default('model.pyramid_feature_size')}).")
    parser.add_argument("--classification-feature-size", dest="model.classification_feature_size",
                        type=arguments.positive_int, help="Classification subnet width (default: 256).")
    parser.add_argument("--regression-feature-size", dest="model.regression_feature_size", type=arguments.positive_int,
                        help="Regression subnet width (default: 256).")
    parser.add_argument(
        "--seed",
        dest="training.seed",
        type=int,
        help="Random seed of the weights, the batch order and the augmentation (default: a random one, "
        "printed and stored in the snapshots; a resumed run takes the snapshot's).",
    )
    parser.add_argument(
        "--deterministic",
        dest="training.deterministic",
        action="store_true",
        help="Deterministic TensorFlow ops, so that a run with the same --seed repeats exactly (slower on GPU).",
    )
    parser.add_argument(
        "--skip-bad-images",
        dest="data.skip_bad_images",
        action="store_true",
        help="Skip training images that cannot be read (their place in the batch goes to the next image) "
        "and list them at the end, instead of stopping at the first.",
    )
    arguments.add_unsafe_load_argument(parser, "a --snapshot", dest="training.unsafe_load")
    args = parser.parse_args(bare_switches(args))
    check_arguments(args)
    common.build_config(args)
    return args


def check_arguments(args):
    """One-line errors for arguments that cannot work, before anything slow starts."""
    if args.multi_gpu > 1:
        raise parsing.CommandLineError(
            f"--multi-gpu {args.multi_gpu}: keras-retinanet's multi_gpu_model is gone from Keras; use --strategy "
            "mirrored, which trains on every GPU of this machine (--gpu 0,1 picks them), --batch-size images on each"
        )
    named = vars(args)
    common.check_file(named.get("training.snapshot"), "snapshot")
    check_weights_source(named.get("training.imagenet_weights"), "--imagenet-weights")
    check_weights_source(named.get("training.weights"), "--weights")


def check_weights_source(source, flag):
    """A one-line error for weights that are no file, URL or known name (nothing is downloaded yet)."""
    if source in (None, NO_WEIGHTS, BACKBONE_IMAGENET_WEIGHTS) or (flag == "--weights" and hub.find_preset(source) is not None):
        return
    try:
        hub.check_source(source)
    except hub.UnknownWeightsError as error:
        raise parsing.CommandLineError(f"{flag}: {error}") from None


def notes(args):
    """One line each for keras-retinanet flags that are accepted but do nothing here."""
    if args.multi_gpu_force:
        yield "--multi-gpu-force does nothing here: --strategy mirrored trains on several GPUs without it"
    if args.multiprocessing:
        yield ("--multiprocessing is ignored: tf.data prepares the batches in threads (--workers, --max-queue-size), "
               "not in keras-retinanet's worker processes")
    if args.config.given("training.tensorboard_freq") and not args.config.training.tensorboard_dir:
        yield "--tensorboard-freq does nothing without --tensorboard-dir"
    for key in ("data.tile_min_visibility", "data.tile_object_chance"):
        if args.config.given(key) and args.config.data.tile is None and not args.config.training.snapshot:
            yield f"--{key.split('.', 1)[1].replace('_', '-')} does nothing without --tile"


@common.reports_errors
def main(args=None):
    argv = sys.argv[1:] if args is None else list(args)
    args = parse_args(argv)
    common.start(args)
    for note in notes(args):
        print(f"note: {note}", file=sys.stderr)
    common.check_dataset(args.config.data.dataset)
    if args.gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = args.gpu
    common.import_tensorflow(args.verbose)  # its start-up notices filtered out (unless --verbose)
    # Imported here: TensorFlow loads with it, and argument errors above should not wait for that.
    from ..engine.trainer import train

    return train(args.config, command=["retinanet-train", *argv])


if __name__ == "__main__":
    main()
