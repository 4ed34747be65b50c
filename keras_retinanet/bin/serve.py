"""retinanet-serve: a detector over HTTP, with a page to look at its detections.

    pip install 'keras3-retinanet[serve]'
    retinanet-serve model.keras                       # http://127.0.0.1:8000/  (the page), /docs (the API)
    retinanet-serve resnet50_coco --host 0.0.0.0 --port 8080 --workers 2
    curl --data-binary @photo.jpg -H 'Content-Type: image/jpeg' 'http://127.0.0.1:8000/predict?score_threshold=0.5'

MODEL is anything ``load_detector`` opens: a snapshot or inference file, a preset name, or a SavedModel, TFLite or
ONNX export. Requests arriving together run as one batch (--max-batch-size, --max-batch-wait-ms); a body over
--max-upload-mb gets 413, a request beyond --max-queue gets 503 with Retry-After, one unanswered after --timeout
gets 504. SIGTERM (or Ctrl-C) stops taking connections, answers the requests in flight, and exits.
See keras_retinanet/serve/ and the README's "Serve" section.
"""

import argparse
import errno
import importlib.util
import json
import logging
import math
import os
import signal
import socket
import sys

from .. import hub
from . import arguments, common, console, detection_options, parsing

logger = logging.getLogger("keras_retinanet.bin.serve")  # not __name__, which is '__main__' under python -m

# The command line a worker process (--workers N) parses again to load the model itself.
ARGS_VARIABLE = "KERAS_RETINANET_SERVE_ARGS"
SERVE_PACKAGES = ("fastapi", "uvicorn", "multipart")
MEGABYTE = 1024 * 1024


def parse_args(args):
    """The parsed arguments, with the configuration built once as ``.config``."""
    from ..serve.settings import ServeSettings

    defaults = ServeSettings()
    parser = parsing.command_parser("retinanet-serve", "Serve a RetinaNet detector over HTTP, with a page to look at "
                                   "its detections.")  # fmt: skip
    parser.add_argument(
        "model",
        help="Model file (an inference model, or a training snapshot, converted on loading), a SavedModel folder, "
        f".tflite or .onnx export, or a preset name, downloaded once into the cache (${hub.ENV_HOME}). "
        f"Presets: {hub.describe_presets()}.",
    )
    parser.add_argument("--host", default="127.0.0.1",
                        help="Address to listen on (default: %(default)s, this machine only; 0.0.0.0 for every one).")
    parser.add_argument("--port", type=port_number, default=8000, help="Port to listen on (default: %(default)s).")
    parser.add_argument("--workers", type=arguments.positive_int, default=1,
                        help="Server processes, each with its own copy of the model, sharing the port (default: "
                        "%(default)s; one per core or GPU is the most that helps).")
    parser.add_argument("--threads", type=arguments.positive_int, default=None,
                        help="Threads each process's model uses (default: the cores, shared out among --workers).")
    parser.add_argument("--max-batch-size", type=arguments.positive_int, default=defaults.max_batch_size,
                        help="Requests run through the network together, at most; 1: no batching (default: "
                        "%(default)s). Only images whose prepared input has one shape share a batch.")
    parser.add_argument("--max-batch-wait-ms", type=non_negative_float, default=defaults.max_batch_wait_ms,
                        help="How long the model waits for more requests to fill a batch (default: %(default)s; 0: "
                        "it runs what is queued).")
    parser.add_argument("--max-queue", type=arguments.positive_int, default=defaults.max_queue,
                        help="Requests in the server at once; one more gets 503 with Retry-After (default: "
                        "%(default)s).")
    parser.add_argument("--max-upload-mb", type=arguments.positive_float, default=defaults.max_upload_bytes / MEGABYTE,
                        help="Largest request body in MiB; larger gets 413 (default: %(default)g).")
    parser.add_argument("--max-image-megapixels", type=arguments.positive_float,
                        default=defaults.max_image_pixels / 1e6,
                        help="Largest image decoded, in megapixels; larger gets 413 (default: %(default)g).")
    parser.add_argument("--timeout", type=arguments.positive_float, default=defaults.timeout_s,
                        help="Seconds a request may take, upload, wait and prediction; longer gets 504 (default: "
                        "%(default)g).")
    parser.add_argument("--max-tiles", type=arguments.positive_int, default=defaults.max_tiles,
                        help="Most tiles one request's tile parameter may cut its image into (default: %(default)s).")
    parser.add_argument("--score-threshold", type=arguments.probability, default=None,
                        help="Score threshold of requests that give none (default: the model's own filter threshold, "
                        "0.05 for a snapshot); a lower one rebuilds the filter, and requests may then ask down to it.")
    parser.add_argument("--max-detections", dest="model.max_detections", type=arguments.positive_int,
                        help="Detections per image, at most, and the most a request may ask for (default: the "
                        "model's own; 300 for a snapshot).")
    parser.add_argument("--access-log", action="store_true", default=False,
                        help="Log every request (uvicorn's access log).")
    arguments.add_backbone_argument(parser, "Backbone of the model (files of this package say it themselves)")
    parser.add_argument("--classes", default=None,
                        help="Classes CSV (class_name,id) naming the labels of a model file that does not name them.")
    detection_options.add_candidate_cap_argument(parser)
    detection_options.add_nms_method_arguments(parser)
    parser.add_argument("--image-min-side", dest="data.image_min_side", type=arguments.positive_int,
                        help="Resize the smaller image side to this (default: the model's own).")
    parser.add_argument("--image-max-side", dest="data.image_max_side", type=arguments.positive_int,
                        help="Cap the larger image side at this (default: the model's own).")
    arguments.add_precision_argument(parser)
    arguments.add_unsafe_load_argument(parser)
    args = parser.parse_args(args)
    common.build_config(args)
    return args


def port_number(text):
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number, 0-65535, got {text}")
    return value


def non_negative_float(text):
    value = float(text)
    if not (math.isfinite(value) and value >= 0.0):
        raise argparse.ArgumentTypeError(f"must be a number of at least 0, got {text}")
    return value


def settings_of(args):
    """The :class:`ServeSettings` of the parsed arguments."""
    from ..serve.settings import ServeSettings

    return ServeSettings(
        max_batch_size=args.max_batch_size,
        max_batch_wait_ms=args.max_batch_wait_ms,
        max_queue=args.max_queue,
        max_upload_bytes=max(1, int(args.max_upload_mb * MEGABYTE)),
        max_image_pixels=max(1, int(args.max_image_megapixels * 1e6)),
        timeout_s=args.timeout,
        max_tiles=args.max_tiles,
    )


def check_serve_extra():
    """A one-line error naming the extra when FastAPI, uvicorn or python-multipart is missing."""
    missing = [name for name in SERVE_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        names = {"multipart": "python-multipart"}
        raise parsing.CommandLineError(
            f"retinanet-serve needs {', '.join(names.get(name, name) for name in missing)}: "
            "pip install 'keras3-retinanet[serve]'"
        )


def check_address(host, port):
    """A one-line error when the address cannot be listened on, before the model loads (a port in use costs a
    second, not the model's loading)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise parsing.CommandLineError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    family, kind, protocol, _, address = infos[0]
    with socket.socket(family, kind, protocol) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            reason = "the port is in use" if error.errno == errno.EADDRINUSE else (error.strerror or str(error))
            raise parsing.CommandLineError(f"cannot listen on {host}:{port}: {reason}") from None


def model_threads(args):
    """Threads of one process's model: --threads, else the cores shared out among the workers (None: all)."""
    if args.threads is not None:
        return args.threads
    if args.workers > 1:
        return max(1, (os.cpu_count() or 1) // args.workers)
    return None


def served_detector(args):
    """The served Detector: ``load_detector(MODEL, ...)`` with the command's settings, so that the server answers
    what ``load_detector(MODEL).predict(image)`` gives; its filter rebuilt once for a --score-threshold below the
    model's own."""
    import tensorflow as tf

    from ..inference import ExportedDetector, load_detector
    from ..inference.refilter import filter_settings

    threads = model_threads(args)
    if threads is not None:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
        except RuntimeError:  # TensorFlow already running: it keeps its threads
            logger.debug("TensorFlow's threads were already set")
    detector = load_detector(
        getattr(args, "located", None) or args.model,  # located by main; a worker process locates it again
        backbone=getattr(args, "model.backbone", None),
        class_names=common.read_class_names(args.classes) if args.classes else None,
        image_min_side=getattr(args, "data.image_min_side", None),
        image_max_side=getattr(args, "data.image_max_side", None),
        score_threshold=args.score_threshold,
        precision=getattr(args, "evaluation.precision", "float32"),
        safe_mode=not args.unsafe_load,
        threads=threads,
        max_detections=getattr(args, "model.max_detections", None),
        max_candidates_per_level=getattr(args, "model.max_candidates_per_level", None),
        nms_method=getattr(args, "model.nms_method", None),
        soft_nms_sigma=getattr(args, "model.soft_nms_sigma", None),
    )
    for note in detector.notes:
        print(f"note: {note}", file=sys.stderr)
    threshold = args.score_threshold
    if threshold is not None and threshold < detector.filter_threshold and not isinstance(detector, ExportedDetector):
        # The filter rebuilt once, here: requests may then ask for any threshold down to this one.
        detector.model = detector.model_for(score_threshold=threshold)
        detector.spec = detector.spec.with_filter(**filter_settings(detector.model))
    return detector


def model_name(args):
    return os.path.basename(os.path.normpath(args.model))


def build_app(args):
    """The app of parsed arguments: the model loaded (TensorFlow imported), the settings applied."""
    from ..serve.app import create_app

    detector = served_detector(args)
    return create_app(detector, settings_of(args), model_name=model_name(args))


def worker_app():
    """The app of one worker process of ``--workers N`` (uvicorn's factory): the command line read back from the
    environment, the model loaded in this process."""
    args = parse_args(json.loads(os.environ[ARGS_VARIABLE]))
    common.start(args)
    quiet_libraries()
    common.import_tensorflow(args.verbose)
    return build_app(args)


def quiet_libraries():
    """OpenCV's and Pillow's messages about each broken upload (the client gets the one-line error)."""
    import warnings

    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    warnings.filterwarnings("ignore", module=r"PIL(\.|$)")


class _Stopped:
    """SIGTERM's and SIGINT's handler around uvicorn: uvicorn answers the requests in flight, then raises the signal
    it caught again with the handler it found, this one, which only notes it; the command then exits with status 0."""

    def __init__(self):
        self.signal = None

    def __call__(self, number, frame):
        self.signal = number


@console.inference_command
@common.reports_errors
def main(args=None):
    argv = sys.argv[1:] if args is None else list(args)
    args = parse_args(argv)
    common.start(args)
    check_serve_extra()
    check_address(args.host, args.port)
    if args.classes:
        common.check_file(args.classes, "classes file")
    # A missing file or an unknown preset in one line, and a preset fetched, before TensorFlow loads.
    args.located = hub.locate(args.model)
    settings_of(args)
    import uvicorn

    quiet_libraries()
    options = dict(host=args.host, port=args.port, access_log=args.access_log,
                   log_level="debug" if args.verbose else "info",
                   timeout_graceful_shutdown=max(5, int(args.timeout) + 5))  # fmt: skip
    app = "keras_retinanet.bin.serve:worker_app"
    if args.workers > 1:
        os.environ[ARGS_VARIABLE] = json.dumps(argv)
        options.update(factory=True, workers=args.workers)
    else:
        common.import_tensorflow(args.verbose)
        app = build_app(args)
        logger.info(f"serving {model_name(args)} on http://{display_host(args.host)}:{args.port}/ "
                    "(the page; the API at /docs)")  # fmt: skip
    # Installed once the model is loaded (Ctrl-C while it loads stops the command at once).
    stopped = _Stopped()
    previous = {number: signal.signal(number, stopped) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        uvicorn.run(app, **options)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if stopped.signal is not None:
        logger.info(f"stopped on {signal.Signals(stopped.signal).name}; the requests in flight were answered")
    return 0


def display_host(host):
    return f"[{host}]" if ":" in host else host


if __name__ == "__main__":
    main()
