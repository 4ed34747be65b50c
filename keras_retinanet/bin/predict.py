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

import csv
import io
import json
import logging
import os
import sys

from .. import hub
from ..errors import DatasetError, RetinaNetError
from . import common, console, detection_options

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
# Prediction keeps only confident detections, unlike evaluation (0.05), which needs the whole ranking.
DRAW_SCORE_THRESHOLD = 0.5
CSV_FIELDS = ["source", "frame", "x1", "y1", "x2", "y2", "score", "label", "class_name"]
COUNT_FIELDS = ["source", "frame", "class_name", "count"]

logger = logging.getLogger("keras_retinanet.bin.predict")  # not __name__, which is '__main__' under python -m


class InputsFailed(RetinaNetError):
    """Some inputs could not be read; the others' detections were written."""


def parse_args(args):
    """The parsed arguments, with the configuration built once as ``.config``."""
    parser = common.command_parser("retinanet-predict", "Detect objects with a RetinaNet.")
    parser.add_argument(
        "model",
        help="Model file (an inference model, or a training snapshot, converted on loading), or a preset name, "
        f"downloaded once into the cache (${hub.ENV_HOME}; ${hub.ENV_MIRROR} names a mirror). "
        f"Presets: {hub.describe_presets()}.",
    )
    parser.add_argument("inputs", nargs="+", help="Images, folders of images, videos, or a camera index (0).")
    parser.add_argument("--output-dir", default="predictions", help="Where to write results (default: %(default)s).")
    common.add_backbone_argument(parser, "Backbone of the model (files of this package say it themselves)")
    parser.add_argument("--convert-model", action="store_true", default=False,
                        help="Insist on a training model, converted first (keras-retinanet's flag; snapshots convert anyway).")
    common.add_anchor_config_argument(parser, "Config .ini with anchor parameters (for a training snapshot).")
    parser.add_argument("--classes", default=None,
                        help="Classes CSV (class_name,id) naming the labels of a model file that does not name them.")
    parser.add_argument("--score-threshold", type=common.probability, default=DRAW_SCORE_THRESHOLD,
                        help="Min score of a detection kept and drawn (default: %(default)s).")
    parser.add_argument("--max-detections", dest="model.max_detections", type=common.positive_int,
                        help="Detections per image, at most (default: the model's own; 300 for a snapshot).")
    detection_options.add_candidate_cap_argument(parser)
    detection_options.add_nms_method_arguments(parser)
    detection_options.add_tile_arguments(parser)
    parser.add_argument("--max-frames", type=common.positive_int, default=None,
                        help="Stop each video or camera after this many frames.")
    common.add_image_side_arguments(parser)
    parser.add_argument("--no-draw", dest="draw", action="store_false", default=True,
                        help="Only write the detection files.")
    common.add_precision_argument(parser)
    common.add_unsafe_load_argument(parser)
    args = parser.parse_args(args)
    common.build_config(args)
    return args


def _open_camera(index):
    """An opened cv2.VideoCapture of camera ``index``, or a one-line error when OpenCV cannot open one."""
    import cv2

    # OpenCV logs its failed attempts over several lines; the error below says it in one.
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        capture = cv2.VideoCapture(index)
    finally:
        cv2.utils.logging.setLogLevel(level)
    if not capture.isOpened():
        capture.release()
        raise common.CommandLineError(f"cannot open camera {index}: OpenCV finds no camera with that index")
    return capture


def collect_inputs(paths):
    """Expand folders into their images; returns [(path or camera index, 'image' | 'video' | 'camera')].

    A bare number that is not a file is a camera index; the camera must open.
    """
    found = []
    for path in paths:
        if os.path.isdir(path):
            for name in sorted(os.listdir(path)):
                if name.lower().endswith(IMAGE_EXTENSIONS):
                    found.append((os.path.join(path, name), "image"))
        elif path.isdigit() and not os.path.exists(path):
            _open_camera(int(path)).release()  # checked now, before the model is loaded
            found.append((int(path), "camera"))
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
    """Detects objects in BGR images with a Detector, draws them and counts them per class.

    Args:
        detector: a :class:`keras_retinanet.inference.Detector`.
        score_threshold: keep and draw detections scoring above this.
        options: further keyword arguments of ``Detector.predict`` (max_detections, tile, ...).

    Attributes:
        counts: [(source, frame or None, {class name: count})], one per image or frame predicted.
    """

    def __init__(self, detector, score_threshold, **options):
        self.detector = detector
        self.score_threshold = score_threshold
        self.options = options
        self.counts = []

    def name(self, label):
        return self.detector.spec.name_of(int(label))

    def __call__(self, image, source=None, frame=None):
        """Returns (records, drawn image); each record a dict with box, score, label and class."""
        from ..drawing import draw_detections

        result = self.detector.predict(image, score_threshold=self.score_threshold, **self.options)
        self.counts.append((source, frame, result["counts"]))
        records = [
            {
                "x1": float(b[0]),
                "y1": float(b[1]),
                "x2": float(b[2]),
                "y2": float(b[3]),
                "score": float(s),
                "label": int(label),
                "class_name": str(n),
            }
            for b, s, label, n in zip(result["boxes"], result["scores"], result["labels"], result["names"])
        ]
        drawn = image.copy()
        draw_detections(
            drawn, result["boxes"], result["scores"], result["labels"],
            label_to_name=self.name, score_threshold=self.score_threshold,
        )  # fmt: skip
        return records, drawn


def predict_image(predictor, path, output_dir, draw):
    """Detections of one image file, its drawing written; raises DatasetError when the file cannot be read."""
    import cv2

    from ..data.image_io import read_image_bgr

    records, drawn = predictor(read_image_bgr(path), source=path)
    if draw:
        cv2.imwrite(os.path.join(output_dir, os.path.splitext(os.path.basename(path))[0] + ".png"), drawn)
    return [dict(source=path, frame=None, **r) for r in records]


def predict_video(predictor, source, output_dir, draw, max_frames=None):
    """Detections of every frame of a video file or camera (an int index), the drawn frames written as MP4.

    A camera runs until it stops giving frames, ``max_frames``, or Ctrl-C; what it gave is kept.

    Raises:
        InputsFailed: the video cannot be opened.
    """
    import cv2
    import keras

    camera = isinstance(source, int)
    capture = _open_camera(source) if camera else cv2.VideoCapture(source)
    if not capture.isOpened():
        raise InputsFailed(f"{source}: cannot open video (corrupt, or a format OpenCV does not read)")
    label = f"camera:{source}" if camera else source
    stem = f"camera{source}" if camera else os.path.splitext(os.path.basename(source))[0]
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    frames = None if camera else (int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None)
    if frames is not None and max_frames is not None:
        frames = min(frames, max_frames)
    writer = None
    results = []
    progress = keras.utils.Progbar(frames, unit_name="frame")
    index = 0
    try:
        while max_frames is None or index < max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            records, drawn = predictor(frame, source=label, frame=index)
            results.extend(dict(source=label, frame=index, **r) for r in records)
            if draw:
                if writer is None:
                    height, width = drawn.shape[:2]
                    out = os.path.join(output_dir, stem + ".mp4")
                    writer = cv2.VideoWriter(out, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
                writer.write(drawn)
            index += 1
            progress.update(index)
    except KeyboardInterrupt:
        if not camera:
            raise
        sys.stdout.write("\n")  # below the progress bar
        logger.info(f"stopped camera {source} after {index} frames")
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    return results


def run_inputs(predictor, inputs, output_dir, draw, max_frames=None):
    """Detections of every input; an input that cannot be read is reported in one line and skipped.

    Returns:
        (records, failed inputs).
    """
    import keras

    images = [source for source, kind in inputs if kind == "image"]
    image_progress = keras.utils.Progbar(len(images), unit_name="image") if images else None
    done = 0
    results, failed = [], []
    for source, kind in inputs:
        try:
            if kind == "image":
                results.extend(predict_image(predictor, source, output_dir, draw))
            else:
                results.extend(predict_video(predictor, source, output_dir, draw, max_frames=max_frames))
        except (DatasetError, InputsFailed, OSError) as error:
            # Only unreadable inputs are skipped; a problem of the model stops the run.
            print(f"skipped {error}", file=sys.stderr)
            failed.append(source)
        if kind == "image":
            done += 1
            image_progress.update(done)
    return results, failed


def _csv_text(fields, rows):
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


def count_rows(counts, class_names):
    """counts.csv's rows: (source, frame, class_name, count) for every class of the model in every image or frame
    (0 where none), then any label the model gave that its class names do not name."""
    names = list(class_names)
    rows = []
    for source, frame, found in counts:
        for name in names + [name for name in found if name not in names]:
            rows.append({"source": source, "frame": frame, "class_name": name, "count": int(found.get(name, 0))})
    return rows


def write_results(results, output_dir, counts=(), class_names=()):
    """detections.json and detections.csv, one record per detection; counts.csv (see :func:`count_rows`) and
    counts.json (the totals per class, and each image's or frame's counts). Each file is written whole or not at
    all."""
    from ..atomic_files import write_bytes_atomically

    rows = count_rows(counts, class_names)
    totals = {}
    for row in rows:
        totals[row["class_name"]] = totals.get(row["class_name"], 0) + row["count"]
    per_image = {}
    for row in rows:
        per_image.setdefault((row["source"], row["frame"]), {})[row["class_name"]] = row["count"]
    summary = {
        "totals": totals,
        "images": [{"source": source, "frame": frame, "counts": found} for (source, frame), found in per_image.items()],
    }
    files = {
        "detections.json": json.dumps(results, indent=1),
        "detections.csv": _csv_text(CSV_FIELDS, results),
        "counts.json": json.dumps(summary, indent=1),
        "counts.csv": _csv_text(COUNT_FIELDS, rows),
    }
    for name, text in files.items():
        write_bytes_atomically(text.encode("utf8"), os.path.join(output_dir, name))


@console.inference_command
@common.reports_errors
def main(args=None):
    args = parse_args(sys.argv[1:] if args is None else args)
    common.start(args)
    inputs = collect_inputs(args.inputs)
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
    predictor = Predictor(detector, args.score_threshold, tile=detection_options.tiling_of(args))
    os.makedirs(args.output_dir, exist_ok=True)
    results, failed = run_inputs(predictor, inputs, args.output_dir, args.draw, max_frames=args.max_frames)
    write_results(results, args.output_dir, predictor.counts, detector.spec.class_names)
    logger.info(f"{len(results)} detections in {len(inputs) - len(failed)} inputs; results in {args.output_dir}")
    if failed:
        raise InputsFailed(
            f"{len(failed)} of {len(inputs)} inputs could not be read (skipped above); "
            f"the detections of the others are in {args.output_dir}"
        )
    return results


if __name__ == "__main__":
    main()
