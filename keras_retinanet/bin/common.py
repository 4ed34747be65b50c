"""What the command-line tools share: dataset arguments, generator creation, error reporting."""

import argparse
import functools
import os
import sys

from ..errors import RetinaNetError

DATASET_TYPES = ("csv", "coco", "pascal", "oid", "kitti", "demo")


def quiet_tensorflow():
    """Silence TensorFlow's start-up chatter unless the user asked for it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def add_dataset_subparsers(parser, training=False, evaluation=False):
    """Add one subcommand per dataset format, with keras-retinanet's arguments.

    Args:
        parser: the command's ArgumentParser.
        training: add the arguments only training needs (validation sets, OID filters).
        evaluation: the subcommand reads the set to evaluate (COCO/Pascal default to val/test sets).

    Returns:
        the subparsers action.
    """
    subparsers = parser.add_subparsers(help="Dataset type.", dest="dataset_type", metavar="DATASET")
    subparsers.required = True

    coco = subparsers.add_parser("coco", help="COCO layout: annotations/instances_{set}.json, images/{set}/.")
    coco.add_argument("coco_path", help="Path to the dataset folder (e.g. /data/coco).")
    if training:
        coco.add_argument("--train-set", default="train2017", help="Training set name (default: %(default)s).")
        coco.add_argument("--val-set", default="val2017", help="Validation set name (default: %(default)s).")
    else:
        coco.add_argument("--set", dest="coco_set", default="val2017", help="Set to use (default: %(default)s).")

    pascal = subparsers.add_parser("pascal", help="Pascal VOC layout: Annotations/, JPEGImages/, ImageSets/Main/.")
    pascal.add_argument("pascal_path", help="Path to the dataset folder (e.g. /data/VOC2007).")
    pascal.add_argument("--image-extension", default=".jpg", help="Image file extension (default: %(default)s).")
    if training:
        pascal.add_argument("--train-set", default="trainval", help="Training set name (default: %(default)s).")
        pascal.add_argument("--val-set", default="test", help="Validation set name (default: %(default)s).")
    else:
        pascal.add_argument("--set", dest="pascal_set", default="test", help="Set to use (default: %(default)s).")

    oid = subparsers.add_parser("oid", help="Open Images layout.")
    oid.add_argument("main_dir", help="Path to the dataset folder.")
    oid.add_argument("--version", default="v4", help="Open Images version (default: %(default)s).")
    oid.add_argument("--labels-filter", nargs="+", default=None, help="Only these class names.")
    oid.add_argument("--annotation-cache-dir", default=".", help="Where to cache parsed annotations.")
    oid.add_argument("--parent-label", default=None, help="Use the children of this parent label.")
    if not training:
        oid.add_argument("--set", dest="oid_set", default="validation", help="Subset to use (default: %(default)s).")

    kitti = subparsers.add_parser("kitti", help="KITTI layout: {subset}/images, {subset}/labels.")
    kitti.add_argument("kitti_path", help="Path to the dataset folder.")
    if not training:
        kitti.add_argument("--set", dest="kitti_set", default="val", help="Subset to use (default: %(default)s).")

    csv_parser = subparsers.add_parser("csv", help="keras-retinanet CSV files.")
    csv_parser.add_argument("annotations", help="CSV of annotations: path,x1,y1,x2,y2,class_name.")
    csv_parser.add_argument("classes", help="CSV of classes: class_name,id.")
    if training:
        csv_parser.add_argument("--val-annotations", help="CSV of validation annotations (optional).")

    demo = subparsers.add_parser("demo", help="The built-in synthetic shapes dataset, generated on first use.")
    demo.add_argument(
        "--data-dir",
        default=None,
        help="Where the demo dataset is generated (default: ~/.cache/keras_retinanet/demo).",
    )
    if not training:
        demo.add_argument("--set", dest="demo_set", default="val", help="Split to use (default: %(default)s).")
    return subparsers


def demo_data_dir(args):
    """Folder of the demo dataset for these arguments."""
    if getattr(args, "data_dir", None):
        return args.data_dir
    cache = os.environ.get("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache"))
    return os.path.join(cache, "keras_retinanet", "demo")


# What `retinanet-train demo` generates: small images and objects the default anchors cover.
DEMO_DATASET = {
    "num_train": 400,
    "num_val": 100,
    "image_size": 160,
    "min_object_size": 32,
    "max_object_size": 96,
    "min_objects": 1,
    "max_objects": 4,
    "seed": 0,
}


def ensure_demo_dataset(args):
    """Generate the demo dataset unless its folder already holds it; returns its paths.

    A marker written after the last file says the folder is complete and with which
    settings, so an interrupted generation is redone rather than trusted.
    """
    import json

    from ..datasets.demo import make_demo_dataset

    folder = demo_data_dir(args)
    marker = os.path.join(folder, "COMPLETE.json")
    settings = json.dumps(DEMO_DATASET, sort_keys=True)
    if os.path.isfile(marker):
        with open(marker, encoding="utf8") as handle:
            if handle.read() == settings:
                return {split: os.path.join(folder, f"{split}.csv") for split in ("train", "val", "classes")}
    print(f"Generating the demo dataset in {folder} ...")
    dataset = make_demo_dataset(folder, **DEMO_DATASET)
    with open(marker, "w", encoding="utf8") as handle:
        handle.write(settings)
    return {"train": dataset.train_csv, "val": dataset.val_csv, "classes": dataset.classes_csv}


def create_generator(args, subset, **kwargs):
    """The dataset reader for ``args.dataset_type``.

    Args:
        args: parsed arguments of a command (see :func:`add_dataset_subparsers`).
        subset: 'train', 'val' (training's validation set) or 'eval' (the set a
            command other than training reads).
        **kwargs: passed to the generator (batch size, resizing, augmentation, ...).

    Returns:
        a :class:`keras_retinanet.preprocessing.generator.Generator`, or None when the
        dataset has no such subset (a CSV dataset without validation annotations).
    """
    kind = args.dataset_type
    if kind == "coco":
        from ..preprocessing.coco import CocoGenerator

        name = {"train": getattr(args, "train_set", None), "val": getattr(args, "val_set", None)}.get(subset)
        return CocoGenerator(args.coco_path, name or args.coco_set, **kwargs)
    if kind == "pascal":
        from ..preprocessing.pascal_voc import PascalVocGenerator

        name = {"train": getattr(args, "train_set", None), "val": getattr(args, "val_set", None)}.get(subset)
        return PascalVocGenerator(
            args.pascal_path, name or args.pascal_set, image_extension=args.image_extension, **kwargs
        )
    if kind == "oid":
        from ..preprocessing.open_images import OpenImagesGenerator

        name = {"train": "train", "val": "validation"}.get(subset) or args.oid_set
        return OpenImagesGenerator(
            args.main_dir,
            subset=name,
            version=args.version,
            labels_filter=args.labels_filter,
            annotation_cache_dir=args.annotation_cache_dir,
            parent_label=args.parent_label,
            **kwargs,
        )
    if kind == "kitti":
        from ..preprocessing.kitti import KittiGenerator

        name = {"train": "train", "val": "val"}.get(subset) or args.kitti_set
        return KittiGenerator(args.kitti_path, subset=name, **kwargs)
    if kind == "csv":
        from ..preprocessing.csv_generator import CSVGenerator

        if subset == "val":
            if not getattr(args, "val_annotations", None):
                return None
            return CSVGenerator(args.val_annotations, args.classes, **kwargs)
        return CSVGenerator(args.annotations, args.classes, **kwargs)
    if kind == "demo":
        from ..preprocessing.csv_generator import CSVGenerator

        paths = ensure_demo_dataset(args)
        split = {"train": "train", "val": "val"}.get(subset) or args.demo_set
        return CSVGenerator(paths[split], paths["classes"], **kwargs)
    raise ValueError(f"unknown dataset type '{kind}'; expected one of {', '.join(DATASET_TYPES)}")


def check_file(path, what):
    """Exit with a one-line error when a file the user named does not exist."""
    if path and not os.path.isfile(path):
        raise CommandLineError(f"{what} '{path}' does not exist")


class CommandLineError(RetinaNetError):
    """A wrong argument: reported as one line, without a traceback."""


def reports_errors(main):
    """Turn the package's own errors and missing files into a one-line message and exit status 1.

    Anything else is a bug and keeps its traceback.
    """

    @functools.wraps(main)
    def wrapper(args=None):
        try:
            result = main(args)
            # Console scripts run sys.exit(main()): a returned value would become the exit
            # status. Callers that pass arguments (tests, other code) get the result.
            return result if args is not None else None
        except (RetinaNetError, FileNotFoundError) as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(1)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)

    return wrapper


def positive_int(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def probability(text):
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie between 0 and 1, got {text}")
    return value


def random_augmentation(prng=None):
    """keras-retinanet's ``--random-transform`` augmentation: (transform, visual effect) generators.

    Args:
        prng: ``np.random.RandomState`` both generators draw from (default: a fresh one each).

    Rotation, translation and shear up to 0.1, scaling 0.9-1.1, flips in both
    directions, and small contrast, brightness, hue and saturation changes.
    """
    from ..utils.image import random_visual_effect_generator
    from ..utils.transform import random_transform_generator

    transform_generator = random_transform_generator(
        min_rotation=-0.1,
        max_rotation=0.1,
        min_translation=(-0.1, -0.1),
        max_translation=(0.1, 0.1),
        min_shear=-0.1,
        max_shear=0.1,
        min_scaling=(0.9, 0.9),
        max_scaling=(1.1, 1.1),
        flip_x_chance=0.5,
        flip_y_chance=0.5,
        prng=prng,
    )
    visual_effect_generator = random_visual_effect_generator(
        contrast_range=(0.9, 1.1),
        brightness_range=(-0.1, 0.1),
        hue_range=(-0.05, 0.05),
        saturation_range=(0.95, 1.05),
        prng=prng,
    )
    return transform_generator, visual_effect_generator


def read_config(args):
    """The parsed --config file (or None), and the anchor parameters and pyramid levels it sets."""
    from ..utils.config import parse_anchor_parameters, parse_pyramid_levels, read_config_file

    if not getattr(args, "config", None):
        return None, None, None
    check_file(args.config, "config file")
    config = read_config_file(args.config)
    anchor_params = parse_anchor_parameters(config) if config.has_section("anchor_parameters") else None
    pyramid_levels = parse_pyramid_levels(config) if config.has_section("pyramid_levels") else None
    return config, anchor_params, pyramid_levels


def add_unsafe_load_argument(parser, what="the model"):
    """``--unsafe-load``: load a model file even if it holds layers that run stored code (Lambda)."""
    parser.add_argument(
        "--unsafe-load",
        action="store_true",
        help=f"Load {what} even if it holds Lambda layers, which run code stored in the file. Only for files you trust.",
    )


def add_precision_argument(parser):
    """``--precision``: run the model in float32 or a mixed precision (see ``utils.precision``)."""
    from ..utils.precision import PRECISIONS

    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="float32",
        help="Compute in this precision ('mixed': bfloat16 on CPU, float16 on GPU; default: %(default)s).",
    )


def apply_demo_image_sides(args):
    """Give the demo dataset the image sizes it trains at, unless the user chose sizes; returns ``args``."""
    if args.dataset_type == "demo" and args.image_min_side == 800 and args.image_max_side == 1333:
        from .train import DEMO_DEFAULTS

        args.image_min_side = DEMO_DEFAULTS["image_min_side"]
        args.image_max_side = DEMO_DEFAULTS["image_max_side"]
    return args


def create_evaluation_generator(args, backbone, config=None, **kwargs):
    """The dataset a command other than training reads, in file order, sized and preprocessed for ``backbone``.

    Args:
        args: parsed arguments with ``image_min_side``, ``image_max_side`` (and ``no_resize`` if the command has it).
        backbone: the :class:`keras_retinanet.models.Backbone` whose preprocessing and feature shapes apply.
        config: parsed config file (anchor parameters), or None.
        **kwargs: further generator options (augmentation, for retinanet-debug).
    """
    options = {
        "image_min_side": args.image_min_side,
        "image_max_side": args.image_max_side,
        "no_resize": getattr(args, "no_resize", False),
        "config": config,
        "shuffle_groups": False,
        "preprocess_image": backbone.preprocess_image,
        "compute_shapes": backbone.feature_shapes,
    }
    options.update(kwargs)
    return create_generator(args, "eval", **options)
