"""retinanet-evaluate: mAP of a model on a dataset.

    retinanet-evaluate csv val.csv classes.csv inference.keras
    retinanet-evaluate --save-path out/ csv val.csv classes.csv snapshots/resnet50_csv/resnet50_csv_10.h5   # converted
    retinanet-evaluate coco /data/coco resnet50_coco      # a preset: keras-retinanet's COCO model, by name

Besides printing them, it keeps the results (evaluation.json, per_class_ap.png) in --save-path, or else in a new
snapshots/evaluate/{model}_{dataset} folder; the last line printed names the JSON file.
"""

import os
import sys
import time

from .. import hub
from . import arguments, common, console, detection_options, parsing

MODEL_HELP = (
    "The model: a model file (an inference model, or a training snapshot, converted on loading), or a preset "
    f"name, downloaded once into the cache (${hub.ENV_HOME}; ${hub.ENV_MIRROR} names a mirror). "
    f"Presets: {hub.describe_presets()}."
)


def parse_args(args):
    """The parsed arguments, with the configuration built once as ``.config``."""
    parser = parsing.command_parser(
        "retinanet-evaluate",
        "Evaluate a RetinaNet: Pascal VOC mAP per class, COCO metrics for COCO data (or on request).",
    )
    arguments.add_dataset_subparsers(parser)
    parser.add_argument("model", help=MODEL_HELP)
    parser.add_argument("--convert-model", action="store_true", default=False,
                        help="Insist on a training model, converted first (keras-retinanet's flag; snapshots convert anyway).")
    arguments.add_backbone_argument(parser, "Backbone of the model")
    parser.add_argument("--gpu", default=None, help="Id of the GPU to use (as reported by nvidia-smi).")
    parser.add_argument("--score-threshold", dest="evaluation.score_threshold", type=arguments.probability,
                        help="Min score (default: 0.05).")
    parser.add_argument("--iou-threshold", dest="evaluation.iou_threshold", type=arguments.probability,
                        help="IoU for a match (default: 0.5).")
    parser.add_argument("--max-detections", dest="evaluation.max_detections", type=arguments.positive_int,
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
    arguments.add_image_side_arguments(parser)
    arguments.add_anchor_config_argument(parser, "Config .ini with anchor parameters (for a training snapshot).")
    parser.add_argument("--coco-metrics", dest="evaluation.coco_metrics", action="store_true",
                        help="Also compute COCO metrics (any dataset).")
    parser.add_argument("--weighted-average", dest="evaluation.weighted_average", action="store_true",
                        help="Weight each class's AP by its instances.")
    arguments.add_precision_argument(parser)
    arguments.add_unsafe_load_argument(parser)
    args = parser.parse_args(args)
    common.build_config(args)
    return args


def _check_dataset_classes(detector, generator, config, path):
    """A model whose file names its classes must be evaluated on a dataset with as many (the labels are ids)."""
    from ..config.spec import check_class_count

    if not detector.from_file:
        return  # keras-retinanet's files: the dataset's classes are taken as they come, as before
    names = [generator.label_to_name(label) for label in range(generator.num_classes())]
    dataset = config.data.dataset
    what = f"classes file {dataset.classes}" if dataset.type == "csv" else f"the {dataset.type} dataset"
    check_class_count(detector.spec, names, what, path)


@console.inference_command
@common.reports_errors
def main(args=None):
    started = time.time()
    args = parse_args(sys.argv[1:] if args is None else args)
    common.start(args)
    if args.gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = args.gpu
    # A missing model file in one line, and a preset fetched, before TensorFlow loads: offline fails within seconds.
    located = hub.locate(args.model)
    common.check_dataset(args.config.data.dataset)
    common.import_tensorflow(args.verbose)

    from .. import models
    from ..readers.from_config import configured_generator
    from ..evaluation import record_evaluation

    models.backbone(args.config.model.backbone)  # an unknown --backbone is reported before any file is read
    # The model first: its spec settles the backbone, image sides and anchors the dataset is read with. A training
    # snapshot converts by itself (as in retinanet-predict); --convert-model insists on one, as in keras-retinanet.
    detector, config = common.open_detector(
        located, args.config, convert=True if args.convert_model else None, unsafe_load=args.unsafe_load
    )
    tiles = detection_options.tiling_of(args)
    if tiles is not None:  # evaluation then runs sliced inference, as retinanet-predict --tile
        detector = detector.with_tiles(tiles)
    if detector.max_detections is not None and config.evaluation.max_detections > detector.max_detections:
        detector = detector.with_filter(max_detections=config.evaluation.max_detections)  # --max-detections 3000
    generator = configured_generator(config, models.backbone(config.model.backbone))
    _check_dataset_classes(detector, generator, config, args.model)
    # The detector prepares the images (its InputTransform) and runs its model: the path retinanet-predict takes.
    record = record_evaluation(generator, detector, config, args.model, model_file=located.path, started=started)
    print(f"Evaluation saved to {record.path}")
    return record.mAP


if __name__ == "__main__":
    main()
