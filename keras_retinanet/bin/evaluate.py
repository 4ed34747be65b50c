"""retinanet-evaluate: mAP of a model on a dataset.

    retinanet-evaluate csv val.csv classes.csv inference.h5
    retinanet-evaluate --convert-model --save-path out/ csv val.csv classes.csv snapshots/resnet50_csv_10.h5
"""

import argparse
import os
import sys

from . import common


def parse_args(args):
    parser = argparse.ArgumentParser(
        prog="retinanet-evaluate",
        description="Evaluate a RetinaNet: Pascal VOC mAP per class, COCO metrics for COCO data (or on request).",
    )
    common.add_dataset_subparsers(parser, evaluation=True)
    parser.add_argument("model", help="The model: an inference model, or a training model with --convert-model.")
    parser.add_argument("--convert-model", action="store_true", help="Convert a training model before evaluating.")
    parser.add_argument("--backbone", default="resnet50", help="Backbone of the model (default: %(default)s).")
    parser.add_argument("--gpu", help="Id of the GPU to use (as reported by nvidia-smi).")
    parser.add_argument("--score-threshold", type=common.probability, default=0.05, help="Min score (default: 0.05).")
    parser.add_argument("--iou-threshold", type=common.probability, default=0.5, help="IoU for a match (default: 0.5).")
    parser.add_argument("--max-detections", type=common.positive_int, default=100, help="Detections per image.")
    parser.add_argument(
        "--save-path", help="Write each image with annotations and detections, and a precision-recall plot per class."
    )
    parser.add_argument("--image-min-side", type=common.positive_int, default=800, help="Rescale the smaller side.")
    parser.add_argument("--image-max-side", type=common.positive_int, default=1333, help="Cap the larger side.")
    parser.add_argument("--no-resize", action="store_true", help="Do not resize images.")
    parser.add_argument("--config", help="Config .ini with anchor parameters (with --convert-model).")
    parser.add_argument("--coco-metrics", action="store_true", help="Also compute COCO metrics (any dataset).")
    parser.add_argument("--weighted-average", action="store_true", help="Weight each class's AP by its instances.")
    common.add_precision_argument(parser)
    common.add_unsafe_load_argument(parser)
    args = parser.parse_args(args)
    return common.apply_demo_image_sides(args)


def load_inference_model(args, anchor_params=None, pyramid_levels=None):
    """The model to evaluate, converted if asked; a training model without --convert-model is an error."""
    from .. import models
    from ..errors import ModelError
    from ..layers import FilterDetections

    common.check_file(args.model, "model")
    model = models.load_model(args.model, backbone_name=args.backbone, compile=False, safe_mode=not args.unsafe_load)
    names = [t._keras_history.operation.name for t in model.outputs]
    is_training_model = "regression" in names and "classification" in names
    if not args.convert_model and is_training_model:
        raise ModelError(f"{args.model} is a training model; pass --convert-model to evaluate it")
    if args.convert_model and not is_training_model:
        raise ModelError(f"{args.model} is not a RetinaNet training model (outputs: {', '.join(names)}); "
                         "drop --convert-model for an inference model")
    if not is_training_model and not any(isinstance(layer, FilterDetections) for layer in model.layers):
        raise ModelError(f"{args.model} is not a RetinaNet model: it has no detection filter (outputs: {', '.join(names)})")
    if args.precision != "float32":
        from ..utils.precision import with_precision

        model = with_precision(model, args.precision)
    if args.convert_model:
        return models.convert_model(model, anchor_params=anchor_params, pyramid_levels=pyramid_levels)
    return model


def evaluate_generator(generator, model, args):
    """Run the evaluation the arguments ask for and print the results; returns the mAP (or COCO AP)."""
    from ..utils import eval as voc_eval

    if args.save_path:
        os.makedirs(args.save_path, exist_ok=True)

    coco_stats = None
    if args.dataset_type == "coco" or args.coco_metrics:
        from ..utils.coco_eval import evaluate_coco

        coco_stats = evaluate_coco(generator, model, threshold=args.score_threshold, output_dir=args.save_path or ".")
        if args.dataset_type == "coco":
            return coco_stats[0] if coco_stats is not None else 0.0

    average_precisions, inference_time, curves = voc_eval.evaluate(
        generator,
        model,
        iou_threshold=args.iou_threshold,
        score_threshold=args.score_threshold,
        max_detections=args.max_detections,
        save_path=args.save_path,
        return_curves=True,
    )
    weighted, unweighted = voc_eval.print_evaluation(
        average_precisions, generator.label_to_name, inference_time=inference_time, num_images=generator.size()
    )
    if args.save_path:
        voc_eval.save_precision_recall_plots(curves, args.save_path, label_to_name=generator.label_to_name)
    return weighted if args.weighted_average else unweighted


@common.reports_errors
def main(args=None):
    common.quiet_tensorflow()
    args = parse_args(sys.argv[1:] if args is None else args)
    if args.gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = args.gpu

    from .. import models

    backbone = models.backbone(args.backbone)
    config, anchor_params, pyramid_levels = common.read_config(args)
    generator = common.create_evaluation_generator(args, backbone, config)
    model = load_inference_model(args, anchor_params, pyramid_levels)
    return evaluate_generator(generator, model, args)


if __name__ == "__main__":
    main()
