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
from . import common, detection_options

logger = logging.getLogger("keras_retinanet.bin.convert_model")  # not __name__, which is '__main__' under python -m


def parse_args(args):
    """The parsed arguments, with the configuration built once as ``.config``."""
    parser = common.command_parser(
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
        type=common.positive_int,
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
    common.add_image_side_arguments(
        parser, what="Calibration images and the --raw-input graph (default: the sides the model was trained at): rescale"
    )
    parser.add_argument(
        "--opset", type=common.positive_int, default=export.DEFAULT_ONNX_OPSET, help="ONNX opset (default: %(default)s)."
    )
    common.add_backbone_argument(parser, "Backbone of the model")
    parser.add_argument("--no-nms", dest="model.nms", action="store_false", help="Leave out non-maximum suppression.")
    parser.add_argument(
        "--no-class-specific-filter",
        dest="model.class_specific_filter",
        action="store_false",
        help="Suppress across classes, keeping each anchor's best class.",
    )
    common.add_anchor_config_argument(parser, "Config .ini with the anchor parameters the model was trained with.")
    parser.add_argument("--nms-threshold", dest="model.nms_threshold", type=common.probability,
                        help="NMS IoU (default: 0.5).")
    parser.add_argument("--score-threshold", dest="model.score_threshold", type=common.probability,
                        help="Min score (default: 0.05).")
    parser.add_argument("--max-detections", dest="model.max_detections", type=common.positive_int,
                        help="Detections per image (default: 300).")
    detection_options.add_candidate_cap_argument(parser)
    detection_options.add_nms_method_arguments(parser)
    # The dataset is optional: only int8 quantization reads one.
    dataset = common.add_dataset_subparsers(parser)
    dataset.required = False
    dataset.metavar = "[DATASET]"
    common.add_unsafe_load_argument(parser)
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
    """Load ``args.model_in``, convert it and export it to ``args.model_out``; returns the inference model.

    The file's spec, if it has one, fills the settings the command line left out (``args.config`` is
    replaced by the reconciled configuration); a contradicting --backbone or --config is a ModelError.
    A preset is fetched first (before TensorFlow loads), and its spec describes its keras-retinanet file.
    """
    path, preset = hub.resolve_model(args.model_in, hint="or pass the local path of the model file instead")
    common.import_tensorflow(getattr(args, "verbose", False))
    from .. import models
    from ..checkpoint.files import read_spec
    from ..config.spec import reconcile
    from ..inference.loading import with_preset_spec
    from ..models.retinanet import output_names

    spec = read_spec(path)
    preset = preset if spec is None else None  # a file's own spec wins
    spec = spec if spec is not None else preset
    if spec is not None:
        args.config, notes = reconcile(args.config, spec, args.model_in)
        for note in notes:
            logger.info(note)
    config = args.config
    # Calibration reads the dataset at the reconciled image sides: those the model was trained at.
    representative = _representative_images(args) if args.quantize == "int8" else None

    model = models.load_model(path, backbone_name=config.model.backbone, compile=False, safe_mode=not args.unsafe_load)
    if preset is not None:
        model = with_preset_spec(model, preset, config, args.model_in)
        spec = models.spec_of(model)
    already_inference = spec is not None and "regression" not in output_names(model)
    if already_inference or _is_keras_retinanet_inference_model(path, model):
        # Converted models keep the NMS and anchor settings stored in them.
        _refuse_filter_flags(args, spec)
        logger.info(f"{args.model_in} is already an inference model; its own NMS and anchor settings are kept")
        _export(model, args, export_format=args.export_format, representative=representative)
        return model
    inference = models.convert_model(model, **config.model.filter_options())
    _export(inference, args, export_format=args.export_format, representative=representative)
    return inference


def _refuse_filter_flags(args, spec):
    """An inference model of this package cannot take other filter settings: a flag that asks for them is an error."""
    if spec is None or not spec.is_inference:
        return  # keras-retinanet's inference files: the flags are ignored, as before
    config = args.config
    given = [key for key in spec.filter if config.given(f"model.{key}") and getattr(config.model, key) != spec.filter[key]]
    if given:
        flags = ", ".join("--" + key.replace("_", "-") for key in given)
        raise export.ExportError(
            f"{args.model_in} is already an inference model with its own filter settings; {flags} cannot change "
            "them: convert the training snapshot instead"
        )


def _export(model, args, export_format, representative):
    export.export_model(
        model,
        args.model_out,
        export_format,
        quantize=args.quantize,
        representative_images=representative,
        opset=args.opset,
        raw_input=args.raw_input,
        spec=_export_spec(model, args.config) if export_format not in ("keras", "h5", "h5-keras2") else None,
    )


def _export_spec(model, config):
    """The spec stored in an export, with the image sides the command uses (a --raw-input graph resizes to them).

    A model without a spec (keras-retinanet's files) gets one from the command line: its backbone's
    preprocessing, the image sides, and the class count its heads give (named '0', '1', ...).
    """
    from .. import models
    from ..config.spec import FILTER_KEYS, DetectorSpec
    from ..models.retinanet import output_names

    spec = models.spec_of(model)
    if spec is None:
        backbone = models.backbone(config.model.backbone)
        class_names = [str(label) for label in range(_class_count(model))]
        spec = DetectorSpec.from_config(config, class_names, backbone.preprocessing_mode)
        if "regression" not in output_names(model):
            options = config.model.filter_options()
            spec = spec.with_filter(**{key: options[key] for key in FILTER_KEYS})
    return spec.replace(
        image_min_side=config.data.image_min_side, image_max_side=config.data.image_max_side, resize=not config.data.no_resize
    )


def _class_count(model) -> int:
    """The number of classes a RetinaNet's classification head gives (0 if the model has none)."""
    try:
        return int(model.get_layer("classification").output.shape[-1])
    except ValueError:  # no layer of that name
        return 0


def _representative_images(args):
    """Calibration images of the dataset named on the command line: preprocessed for the backbone, or raw."""
    from .. import models
    from ..preprocessing.from_config import configured_generator

    generator = configured_generator(args.config, models.backbone(args.config.model.backbone))
    return export.representative_images(generator, args.representative_samples, raw_input=args.raw_input)


def _is_keras_retinanet_inference_model(path, model):
    """True for an inference model read from a keras-retinanet (Keras 2) ``.h5`` file."""
    from ..checkpoint.legacy_reader import is_keras_retinanet_file
    from ..models.retinanet import output_names

    return "regression" not in output_names(model) and is_keras_retinanet_file(path)


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
