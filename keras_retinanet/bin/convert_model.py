"""retinanet-convert-model: turn a training snapshot into an inference model, in any export format.

    retinanet-convert-model snapshots/resnet50_csv/resnet50_csv_10.h5 inference.h5
    retinanet-convert-model snapshots/resnet50_csv/resnet50_csv_10.h5 detector.onnx
    retinanet-convert-model snapshots/resnet50_csv/resnet50_csv_10.h5 detector.tflite --quantize int8 csv train.csv classes.csv
    retinanet-convert-model snapshots/resnet50_csv/resnet50_csv_10.keras detector.onnx --raw-input
    retinanet-convert-model snapshots/resnet50_csv/resnet50_csv_10.keras detector_int8.onnx --raw-input --quantize int8 csv train.csv classes.csv
    retinanet-convert-model resnet50_coco coco.keras          # a preset: the written file carries its spec

A model file of this package says its backbone, anchors and image sides (its spec): --backbone, --config
and the image sides are then not needed, and a --backbone or --config that contradicts the file is an
error. keras-retinanet's own files have no spec and take the flags as before; a preset (e.g. resnet50_coco,
keras-retinanet's COCO model) is such a file with the spec it lacks, and the file written carries that spec.
"""

import logging
import sys

from .. import export, hub
from . import arguments, common, detection_options, parsing

logger = logging.getLogger("keras_retinanet.bin.convert_model")  # not __name__, which is '__main__' under python -m


def parse_args(args):
    """The parsed arguments, with the configuration built once as ``.config``."""
    parser = parsing.command_parser(
        "retinanet-convert-model",
        "Convert a training model into an inference model that outputs boxes, scores and labels, "
        "as a Keras file or exported with its box decoding and NMS to SavedModel, TFLite or ONNX.",
    )
    parser.add_argument(
        "model_in",
        help="The training model (.h5 or .keras), ours or keras-retinanet's, or a preset name, downloaded once "
        f"into the cache (${hub.ENV_HOME}; ${hub.ENV_MIRROR} names a mirror). Presets: {hub.describe_presets()}.",
    )
    parser.add_argument(
        "model_out",
        help="Where to write the inference model: .keras, .h5, .tflite, .onnx, or a folder name without "
        "extension for a SavedModel (or say which with --format).",
    )
    parser.add_argument(
        "--format",
        default=None,
        choices=export.FORMATS,
        help="Output format (default: from the extension of model_out). All but keras/h5/h5-keras2 carry only the "
        "detector: images in, boxes, scores and labels out. h5-keras2 writes a Keras 2 .h5 file that tf.keras 2.x "
        "and keras-retinanet 1.0.0 load (ResNet, MobileNet, VGG and DenseNet backbones).",
    )
    parser.add_argument(
        "--quantize",
        default=None,
        choices=export.QUANTIZATIONS,
        help="tflite: store float16 weights, or quantize to int8; onnx: int8 (ONNX Runtime's static "
        "quantization, raw input too). int8 is calibrated on a dataset given after the options (as for "
        "retinanet-train, e.g. 'csv train.csv classes.csv'); anchors, decoding and NMS stay float32.",
    )
    parser.add_argument(
        "--representative-samples",
        type=arguments.positive_int,
        default=100,
        help="Images of the dataset that calibrate --quantize int8 (default: %(default)s).",
    )
    parser.add_argument(
        "--raw-input",
        action="store_true",
        default=False,  # the parser leaves out what is not given; a command's own flag has a default
        help="savedmodel, tflite and onnx: the graph takes one uint8 BGR image (H, W, 3) of any size, "
        "preprocesses and resizes it inside as the model's spec says, and returns boxes in that image's "
        "pixels; the spec (class names and all) is stored in the file. Without it the graph takes "
        "(B, H, W, 3) float32 images already resized and preprocessed.",
    )
    arguments.add_image_side_arguments(
        parser, what="Calibration images and the --raw-input graph (default: the sides the model was trained at): rescale"
    )
    parser.add_argument(
        "--opset", type=arguments.positive_int, default=export.DEFAULT_ONNX_OPSET, help="ONNX opset (default: %(default)s)."
    )
    arguments.add_backbone_argument(parser, "Backbone of the model")
    parser.add_argument("--no-nms", dest="model.nms", action="store_false", help="Leave out non-maximum suppression.")
    parser.add_argument(
        "--no-class-specific-filter",
        dest="model.class_specific_filter",
        action="store_false",
        help="Suppress across classes, keeping each anchor's best class.",
    )
    arguments.add_anchor_config_argument(parser, "Config .ini with the anchor parameters the model was trained with.")
    parser.add_argument("--nms-threshold", dest="model.nms_threshold", type=arguments.probability,
                        help="NMS IoU (default: 0.5).")
    parser.add_argument("--score-threshold", dest="model.score_threshold", type=arguments.probability,
                        help="Min score (default: 0.05).")
    parser.add_argument("--max-detections", dest="model.max_detections", type=arguments.positive_int,
                        help="Detections per image (default: 300).")
    detection_options.add_candidate_cap_argument(parser)
    detection_options.add_nms_method_arguments(parser)
    # The dataset is optional: only int8 quantization reads one.
    dataset = arguments.add_dataset_subparsers(parser)
    dataset.required = False
    dataset.metavar = "[DATASET]"
    arguments.add_unsafe_load_argument(parser)
    args = parser.parse_args(args)
    # Every argument is checked before the slow loading and conversion: the export options, the file, the .ini.
    args.export_format = export.resolve_format(args.model_out, args.format)
    export.check_export_options(
        args.export_format, args.quantize, has_representative_data=args.dataset_type is not None, raw_input=args.raw_input
    )
    hub.check_model_source(args.model_in)  # a file or a preset; nothing is downloaded yet
    common.build_config(args)
    return args


def convert(args):
    """Open ``args.model_in``, convert it and export it to ``args.model_out``; returns the inference model.

    The model is opened through :func:`keras_retinanet.inference.open_model`, as every command opens one: the
    file's spec, if it has one, fills the settings the command line left out (``args.config`` is replaced by the
    reconciled configuration) and a contradicting --backbone or --config is a ModelError; a preset is fetched
    first (before TensorFlow loads) and its spec describes its keras-retinanet file. An inference model keeps its
    filter: one of this package refuses other filter flags, keras-retinanet's ignore them, as before.
    """
    located = hub.locate(args.model_in, hint="or pass the local path of the model file instead")
    common.import_tensorflow(getattr(args, "verbose", False))
    from ..inference import open_model
    from ..inference.exported import is_exported

    if is_exported(located.path):
        raise export.ExportError(
            f"{args.model_in} is already an exported model; convert the .keras or .h5 model file it came from"
        )
    opened = open_model(located, args.config, safe_mode=not args.unsafe_load, keep_filter=True)
    for note in opened.notes:
        logger.info(note)
    args.config = opened.config
    if not opened.converted:
        # Converted models keep the NMS and anchor settings stored in them.
        logger.info(f"{args.model_in} is already an inference model; its own NMS and anchor settings are kept")
    # Calibration reads the dataset at the reconciled image sides: those the model was trained at.
    representative = _representative_images(args) if args.quantize == "int8" else None
    _export(opened, args, export_format=args.export_format, representative=representative)
    return opened.model


def _export(opened, args, export_format, representative):
    """Write the opened model; an export carries its spec, with the image sides the command uses (a --raw-input
    graph resizes to them; keras-retinanet's files get theirs from the command line, classes named '0', '1', ...)."""
    export.export_model(
        opened.model,
        args.model_out,
        export_format,
        quantize=args.quantize,
        representative_images=representative,
        opset=args.opset,
        raw_input=args.raw_input,
        spec=opened.spec if export_format not in ("keras", "h5", "h5-keras2") else None,
    )


def _representative_images(args):
    """Calibration images of the dataset named on the command line: preprocessed for the backbone, or raw."""
    from .. import models
    from ..readers.from_config import configured_generator

    generator = configured_generator(args.config, models.backbone(args.config.model.backbone))
    return export.representative_images(generator, args.representative_samples, raw_input=args.raw_input)


@common.reports_errors
def main(args=None):
    args = parse_args(sys.argv[1:] if args is None else args)
    common.start(args)
    common.check_dataset(args.config.data.dataset)  # read only by --quantize int8, but named: it must be there
    convert(args)
    kind = ", ".join(filter(None, [args.export_format, args.quantize, "raw input" if args.raw_input else None]))
    logger.info(f"Wrote inference model {args.model_out} ({kind})")


if __name__ == "__main__":
    main()
