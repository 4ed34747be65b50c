"""What every benchmark shares: the benchmark image, the timing rule, weight settings that put a chosen number of
class scores above the 0.05 threshold, and the one way results are recorded.

Shared by bench_retinanet.py (this project) and reference_keras_retinanet.py (fizyr's keras-retinanet 1.0.0, in its own
Python 3.8 environment), so both measure the same model on the same work: numpy only, Python 3.8 compatible.
A model with random weights puts millions of scores above 0.05; trained models on a plain image put a few thousand.

Every benchmark writes its figures with :func:`write_result` to ``benchmarks/results/<name>.json`` (committed: the
figures in README.md and docs/ quote these files): the command line, the date, the package version and commit, the
CPU model and the features speed depends on (AVX2, AVX-512, AVX512_BF16, AMX, VNNI), the load average before and
after (a timing taken on a busy machine says so; "before" is read when the benchmark starts, by importing this module
first), the TensorFlow, Keras and numpy versions, and the numbers.
"""

import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPOSITORY = os.path.dirname(HERE)
RESULTS_DIR = os.path.join(HERE, "results")
# The CPU features 16-bit and int8 speed depend on, by the /proc/cpuinfo flags that show them.
CPU_FEATURES = {"AVX2": ("avx2",), "AVX-512": ("avx512f",), "AVX512_BF16": ("avx512_bf16",),
                "AMX": ("amx_bf16", "amx_tile", "amx_int8"), "VNNI": ("avx512_vnni", "avx_vnni")}
CPU_FLAGS = ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni", "avx512_bf16",
             "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")
PACKAGES = ("keras3-retinanet", "tensorflow", "tensorflow-cpu", "keras", "numpy", "onnxruntime", "tf2onnx", "onnx",
            "opencv-python", "opencv-python-headless", "keras-retinanet", "keras-resnet", "keras-hub", "torch",
            "torchvision")


def _process_start_time() -> float:
    """When this process started (Linux: from /proc), else now."""
    try:
        with open("/proc/self/stat") as stat:
            start_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime
        with open("/proc/stat") as stat:
            boot_time = next(int(line.split()[1]) for line in stat if line.startswith("btime"))
        return boot_time + start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time()


# The load average before the run: read when this module is first imported, which every benchmark does before
# anything else it imports (tests/test_benchmark_records.py checks that), and recorded with how long after the
# process's start it was read. A past load cannot be recovered later: /proc keeps the start time, not the load.
_STARTED = (_process_start_time(), os.getloadavg() if hasattr(os, "getloadavg") else None, time.time())

THRESHOLD = 0.05
PLAIN_COUNT = 2000
SATURATED_MIN_COUNT = 500000


def _logits(scores):
    scores = np.clip(scores.astype(np.float64), 1e-12, 1 - 1e-7)
    return np.log(scores) - np.log1p(-scores)


def plain_setting(kernel, bias, predict_scores):
    """Kernel and bias giving about PLAIN_COUNT scores above the threshold.

    Args:
        kernel, bias: the final classification convolution's weights.
        predict_scores: function (kernel, bias) -> the model's class scores on the benchmark image.

    Returns: (kernel, bias, number of scores above the threshold).
    """
    scale = 1.0
    for _ in range(8):
        scores = predict_scores(kernel * scale, bias)
        if np.sum(scores >= 1 - 1e-7) < PLAIN_COUNT:  # the PLAIN_COUNT-th best score is not saturated
            break
        scale *= 0.3
    logits = np.sort(_logits(scores).ravel())[::-1]
    shift = np.log(THRESHOLD / (1 - THRESHOLD)) - 0.5 * (logits[PLAIN_COUNT - 1] + logits[PLAIN_COUNT])
    new_kernel, new_bias = kernel * scale, (bias + shift).astype(bias.dtype)
    return new_kernel, new_bias, int(np.sum(predict_scores(new_kernel, new_bias) > THRESHOLD))


def saturated_setting(kernel, bias, predict_scores):
    """Kernel and bias giving at least SATURATED_MIN_COUNT scores above the threshold (the post-processing worst case)."""
    for scale in (1, 3, 10, 30, 100, 300, 1000):
        count = int(np.sum(predict_scores(kernel * scale, bias) > THRESHOLD))
        if count >= SATURATED_MIN_COUNT:
            return kernel * scale, bias, count
    raise RuntimeError("could not push %d scores above %.2f (reached %d)" % (SATURATED_MIN_COUNT, THRESHOLD, count))


def benchmark_image(shape=(800, 1067), boxes=10, seed=0):
    """A photo-like BGR image as float32 (smoothed noise with flat rectangles), numpy only."""
    rng = np.random.RandomState(seed)
    noise = rng.randint(0, 256, size=(shape[0] // 8 + 2, shape[1] // 8 + 2, 3)).astype(np.float32)
    image = np.kron(noise, np.ones((8, 8, 1), np.float32))[: shape[0], : shape[1]]
    for _ in range(boxes):
        w, h = rng.randint(40, shape[1] // 3), rng.randint(40, shape[0] // 3)
        x, y = rng.randint(0, shape[1] - w), rng.randint(0, shape[0] - h)
        image[y : y + h, x : x + w] = rng.randint(0, 256, size=3)
    return image


def median_seconds(function, runs, warmup=2):
    """Median wall time of ``runs`` calls of ``function`` after ``warmup`` untimed ones.

    Returns: (median seconds, the timed runs rounded to 0.1 ms).
    """
    for _ in range(warmup):
        function()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), [round(t, 4) for t in times]


# ------------------------------------------------------------------------------------------------------------------
# recording results


def machine():
    """The CPU (model, cores, the flags speed depends on, the named features), the OS and Python."""
    model, flags = "unknown", set()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name") and model == "unknown":
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "cpu_flags": [flag for flag in CPU_FLAGS if flag in flags],
        "features": {name: any(flag in flags for flag in names) for name, names in CPU_FEATURES.items()},
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def versions():
    """Installed versions of the packages a figure depends on (those installed), and this repository's commit."""
    try:
        from importlib import metadata
    except ImportError:  # Python < 3.8
        metadata = None
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except Exception:
            continue
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPOSITORY, capture_output=True,
                                text=True, timeout=10).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "keras_retinanet",
                                  "benchmarks"], cwd=REPOSITORY, capture_output=True, text=True, timeout=10).stdout
        found["commit"] = commit + ("+local changes" if changed.strip() else "") if commit else "unknown"
    except (OSError, subprocess.SubprocessError):
        found["commit"] = "unknown"
    return found


def command_line(argv=None):
    """The command that produced a result, as one would type it from the repository root."""
    argv = list(sys.argv if argv is None else argv)
    script = os.path.abspath(argv[0]) if argv else ""
    if script.startswith(REPOSITORY + os.sep):
        script = os.path.relpath(script, REPOSITORY)
    return " ".join(["python", shlex.quote(script)] + [shlex.quote(str(a)) for a in argv[1:]])


def _plain(value):
    """numpy scalars and arrays, tuples and paths as JSON values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_result(name, numbers, output=None, argv=None, notes=None):
    """Write a benchmark's figures to benchmarks/results/<name>.json (or ``output``) with how they were made.

    Args:
        name: the result's name (the file name without .json).
        numbers: the figures, a JSON-able dict (numpy values are converted).
        output: another path (the record is the same).
        argv: the command line (default: sys.argv).
        notes: optional words kept with the figures.

    Returns: the path written.
    """
    started, load_before, load_read = _STARTED
    record = {
        "name": name,
        "command": command_line(argv),
        "date": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        "duration_s": round(time.time() - started, 1),
        "load_average_1_5_15": {"at_start": list(load_before) if load_before else None,
                                "at_start_read_s_after_process_start": round(max(0.0, load_read - started), 1),
                                "at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
        "versions": versions(),
        "machine": machine(),
    }
    if notes:
        record["notes"] = notes
    record["results"] = _plain(numbers)
    path = output or os.path.join(RESULTS_DIR, name + ".json")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = path + ".part"
    with open(temporary, "w") as handle:
        json.dump(record, handle, indent=1, allow_nan=False)
        handle.write("\n")
    os.replace(temporary, path)
    print("written to %s" % os.path.relpath(path), file=sys.stderr)
    return path
