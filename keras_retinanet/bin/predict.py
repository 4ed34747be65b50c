"""retinanet-predict: detect objects in images, folders of images or videos.

    retinanet-predict model.h5 photo.jpg photos/ clip.mp4 --classes classes.csv --output-dir detections/

Writes each input with its detections drawn (images as PNG, videos as MP4) and all
detections to detections.json and detections.csv in the output folder.
"""

import argparse
import csv
import json
import os
import sys

from . import common

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
# Prediction keeps only confident detections, unlike evaluation (0.05), which needs the whole ranking.
DRAW_SCORE_THRESHOLD = 0.5


def parse_args(args):
    """The parsed arguments, with the configuration built once as ``.config``."""
    parser = common.command_parser("retinanet-predict", "Detect objects with a RetinaNet.")
    parser.add_argument("model", help="Inference model (or a training model with --convert-model).")
    parser.add_argument("inputs", nargs="+", help="Images, folders of images, or videos.")
    parser.add_argument("--output-dir", default="predictions", help="Where to write results (default: %(default)s).")
    common.add_backbone_argument(parser, "Backbone of the model")
    parser.add_argument("--convert-model", action="store_true", default=False, help="Convert a training model first.")
    common.add_anchor_config_argument(parser, "Config .ini with anchor parameters (with --convert-model).")
    parser.add_argument("--classes", default=None, help="Classes CSV (class_name,id) to name the labels.")
    parser.add_argument("--score-threshold", type=common.probability, default=DRAW_SCORE_THRESHOLD,
                        help="Min score of a detection kept and drawn (default: %(default)s).")
    common.add_image_side_arguments(parser)
    parser.add_argument("--no-draw", dest="draw", action="store_false", default=True,
                        help="Only write the detection files.")
    common.add_precision_argument(parser)
    common.add_unsafe_load_argument(parser)
    args = parser.parse_args(args)
    common.build_config(args)
    return args


def read_class_names(path):
    """label -> class name from a keras-retinanet classes CSV."""
    from ..preprocessing.csv_generator import read_classes_file

    return {label: name for name, label in read_classes_file(path).items()}


def collect_inputs(paths):
    """Expand folders into their images; returns [(path, 'image' | 'video')]."""
    found = []
    for path in paths:
        if os.path.isdir(path):
            for name in sorted(os.listdir(path)):
                if name.lower().endswith(IMAGE_EXTENSIONS):
                    found.append((os.path.join(path, name), "image"))
        elif not os.path.exists(path):
            raise common.CommandLineError(f"input '{path}' does not exist")
        elif path.lower().endswith(VIDEO_EXTENSIONS):
            found.append((path, "video"))
        else:
            found.append((path, "image"))
    if not found:
        raise common.CommandLineError("no images or videos found in the inputs")
    return found


class Predictor:
    """Detects objects in BGR images with an inference model and draws them."""

    def __init__(self, model, input_transform, score_threshold, class_names):
        self.model = model
        self.input_transform = input_transform
        self.score_threshold = score_threshold
        self.class_names = class_names

    def name(self, label):
        return self.class_names.get(int(label), str(int(label)))

    def __call__(self, image):
        """Returns (records, drawn image); each record a dict with box, score, label and class."""
        from ..evaluation.detections import detect_image, keep_confident
        from ..utils.visualization import draw_detections

        boxes, scores, labels, _ = detect_image(self.model, image, self.input_transform)
        boxes, scores, labels = keep_confident(boxes, scores, labels, self.score_threshold)
        records = [
            {
                "x1": float(b[0]),
                "y1": float(b[1]),
                "x2": float(b[2]),
                "y2": float(b[3]),
                "score": float(s),
                "label": int(l),
                "class_name": self.name(l),
            }
            for b, s, l in zip(boxes, scores, labels)
        ]
        drawn = image.copy()
        draw_detections(drawn, boxes, scores, labels, label_to_name=self.name, score_threshold=self.score_threshold)
        return records, drawn


def predict_image(predictor, path, output_dir, draw):
    import cv2

    from ..data.image_io import read_image_bgr

    records, drawn = predictor(read_image_bgr(path))
    if draw:
        cv2.imwrite(os.path.join(output_dir, os.path.splitext(os.path.basename(path))[0] + ".png"), drawn)
    return [dict(source=path, frame=None, **r) for r in records]


def predict_video(predictor, path, output_dir, draw):
    import cv2
    import keras

    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise common.CommandLineError(f"cannot open video '{path}'")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    writer = None
    results = []
    progress = keras.utils.Progbar(frames, unit_name="frame")
    index = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            records, drawn = predictor(frame)
            results.extend(dict(source=path, frame=index, **r) for r in records)
            if draw:
                if writer is None:
                    out = os.path.join(output_dir, os.path.splitext(os.path.basename(path))[0] + ".mp4")
                    height, width = drawn.shape[:2]
                    writer = cv2.VideoWriter(out, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
                writer.write(drawn)
            index += 1
            progress.update(index)
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    return results


def write_results(results, output_dir):
    """detections.json and detections.csv, one record per detection."""
    with open(os.path.join(output_dir, "detections.json"), "w", encoding="utf8") as handle:
        json.dump(results, handle, indent=1)
    fields = ["source", "frame", "x1", "y1", "x2", "y2", "score", "label", "class_name"]
    with open(os.path.join(output_dir, "detections.csv"), "w", newline="", encoding="utf8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(results)


@common.reports_errors
def main(args=None):
    common.quiet_tensorflow()
    args = parse_args(sys.argv[1:] if args is None else args)
    inputs = collect_inputs(args.inputs)
    class_names = read_class_names(args.classes) if args.classes else {}

    from .. import models
    from ..data.input_transform import InputTransform
    from .evaluate import load_inference_model

    config = args.config
    model = load_inference_model(args.model, config, convert=args.convert_model, unsafe_load=args.unsafe_load)
    transform = InputTransform.for_backbone(models.backbone(config.model.backbone), config.data)
    predictor = Predictor(model, transform, args.score_threshold, class_names)
    os.makedirs(args.output_dir, exist_ok=True)
    results = []
    for path, kind in inputs:
        handler = predict_video if kind == "video" else predict_image
        results.extend(handler(predictor, path, args.output_dir, args.draw))
    write_results(results, args.output_dir)
    print(f"{len(results)} detections in {len(inputs)} inputs; results in {args.output_dir}")
    return results


if __name__ == "__main__":
    main()
