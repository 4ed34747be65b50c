"""retinanet-evaluate: mAP of a model on a dataset.

    retinanet-evaluate csv val.csv classes.csv inference.keras
    retinanet-evaluate --convert-model --save-path out/ csv val.csv classes.csv snapshots/resnet50_csv/resnet50_csv_10.h5
    retinanet-evaluate coco /data/coco resnet50_coco      # a preset: keras-retinanet's COCO model, by name

Besides printing them, it keeps the results (evaluation.json, per_class_ap.png) in --save-path, or else in a new
snapshots/evaluate/{model}_{dataset} folder; the last line printed names the JSON file.
"""

import os
import sys
import time

from .. import hub
from . import common, console, detection_options

MODEL_HELP = (
    "The model: a model file (an inference model, or a training model with --convert-model), or a preset "
    f"name, downloaded once into the cache (${hub.ENV_HOME}; ${hub.ENV_MIRROR} names a mirror). "
    f"Presets: {hub.describe_presets()}."
)


def parse_args(args):
    """The parsed arguments, with the configuration built once as ``.config``."""
    parser = common.command_parser(
        "retinanet-evaluate",
        "Evaluate a RetinaNet: Pascal VOC mAP per class, COCO metrics for COCO data (or on request).",
    )
    common.add_dataset_subparsers(parser)
    parser.add_argument("model", help=MODEL_HELP)
    parser.add_argument("--convert-model", action="store_true", default=False,
                        help="Convert a training model before evaluating.")
    common.add_backbone_argument(parser, "Backbone of the model")
    parser.add_argument("--gpu", default=None, help="Id of the GPU to use (as reported by nvidia-smi).")
    parser.add_argument("--score-threshold", dest="evaluation.score_threshold", type=common.probability,
                        help="Min score (default: 0.05).")
    parser.add_argument("--iou-threshold", dest="evaluation.iou_threshold", type=common.probability,
                        help="IoU for a match (default: 0.5).")
    parser.add_argument("--max-detections", dest="evaluation.max_detections", type=common.positive_int,
                        help="Detections per image (default: 100).")
    detection_options.add_candidate_cap_argument(parser)
    detection_options.add_nms_method_arguments(parser)
    detection_options.add_tile_arguments(parser)
    parser.add_argument(
        "--save-path",
        dest="evaluation.save_path",
        help="Write each image with annotations and detections, and a precision-recall plot per class, beside "
        "evaluation.json and per_class_ap.png (default: those two in a new snapshots/evaluate/{model}_{dataset} "
        "folder).",
    )
    common.add_image_side_arguments(parser)
    common.add_anchor_config_argument(parser, "Config .ini with anchor parameters (with --convert-model).")
    parser.add_argument("--coco-metrics", dest="evaluation.coco_metrics", action="store_true",
                        help="Also compute COCO metrics (any dataset).")
    parser.add_argument("--weighted-average", dest="evaluation.weighted_average", action="store_true",
                        help="Weight each class's AP by its instances.")
    common.add_precision_argument(parser)
    common.add_unsafe_load_argument(parser)
    args = parser.parse_args(args)
    common.build_config(args)
    return args


def fetch_model(source):
    """(local file, preset spec or None) of a command's model argument: a preset is downloaded (or found in the
    cache) here, before TensorFlow loads, so that an offline run fails within seconds in one line.

    Raises:
        UnknownModelError: no such file and no preset of that name; DownloadError: the download failed.
    """
    return hub.resolve_model(source, hint="or pass the local path of the model file instead")


def open_model_detector(path, config, convert=False, unsafe_load=False, class_names=None, class_source=None,
                        spec=None):
    """The Detector of a command's model file, and the configuration reconciled with the file's spec.

    A file with a spec needs no --backbone, --config or image sides; a flag that contradicts it is an error,
    one that overrides it is used and said (a note on stderr). Without a spec the flags describe the file;
    a preset's spec describes its keras-retinanet file.

    Args:
        path: the model file, or a preset name.
        config: the command's configuration (``evaluation.precision`` gives the precision).
        convert: --convert-model: require a training model and convert it; False: a training model is refused;
            None: a training model converts by itself (retinanet-predict).
        unsafe_load: allow Lambda layers.
        class_names: names from --classes in label order, or None; their number must match the model's.
        class_source: how to call them in messages.
        spec: the spec of a file that has none (what :func:`fetch_model` gave for a preset).

    Returns:
        (Detector, reconciled RetinaNetConfig).
    """
    path, preset = fetch_model(path)
    from ..inference import open_detector

    detector, config = open_detector(
        path, config, class_names=class_names, class_source=class_source or "--classes",
        convert=None if convert is None else bool(convert), safe_mode=not unsafe_load,
        precision=config.evaluation.precision, spec=spec or preset,
    )  # fmt: skip
    for note in detector.notes:
        print(f"note: {note}", file=sys.stderr)
    return detector, config


def _check_dataset_classes(detector, generator, config, path):
    """A model whose file names its classes must be evaluated on a dataset with as many (the labels are ids)."""
    from ..config.spec import check_class_count

    if not detector.from_file:
        return  # keras-retinanet's files: the dataset's classes are taken as they come, as before
    names = [generator.label_to_name(label) for label in range(generator.num_classes())]
    dataset = config.data.dataset
    what = f"classes file {dataset.classes}" if dataset.type == "csv" else f"the {dataset.type} dataset"
    check_class_count(detector.spec, names, what, path)


def evaluate_generator(generator, model, args):
    """Run the evaluation the arguments ask for and print the results; returns the mAP (or COCO AP)."""
    from ..evaluation import evaluate_model

    return evaluate_model(generator, model, args.config)


@common.reports_errors
def main(args=None):
    started = time.time()
    args = parse_args(sys.argv[1:] if args is None else args)
    common.start(args)
    if args.gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = args.gpu
    hub.check_model_source(args.model)  # a missing model file: one line, before TensorFlow loads
    model_path, preset = args.model, None
    if not os.path.exists(args.model) and not hub.is_path_like(args.model):
        model_path, preset = fetch_model(args.model)  # a preset, before TensorFlow loads: offline fails within seconds
    common.check_dataset(args.config.data.dataset)
    common.import_tensorflow(args.verbose)

    from .. import models
    from ..preprocessing.from_config import configured_generator
    from ..evaluation import record_evaluation

    models.backbone(args.config.model.backbone)  # an unknown --backbone is reported before any file is read
    # The model first: its spec settles the backbone, image sides and anchors the dataset is read with.
    detector, config = open_model_detector(
        model_path, args.config, convert=args.convert_model, unsafe_load=args.unsafe_load, spec=preset
    )
    detector.tiling = detection_options.tiling_of(args)  # evaluation then runs sliced inference, as retinanet-predict --tile
    detector.allow_detections(config.evaluation.max_detections)  # --max-detections 3000: the model gives them
    generator = configured_generator(config, models.backbone(config.model.backbone))
    _check_dataset_classes(detector, generator, config, args.model)
    # The detector prepares the images (its InputTransform) and runs its model: the path retinanet-predict takes.
    record = record_evaluation(generator, detector, config, args.model, model_file=model_path, started=started)
    print(f"Evaluation saved to {record.path}")
    return record.mAP



# ``retinanet-evaluate``: the entry point pyproject.toml installs.
console_main = console.inference_command(main)


if __name__ == "__main__":
    console_main()
