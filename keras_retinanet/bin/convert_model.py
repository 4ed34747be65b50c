"""retinanet-convert-model: turn a training snapshot into an inference model.

    retinanet-convert-model snapshots/resnet50_csv_10.h5 inference.h5
"""

import argparse
import sys

from . import common


def parse_args(args):
    parser = argparse.ArgumentParser(
        prog="retinanet-convert-model",
        description="Convert a training model into an inference model that outputs boxes, scores and labels.",
    )
    parser.add_argument("model_in", help="The training model (.h5 or .keras), ours or keras-retinanet's.")
    parser.add_argument("model_out", help="Where to write the inference model (.h5 or .keras).")
    parser.add_argument("--backbone", default="resnet50", help="Backbone of the model (default: %(default)s).")
    parser.add_argument("--no-nms", dest="nms", action="store_false", help="Leave out non-maximum suppression.")
    parser.add_argument(
        "--no-class-specific-filter",
        dest="class_specific_filter",
        action="store_false",
        help="Suppress across classes, keeping each anchor's best class.",
    )
    parser.add_argument("--config", help="Config .ini with the anchor parameters the model was trained with.")
    parser.add_argument("--nms-threshold", type=common.probability, default=0.5, help="NMS IoU (default: 0.5).")
    parser.add_argument("--score-threshold", type=common.probability, default=0.05, help="Min score (default: 0.05).")
    parser.add_argument("--max-detections", type=common.positive_int, default=300, help="Detections per image.")
    return parser.parse_args(args)


def convert(args):
    """Load ``args.model_in``, convert it and save it to ``args.model_out``; returns the inference model."""
    from .. import models
    from ..utils.atomic import save_model_atomically

    common.check_file(args.model_in, "model")
    _, anchor_params, pyramid_levels = common.read_config(args)
    model = models.load_model(args.model_in, backbone_name=args.backbone, compile=False)
    if _is_keras_retinanet_inference_model(args.model_in, model):
        # keras-retinanet's converted models keep the NMS and anchor settings stored in them.
        print(f"{args.model_in} is already an inference model; its own NMS and anchor settings are kept")
        save_model_atomically(model, args.model_out)
        return model
    inference = models.convert_model(
        model,
        nms=args.nms,
        class_specific_filter=args.class_specific_filter,
        anchor_params=anchor_params,
        pyramid_levels=pyramid_levels,
        nms_threshold=args.nms_threshold,
        score_threshold=args.score_threshold,
        max_detections=args.max_detections,
    )
    save_model_atomically(inference, args.model_out)
    return inference


def _is_keras_retinanet_inference_model(path, model):
    """True for an inference model read from a keras-retinanet (Keras 2) ``.h5`` file."""
    from ..models.retinanet import output_names
    from ..utils import legacy

    return "regression" not in output_names(model) and legacy.is_keras_retinanet_file(path)


@common.reports_errors
def main(args=None):
    common.quiet_tensorflow()
    args = parse_args(sys.argv[1:] if args is None else args)
    convert(args)
    print(f"Wrote inference model {args.model_out}")


if __name__ == "__main__":
    main()
