"""What the command-line tools share: arguments, turning them into the configuration, error reporting.

Every option that is a setting of the run has the configuration key as its argparse
``dest`` (e.g. ``--image-min-side`` -> ``data.image_min_side``) and no argparse
default: an option the user did not give is absent, so :func:`build_config` takes the
default or the preset's value from :mod:`keras_retinanet.config.defaults`. The parsed
arguments stay in ``bin/``; everything below receives the :class:`RetinaNetConfig`.
"""

import argparse
import difflib
import functools
import os
import re
import sys

from .. import __version__
from ..config import DATASET_TYPES, DatasetConfig, RetinaNetConfig, read_anchor_config
from ..config.defaults import DATASET_SETS, DEFAULTS, PRECISIONS
from ..errors import RetinaNetError
from .console import import_tensorflow, quiet_tensorflow, setup_logging

__all__ = ["DATASET_TYPES", "import_tensorflow", "quiet_tensorflow", "setup_logging"]


def default_of(key):
    """The default of a 'section.name' setting, for help texts."""
    section, name = key.split(".")
    return DEFAULTS[section][name]


def version_line(prog):
    """What ``--version`` prints, e.g. 'retinanet-train 1.1.0 (keras3-retinanet; Keras-3 RetinaNet)'."""
    return f"{prog} {__version__} (keras3-retinanet; Keras-3 RetinaNet)"


def command_parser(prog, description):
    """A :class:`CommandParser` whose options are absent from the result unless given (see the module
    docstring), with ``--version`` and ``--verbose``."""
    parser = CommandParser(prog=prog, description=description, argument_default=argparse.SUPPRESS)
    parser.add_argument("--version", action="version", version=version_line(prog), help="Print the version and exit.")
    parser.add_argument(
        "--verbose",
        action="store_true",
        default=False,
        help="Show everything TensorFlow prints when it starts, and the package's debug messages.",
    )
    return parser


def start(args):
    """What every command does once its arguments are parsed, before TensorFlow loads: the package's messages
    go to the terminal (DEBUG too with --verbose), and TensorFlow is told to keep quiet (unless --verbose).

    Then each command checks its files (:func:`check_dataset`, ...) and calls :func:`import_tensorflow`.
    """
    verbose = getattr(args, "verbose", False)
    setup_logging(verbose)
    quiet_tensorflow(verbose)


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


def build_config(args):
    """The :class:`RetinaNetConfig` of parsed arguments, built once; stored as ``args.config`` and returned.

    The demo dataset uses the 'demo' preset. ``--config`` is read here, the only place the
    command line's .ini file is parsed.
    """
    settings = {key: value for key, value in vars(args).items() if "." in key and not key.startswith("dataset.")}
    dataset_type = getattr(args, "dataset_type", None)
    if dataset_type is not None:
        fields = {key.split(".", 1)[1]: value for key, value in vars(args).items() if key.startswith("dataset.")}
        settings["data.dataset"] = DatasetConfig(type=dataset_type, **fields)
    config_file = getattr(args, "anchor_config_file", None)
    if config_file:
        check_file(config_file, "config file")
        settings["model.anchors"] = read_anchor_config(config_file)
    preset = "demo" if dataset_type == "demo" else None
    try:
        args.config = RetinaNetConfig.build(settings, preset=preset)
    except ValueError as error:
        raise CommandLineError(str(error)) from None
    return args.config


def read_class_names(path):
    """The class names of a keras-retinanet classes CSV in label order (label i is names[i])."""
    from ..preprocessing.csv_generator import read_classes_file

    by_label = {label: name for name, label in read_classes_file(path).items()}
    return [by_label.get(label, str(label)) for label in range(max(by_label, default=-1) + 1)]


def open_detector(located, config, *, convert=None, unsafe_load=False, class_names=None, class_source="--classes"):
    """The Detector of a command's model, through :func:`keras_retinanet.inference.open_model`, and the
    configuration reconciled with its spec; what the settings overrode is said on stderr ('note: ...').

    Args:
        located: what :func:`keras_retinanet.hub.locate` gave for the model argument (before TensorFlow loaded).
        config: the command's configuration (``evaluation.precision`` gives the precision).
        convert: True (--convert-model) requires a training model; None converts one by itself.
        unsafe_load: allow Lambda layers.
        class_names, class_source: names from --classes in label order, and how to call them in messages.

    Returns:
        (Detector, reconciled RetinaNetConfig).
    """
    from ..inference import detector_of, open_model

    opened = open_model(
        located, config, class_names=class_names, class_source=class_source, convert=convert,
        safe_mode=not unsafe_load, precision=config.evaluation.precision,
    )  # fmt: skip
    for note in opened.notes:
        print(f"note: {note}", file=sys.stderr)
    return detector_of(opened), opened.config


def check_file(path, what, folder=False):
    """A one-line error when a file (with ``folder``: a folder) the user named does not exist or is the other kind.

    The commands check every file and folder they were given this way before TensorFlow loads, so that
    a typo costs a second, not TensorFlow's start-up.
    """
    if not path:
        return
    if not os.path.exists(path):
        raise CommandLineError(f"{what} '{path}' does not exist")
    if folder and not os.path.isdir(path):
        raise CommandLineError(f"{what} '{path}' is a file, not a folder")
    if not folder and os.path.isdir(path):
        raise CommandLineError(f"{what} '{path}' is a folder, not a file")


DATASET_FOLDER_NAMES = {"coco": "COCO", "pascal": "Pascal VOC", "oid": "Open Images", "kitti": "KITTI"}


def check_dataset(dataset):
    """One-line errors for the files and folders of a :class:`DatasetConfig` (or None) that are not there.

    The demo's folder need not exist: it is generated.
    """
    if dataset is None:
        return
    if dataset.type == "csv":
        check_file(dataset.annotations, "annotations file")
        check_file(dataset.classes, "classes file")
        check_file(dataset.val_annotations, "validation annotations file")
    elif dataset.type == "demo":
        if dataset.path and os.path.isfile(dataset.path):
            raise CommandLineError(f"demo data folder '{dataset.path}' is a file, not a folder")
    else:
        check_file(dataset.path, f"{DATASET_FOLDER_NAMES[dataset.type]} dataset folder", folder=True)


class CommandLineError(RetinaNetError):
    """A wrong argument: reported as one line, without a traceback."""


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors say what to do (exit status 2 and the usage line, as argparse's).

    - An option of the command after the dataset subcommand: put it before.
    - A misspelt option: the close ones. (argparse takes a misspelt option's value for the subcommand
      and reports "invalid choice: 'resnet50'".) A misspelt subcommand: the close one.

    Options cannot be abbreviated (``allow_abbrev=False``): '--backbon' gets "did you mean --backbone?"
    rather than silently meaning it, and an option added later cannot change what an abbreviation meant.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.given = []
        self.parent = None  # the command's parser, for a dataset subcommand's parser

    def parse_known_args(self, args=None, namespace=None):
        self.given = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def parse_args(self, args=None, namespace=None):
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:
            self.error(self._unrecognized(extras, getattr(namespace, "dataset_type", None)))
        return namespace

    def error(self, message):
        super().error(self._explain(message))

    def _subcommands(self):
        return next((action for action in self._actions if isinstance(action, argparse._SubParsersAction)), None)

    def _options(self, dataset_type=None):
        """Option strings of the command and of one of its dataset subcommands (or of all)."""
        options = set(self._option_string_actions)
        subcommands = self._subcommands()
        if subcommands is not None:
            for name, sub in subcommands.choices.items():
                if dataset_type in (None, name):
                    options.update(sub._option_string_actions)
        return options

    def _unknown_option(self, name, dataset_type=None):
        # Compared without the dashes, which every option shares and would make anything look close.
        options = {option.lstrip("-"): option for option in self._options(dataset_type) if option.startswith("--")}
        close = difflib.get_close_matches(name.lstrip("-"), list(options), n=1, cutoff=0.6)
        hint = f"; did you mean {options[close[0]]}?" if close else ""
        return f"unrecognized option {name}{hint}"

    def _misplaced(self, name, dataset_type):
        command = self.parent.prog if self.parent is not None else self.prog
        return f"{name} is an option of {command}, not of '{dataset_type}': put it before the dataset subcommand"

    def _unrecognized(self, extras, dataset_type):
        """The message for arguments nothing took: the first option among them explained."""
        for token in extras:
            if not _is_option(token):
                continue
            name = token.split("=", 1)[0]
            if dataset_type is not None and name in self._option_string_actions:
                return self._misplaced(name, dataset_type)
            return self._unknown_option(name, dataset_type)
        return "unrecognized arguments: " + " ".join(extras)

    def _explain(self, message):
        if self.parent is not None:
            # A dataset subcommand's error (a missing positional, say) caused by one of the command's options
            # given after it, where it took the place of the subcommand's own arguments.
            dataset_type = self.prog.rsplit(" ", 1)[-1]
            for token in self.given:
                name = token.split("=", 1)[0]
                if _is_option(token) and name in self.parent._option_string_actions and name not in self._option_string_actions:
                    return self._misplaced(name, dataset_type)
            return message
        subcommands = self._subcommands()
        choice = re.search(r"invalid choice: '([^']*)'", message)
        if subcommands is None or choice is None or not message.startswith(f"argument {subcommands.metavar or subcommands.dest}:"):
            return message
        value = choice.group(1)
        for token in self.given[: self.given.index(value)] if value in self.given else self.given:
            if _is_option(token) and token.split("=", 1)[0] not in self._option_string_actions:
                return self._unknown_option(token.split("=", 1)[0])  # its value was taken for the subcommand
        names = list(subcommands.choices)
        close = difflib.get_close_matches(value, names, n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"unknown dataset type '{value}'{hint} (choose from {', '.join(names)})"


def _is_option(token):
    """Whether a command-line token is an option rather than a value (negative numbers are values)."""
    return token.startswith("-") and len(token) > 1 and not re.match(r"^-\.?\d", token)


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
