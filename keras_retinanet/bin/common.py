"""What every command does with its parsed arguments: start, the configuration built once, the files checked before
TensorFlow loads, the model opened, and the package's errors reported as one line.

The parser is :mod:`.parsing`, the shared arguments :mod:`.arguments`. The parsed arguments stay in ``bin/``;
everything below receives the :class:`RetinaNetConfig`.
"""

import functools
import os
import sys

from ..config import DATASET_TYPES, DatasetConfig, RetinaNetConfig, read_anchor_config
from ..errors import RetinaNetError
from .console import import_tensorflow, quiet_tensorflow, setup_logging
from .parsing import CommandLineError

__all__ = ["DATASET_TYPES", "import_tensorflow", "quiet_tensorflow", "setup_logging"]


def start(args):
    """What every command does once its arguments are parsed, before TensorFlow loads: the package's messages
    go to the terminal (DEBUG too with --verbose), and TensorFlow is told to keep quiet (unless --verbose).

    Then each command checks its files (:func:`check_dataset`, ...) and calls :func:`import_tensorflow`.
    """
    verbose = getattr(args, "verbose", False)
    setup_logging(verbose)
    quiet_tensorflow(verbose)


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
    from ..readers.csv_generator import read_classes_file

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


