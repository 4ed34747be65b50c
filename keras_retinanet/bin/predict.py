"""retinanet-predict: detect objects in images, folders of images, videos or a camera.

    retinanet-predict model.keras photo.jpg photos/ clip.mp4 --output-dir detections/
    retinanet-predict model.keras 0 --max-frames 100          # camera 0
    retinanet-predict resnet50_coco photo.jpg                 # a preset: keras-retinanet's COCO model, by name
    retinanet-predict model.keras plates/ --tile 640 --max-detections 3000   # large images, many objects

A model file of this package says how to use it (backbone, image sides, class names); keras-retinanet's
own files are described with --backbone, --image-min-side/--image-max-side and --classes as before.

Writes each input with its detections drawn (images as PNG, videos and cameras as MP4), all
detections to detections.json and detections.csv, and the detections of each class in each image
(or frame) to counts.csv and counts.json, in the output folder. --tile slices large images into tiles
detected at the model's own scale (sliced inference). An input that cannot be read
is reported in one line and skipped; the files are written for the others, and the exit status is 1.
"""

import logging
import os
import sys

from .. import hub
from ..errors import RetinaNetError
from ..inference.prediction_files import write_prediction_files
from ..inference.sources import SourcePredictor, collect_sources, predict_sources
from . import arguments, common, console, detection_options, parsing

# Prediction keeps only confident detections, unlike evaluation (0.05), which needs the whole ranking.
DRAW_SCORE_THRESHOLD = 0.5

logger = logging.getLogger("keras_retinanet.bin.predict")  # not __name__, which is '__main__' under python -m


class InputsFailed(RetinaNetError):
    """Some inputs could not be read; the others' detections were written."""


def parse_args(args):
    """The parsed arguments, with the configuration built once as ``.config``."""
    parser = parsing.command_parser("retinanet-predict", "Detect objects with a RetinaNet.")
    parser.add_argument(
        "model",
        help="Model file (an inference model, or a training snapshot, converted on loading), or a preset name, "
        f"downloaded once into the cache (${hub.ENV_HOME}; ${hub.ENV_MIRROR} names a mirror). "
        f"Presets: {hub.describe_presets()}.",
    )
    parser.add_argument("inputs", nargs="+", help="Images, folders of images, videos, or a camera index (0).")
    parser.add_argument("--output-dir", default="predictions", help="Where to write results (default: %(default)s).")
    arguments.add_backbone_argument(parser, "Backbone of the model (files of this package say it themselves)")
    parser.add_argument("--convert-model", action="store_true", default=False,
                        help="Insist on a training model, converted first (keras-retinanet's flag; snapshots convert anyway).")
    arguments.add_anchor_config_argument(parser, "Config .ini with anchor parameters (for a training snapshot).")
    parser.add_argument("--classes", default=None,
                        help="Classes CSV (class_name,id) naming the labels of a model file that does not name them.")
    parser.add_argument("--score-threshold", type=arguments.probability, default=DRAW_SCORE_THRESHOLD,
                        help="Min score of a detection kept and drawn (default: %(default)s).")
    parser.add_argument("--max-detections", dest="model.max_detections", type=arguments.positive_int,
                        help="Detections per image, at most (default: the model's own; 300 for a snapshot).")
    detection_options.add_candidate_cap_argument(parser)
    detection_options.add_nms_method_arguments(parser)
    detection_options.add_tile_arguments(parser)
    parser.add_argument("--max-frames", type=arguments.positive_int, default=None,
                        help="Stop each video or camera after this many frames.")
    arguments.add_image_side_arguments(parser)
    parser.add_argument("--no-draw", dest="draw", action="store_false", default=True,
                        help="Only write the detection files.")
    arguments.add_precision_argument(parser)
    arguments.add_unsafe_load_argument(parser)
    args = parser.parse_args(args)
    common.build_config(args)
    return args


def capped_line(capped, predicted: int, max_detections, tiled: bool) -> str:
    """The one line saying where the cap on the number of detections bound, and how to keep more."""
    each = "each tile" if tiled else "an image"
    return (f"the detection cap bound in {len(capped)} of {predicted} images or frames (first: {capped[0][0]}): the "
            f"model keeps at most {max_detections} detections for {each}; give --max-detections N to keep more")


@console.inference_command
@common.reports_errors
def main(args=None):
    args = parse_args(sys.argv[1:] if args is None else args)
    common.start(args)
    inputs = collect_sources(args.inputs)
    located = hub.locate(args.model)  # before TensorFlow loads: offline fails within seconds
    class_names = None
    if args.classes:
        common.check_file(args.classes, "classes file")
        class_names = common.read_class_names(args.classes)

    common.import_tensorflow(args.verbose)
    detector, _ = common.open_detector(
        # A training snapshot converts by itself (None); --convert-model insists on one.
        located, args.config, convert=True if args.convert_model else None, unsafe_load=args.unsafe_load,
        class_names=class_names, class_source=f"--classes {args.classes}",
    )  # fmt: skip
    predictor = SourcePredictor(detector, args.score_threshold, tile=detection_options.tiling_of(args))
    os.makedirs(args.output_dir, exist_ok=True)
    results, failed = predict_sources(predictor, inputs, args.output_dir, args.draw, max_frames=args.max_frames)
    write_prediction_files(results, args.output_dir, predictor.counts, detector.spec.class_names)
    logger.info(f"{len(results)} detections in {len(inputs) - len(failed)} inputs; results in {args.output_dir}")
    if predictor.capped:
        logger.warning(capped_line(predictor.capped, len(predictor.counts), detector.max_detections, args.tile is not None))
    if failed:
        raise InputsFailed(
            f"{len(failed)} of {len(inputs)} inputs could not be read (skipped above); "
            f"the detections of the others are in {args.output_dir}"
        )
    return results


if __name__ == "__main__":
    main()
