"""What the commands print: the package's log messages, and TensorFlow's start-up lines kept out of the way.

Without ``--verbose`` a command prints its own lines and real errors only. TensorFlow announces itself
when it loads (oneDNN, a missing CUDA driver, the CPU instructions it was built for, the absl line about
log messages "before absl::InitializeLog()"); those lines come from C++ straight to file descriptor 2,
before ``TF_CPP_MIN_LOG_LEVEL`` applies, so :func:`import_tensorflow` imports TensorFlow with that
descriptor pointed at a temporary file and passes on every captured line that is not such a notice.
``--verbose`` shows everything, and the package's DEBUG messages.
"""

import contextlib
import functools
import logging
import os
import re
import sys
import tempfile
import warnings
from typing import Iterator

PACKAGE_LOGGER = "keras_retinanet"
logger = logging.getLogger(__name__)

# Lines TensorFlow (or the CUDA libraries it loads) writes on start-up that say nothing is wrong. Seen on
# TF 2.21 on CPU; the GPU ones are the known spurious registrations of TF 2.15-2.17.
START_UP_NOISE = tuple(
    re.compile(pattern)
    for pattern in (
        r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
        r"^[IW]\d{4} ",  # absl INFO and WARNING lines: 'I0000 00:00:1795948814.155245 19419 port.cc:153] ...'
        r"^[IW]tensorflow/",  # the same from TF's own logging, older layout
        r"cuda_platform\.cc:\d+\] failed call to cuInit",  # no GPU (or no driver): TF runs on the CPU
        r"Unable to register cu(DNN|FFT|BLAS) factory",
        r"TF-TRT Warning: Could not find TensorRT",
        r"^To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags",
    )
)

# Python-side chatter of the libraries below the package (TF's and Keras's absl and Python loggers).
NOISY_LOGGERS = ("absl", "tensorflow", "h5py")
NOISY_WARNING_MODULES = r"(keras|tensorflow|tf_keras|absl|h5py|google\.protobuf|tf2onnx|onnx)(\.|$)"


class ConsoleHandler(logging.Handler):
    """INFO as the bare message on stdout; DEBUG as 'debug: ...' on stdout; WARNING and up as 'warning: ...'
    (or 'error: ...') on stderr.

    The stream is looked up when a record is written, not when the handler is made, so that whatever
    replaced ``sys.stdout`` since (pytest's capture, contextlib.redirect_stdout) gets the message.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            if record.levelno >= logging.WARNING:
                stream, message = sys.stderr, f"{record.levelname.lower()}: {message}"
            elif record.levelno < logging.INFO:
                stream, message = sys.stdout, f"debug: {message}"
            else:
                stream = sys.stdout
            stream.write(message + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001 - logging's own contract: report, never raise from emit
            self.handleError(record)


# TensorFlow's oneDNN switch for weights that never change once a model has run (see assume_frozen_weights).
FROZEN_WEIGHTS_VARIABLE = "TF_ONEDNN_ASSUME_FROZEN_WEIGHTS"


def assume_frozen_weights() -> None:
    """Let oneDNN keep each convolution's weights in its own blocked layout, in a process that only runs models.

    TensorFlow's convolutions read weights from variables, so oneDNN reorders them at every call; with this
    variable set it reorders them once and reuses them, as it does for constants (and as ONNX Runtime does):
    float32 ResNet50 RetinaNet inference at 800x1067 ran 1.26x faster end to end on a 2-core AVX-512/AMX CPU
    (benchmarks/results/retinanet.json, frozen_weights_speedup). TensorFlow
    reads the variable once, at its first oneDNN kernel, for the whole process, and a compiled function then
    keeps the weights it first saw: so only the inference commands set it, in their own process, before TensorFlow
    loads (``retinanet-predict``, ``retinanet-evaluate``), never a process that trains or changes weights. A value
    the user set is kept.
    """
    os.environ.setdefault(FROZEN_WEIGHTS_VARIABLE, "1")


def inference_command(main):
    """Mark ``main`` as an inference command's entry point: run as the process's command (no ``args``: the
    installed script, the checkout's ``bin/retinanet-*`` and ``python -m`` alike), its process only runs models,
    and lets oneDNN keep the convolution weights it has reordered (:func:`assume_frozen_weights`).

    ``main(args)`` called from a program (which may also train) leaves TensorFlow as it is.
    """

    @functools.wraps(main)
    def command(args=None):
        if args is None:
            assume_frozen_weights()
        return main(args)

    return command


def setup_logging(verbose: bool = False) -> logging.Handler:
    """Attach the one :class:`ConsoleHandler` of the "keras_retinanet" logger (again: reuse it) and set its level.

    The package's messages then stop at that handler (they no longer propagate to the root logger).

    Args:
        verbose: DEBUG and up instead of INFO and up.

    Returns:
        the handler.
    """
    package = logging.getLogger(PACKAGE_LOGGER)
    handler = next((h for h in package.handlers if isinstance(h, ConsoleHandler)), None)
    if handler is None:
        handler = ConsoleHandler()
        package.addHandler(handler)
    level = logging.DEBUG if verbose else logging.INFO
    package.setLevel(level)
    handler.setLevel(level)
    # A library's module-level logging.warning() call gives the root logger a handler of its own (basicConfig),
    # which would print each message again as 'INFO:keras_retinanet...:' on stderr.
    package.propagate = False
    return handler


def quiet_tensorflow(verbose: bool = False) -> None:
    """Settings that keep TensorFlow's and Keras's chatter out of the terminal; with ``verbose``, let it all through.

    Takes effect on TensorFlow's C++ logging only when called before TensorFlow is imported; a
    TF_CPP_MIN_LOG_LEVEL the user set is kept unless ``verbose``.
    """
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        for name in NOISY_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)
        return
    # 2: TensorFlow's C++ INFO and WARNING lines are dropped, its ERROR lines still show.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for name in NOISY_LOGGERS:
        # e.g. absl's "You are saving your model as an HDF5 file ... considered legacy" on every .h5 snapshot
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=NOISY_WARNING_MODULES)


def is_start_up_noise(line: str) -> bool:
    """Whether a line of TensorFlow's start-up output is one of the known harmless notices."""
    return any(pattern.search(line) for pattern in START_UP_NOISE)


def drop_start_up_noise(text: str) -> str:
    """``text`` without the lines that are start-up notices; every other line kept, in order."""
    return "".join(line for line in text.splitlines(keepends=True) if not is_start_up_noise(line))


@contextlib.contextmanager
def filtered_stderr() -> Iterator[None]:
    """Capture what is written to file descriptor 2 inside the block; afterwards pass it on without the notices.

    If the block raises, everything captured is passed on: it may say why.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable descriptor 2 (pythonw, a closed stderr)
        yield
        return
    failed = True
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
            failed = False
        finally:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf8", errors="replace")
            text = text if failed else drop_start_up_noise(text)
            if text:
                os.write(2, text.encode("utf8"))


def import_tensorflow(verbose: bool = False) -> None:
    """Import TensorFlow and Keras and look up the devices (where CUDA reports itself), without the start-up notices.

    Called by the commands once their arguments and files are checked, after ``common.start`` told TensorFlow to
    keep quiet (:func:`quiet_tensorflow`, the one place that does); with ``verbose`` everything shows.
    """
    with contextlib.nullcontext() if verbose else filtered_stderr():
        import keras
        import tensorflow as tf

        devices = tf.config.list_physical_devices()
    logger.debug(
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}; devices: {', '.join(d.name for d in devices)}"
    )
