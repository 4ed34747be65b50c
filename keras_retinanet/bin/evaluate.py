"""retinanet-evaluate: mAP of a model on a dataset.

    retinanet-evaluate csv val.csv classes.csv inference.h5
    retinanet-evaluate --convert-model --save-path out/ csv val.csv classes.csv snapshots/resnet50_csv_10.h5
"""

import os
import sys

from . import common


def parse_args(args):
    """The parsed arguments, with the configuration built once as ``.config``."""
    parser = common.command_parser(
        "retinanet-evaluate",
        "Evaluate a RetinaNet: Pascal VOC mAP per class, COCO metrics for COCO data (or on request).",
    )
    common.add_dataset_subparsers(parser, evaluation=True)
    parser.add_argument("model", help="The model: an inference model, or a training model with --convert-model.")
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
    parser.add_argument(
        "--save-path",
        dest="evaluation.save_path",
        help="Write each image with annotations and detections, and a precision-recall plot per class.",
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


def load_inference_model(path, config, convert=False, unsafe_load=False):
    """The model to evaluate or run, converted if asked; a training model without ``convert`` is an error.

    Args:
        path: the model file.
        config: its ``model`` part names the backbone and anchors, ``evaluation.precision`` the precision.
        convert: convert a training model into an inference model.
        unsafe_load: allow Lambda layers.
    """
    from .. import models
    from ..errors import ModelError
    from ..layers import FilterDetections
    from ..models.precision import with_precision
    from ..models.retinanet import output_names

    common.check_file(path, "model")
    model = models.load_model(path, backbone_name=config.model.backbone, compile=False, safe_mode=not unsafe_load)
    names = output_names(model)
    is_training_model = "regression" in names and "classification" in names
    if not convert and is_training_model:
        raise ModelError(f"{path} is a training model; pass --convert-model to evaluate it")
    if convert and not is_training_model:
        raise ModelError(f"{path} is not a RetinaNet training model (outputs: {', '.join(names)}); "
                         "drop --convert-model for an inference model")
    if not is_training_model and not any(isinstance(layer, FilterDetections) for layer in model.layers):
        raise ModelError(f"{path} is not a RetinaNet model: it has no detection filter (outputs: {', '.join(names)})")
    if config.evaluation.precision != "float32":
        model = with_precision(model, config.evaluation.precision)
    if convert:
        return models.convert_model(
            model, anchor_params=config.model.anchor_parameters, pyramid_levels=config.model.pyramid_levels
        )
    return model


def evaluate_generator(generator, model, args):
    """Run the evaluation the arguments ask for and print the results; returns the mAP (or COCO AP)."""
    from ..evaluation import evaluate_model

    return evaluate_model(generator, model, args.config)


@common.reports_errors
def main(args=None):
    common.quiet_tensorflow()
    args = parse_args(sys.argv[1:] if args is None else args)
    if args.gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = args.gpu

    from .. import models
    from ..data.build import configured_generator

    backbone = models.backbone(args.config.model.backbone)
    generator = configured_generator(args.config, backbone)
    model = load_inference_model(args.model, args.config, convert=args.convert_model, unsafe_load=args.unsafe_load)
    return evaluate_generator(generator, model, args)


if __name__ == "__main__":
    main()
