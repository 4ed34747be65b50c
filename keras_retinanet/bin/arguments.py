"""The arguments several commands share, and the value types of their options.

Every option that is a setting of the run has the configuration key as its argparse ``dest`` (e.g.
``--image-min-side`` -> ``data.image_min_side``) and no argparse default (see :func:`.parsing.command_parser`):
an option the user did not give is absent, so :func:`.common.build_config` takes the default or the preset's value
from :mod:`keras_retinanet.config.defaults`.
"""

import argparse

from ..config.defaults import DATASET_SETS, DEFAULTS, PRECISIONS


def default_of(key):
    """The default of a 'section.name' setting, for help texts."""
    section, name = key.split(".")
    return DEFAULTS[section][name]


def positive_int(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_float(text):
    value = float(text)
    if not value > 0.0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def probability(text):
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie between 0 and 1, got {text}")
    return value


def add_dataset_subparsers(parser, training=False):
    """Add one subcommand per dataset format, with keras-retinanet's arguments.

    Args:
        parser: the command's ArgumentParser.
        training: add the arguments only training needs (training and validation sets); other commands get
            ``--set``, the one set they read.

    Returns:
        the subparsers action.
    """
    parser.set_defaults(dataset_type=None)
    subparsers = parser.add_subparsers(help="Dataset type.", dest="dataset_type", metavar="DATASET")
    subparsers.required = True

    def subcommand(name, help_text):
        sub = subparsers.add_parser(name, help=help_text, argument_default=argparse.SUPPRESS)
        sub.parent = parser  # a CommandParser (the parser's class): its errors can name the command's options
        return sub

    def add_sets(sub, kind):
        sets = DATASET_SETS[kind]
        if training:
            sub.add_argument("--train-set", dest="dataset.train_set", help=f"Training set (default: {sets['train']}).")
            sub.add_argument("--val-set", dest="dataset.val_set", help=f"Validation set (default: {sets['val']}).")
        else:
            sub.add_argument("--set", dest="dataset.eval_set", help=f"Set to use (default: {sets['eval']}).")

    coco = subcommand("coco", "COCO layout: annotations/instances_{set}.json, images/{set}/.")
    coco.add_argument("dataset.path", metavar="coco_path", help="Path to the dataset folder (e.g. /data/coco).")
    add_sets(coco, "coco")

    pascal = subcommand("pascal", "Pascal VOC layout: Annotations/, JPEGImages/, ImageSets/Main/.")
    pascal.add_argument("dataset.path", metavar="pascal_path", help="Path to the dataset folder (e.g. /data/VOC2007).")
    pascal.add_argument("--image-extension", dest="dataset.image_extension", help="Image file extension (default: .jpg).")
    add_sets(pascal, "pascal")

    oid = subcommand("oid", "Open Images layout.")
    oid.add_argument("dataset.path", metavar="main_dir", help="Path to the dataset folder.")
    oid.add_argument("--version", dest="dataset.version", help="Open Images version (default: v4).")
    oid.add_argument("--labels-filter", dest="dataset.labels_filter", nargs="+", help="Only these class names.")
    oid.add_argument("--annotation-cache-dir", dest="dataset.annotation_cache_dir", help="Where to cache parsed annotations.")
    oid.add_argument("--parent-label", dest="dataset.parent_label", help="Use the children of this parent label.")
    if not training:
        add_sets(oid, "oid")

    kitti = subcommand("kitti", "KITTI layout: {subset}/images, {subset}/labels.")
    kitti.add_argument("dataset.path", metavar="kitti_path", help="Path to the dataset folder.")
    if not training:
        add_sets(kitti, "kitti")

    csv_parser = subcommand("csv", "keras-retinanet CSV files.")
    csv_parser.add_argument("dataset.annotations", metavar="annotations", help="CSV of annotations: path,x1,y1,x2,y2,class_name.")
    csv_parser.add_argument("dataset.classes", metavar="classes", help="CSV of classes: class_name,id.")
    if training:
        csv_parser.add_argument("--val-annotations", dest="dataset.val_annotations", help="CSV of validation annotations (optional).")

    demo = subcommand("demo", "The built-in synthetic shapes dataset, generated on first use.")
    demo.add_argument(
        "--data-dir",
        dest="dataset.path",
        help="Where the demo dataset is generated (default: ~/.cache/keras_retinanet/demo).",
    )
    if not training:
        add_sets(demo, "demo")
    return subparsers


def add_image_side_arguments(parser, what="Rescale"):
    """``--image-min-side``, ``--image-max-side`` and ``--no-resize``."""
    parser.add_argument(
        "--image-min-side",
        dest="data.image_min_side",
        type=positive_int,
        help=f"{what} the smaller image side to this (default: {default_of('data.image_min_side')}; demo: 160).",
    )
    parser.add_argument(
        "--image-max-side",
        dest="data.image_max_side",
        type=positive_int,
        help=f"Cap the larger image side at this (default: {default_of('data.image_max_side')}; demo: 160).",
    )
    parser.add_argument("--no-resize", dest="data.no_resize", action="store_true", help="Do not resize images.")


def add_anchor_config_argument(parser, help_text="Config .ini with anchor parameters and pyramid levels."):
    parser.add_argument("--config", dest="anchor_config_file", default=None, help=help_text)


def add_backbone_argument(parser, help_text="Backbone name"):
    parser.add_argument("--backbone", dest="model.backbone", help=f"{help_text} (default: {default_of('model.backbone')}).")


def add_unsafe_load_argument(parser, what="the model", dest="unsafe_load"):
    """``--unsafe-load``: load a model file even if it holds layers that run stored code (Lambda)."""
    # A configuration setting ('section.name') is absent unless given; a command's own flag defaults to False.
    default = {} if "." in dest else {"default": False}
    parser.add_argument(
        "--unsafe-load",
        dest=dest,
        action="store_true",
        **default,
        help=f"Load {what} even if it holds Lambda layers, which run code stored in the file. Only for files you trust.",
    )


def add_precision_argument(parser):
    """``--precision``: run the model in float32 or a mixed precision (see ``models.precision``)."""
    parser.add_argument(
        "--precision",
        dest="evaluation.precision",
        choices=PRECISIONS,
        help="Compute in this precision ('mixed': bfloat16 on CPU, float16 on GPU; 'auto': 16-bit only where the "
        "hardware has it and the model's detections are kept, else float32; default: float32).",
    )
