"""retinanet-serve's throughput and latency against calling Detector.predict directly in one process.

A ResNet50 RetinaNet (80 classes, random weights whose scores stay low, as a trained model's on a plain photo: the
filter's work is small) is saved as a .keras file. Then:

- direct: ``load_detector(file).predict(cv2.imdecode(jpeg))`` in this process, one request after the other: the
  baseline, requests per second and each call's latency;
- the real command, ``retinanet-serve file`` in a process of its own, once with batching (--max-batch-size 8) and
  once without (--max-batch-size 1); for each, clients POST the same JPEG (800x1067 photo-like image: every request
  prepares to one shape, so they may share batches) at concurrency 1, 4 and 16 over keep-alive connections.

For each: requests per second, p50 and p99 latency (ms, as the client sees it), the server's mean network batch
(from /health), and the ratio of its requests per second to the direct calls'. The clients run in this process,
beside the server: on a small machine they take some of its CPU, as real clients on the same host would.

Run (takes minutes; on an idle machine: a busy one measures the other work):
    python benchmarks/bench_serve.py [--requests 48] [--concurrency 1,4,16]
A smoke test of the script itself (tiny model, few requests; writes to /tmp, not to benchmarks/results/):
    python benchmarks/bench_serve.py --tiny --output /tmp/bench_serve.json
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from bench_shared import benchmark_image, write_result  # first: it reads the load average at the start

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPOSITORY = os.path.dirname(HERE)
sys.path.insert(0, HERE)

FULL = {"shape": (800, 1067), "sides": (800, 1333), "heads": 256}
TINY = {"shape": (240, 320), "sides": (96, 128), "heads": 16}
MODES = {"batching": ["--max-batch-size", "8"], "no_batching": ["--max-batch-size", "1"]}


def build_model(size, path):
    """The inference model file: ResNet50 RetinaNet, 80 classes, scores mostly below 0.05."""
    import keras

    from keras_retinanet import models
    from keras_retinanet.config.spec import DetectorSpec

    keras.utils.set_random_seed(0)
    heads = {f"{part}_feature_size": size["heads"] for part in ("pyramid", "classification", "regression")}
    model = models.backbone("resnet50").retinanet(num_classes=80, **heads)
    layer = model.get_layer("classification_submodel").get_layer("pyramid_classification")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel * 0.1, np.full_like(bias, -4.0)])  # sigmoid(-4) = 0.018: a few scores above 0.05
    regression = model.get_layer("regression_submodel").get_layer("pyramid_regression")
    kernel, bias = regression.get_weights()
    regression.set_weights([kernel * 0.01, bias])  # boxes near their anchors, as a trained model's
    model.spec = DetectorSpec(backbone="resnet50", preprocessing="caffe", class_names=tuple(str(i) for i in range(80)),
                              image_min_side=size["sides"][0], image_max_side=size["sides"][1], **heads)  # fmt: skip
    models.convert_model(model).save(path)


def percentile_ms(values, q):
    return round(1000 * float(np.percentile(values, q)), 1)


def summary(latencies, seconds):
    return {"requests": len(latencies), "requests_per_s": round(len(latencies) / seconds, 3),
            "p50_ms": percentile_ms(latencies, 50), "p99_ms": percentile_ms(latencies, 99)}  # fmt: skip


def direct(path, jpeg, requests_count):
    """Detector.predict in this process, one call after the other (the JPEG decoded in each, as the server does)."""
    import cv2

    from keras_retinanet import load_detector

    detector = load_detector(path)
    decode = lambda: cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)  # noqa: E731
    for _ in range(3):
        detector.predict(decode())
    latencies = []
    started = time.perf_counter()
    for _ in range(requests_count):
        begin = time.perf_counter()
        detector.predict(decode())
        latencies.append(time.perf_counter() - begin)
    return summary(latencies, time.perf_counter() - started)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_healthy(url, process, timeout=900):
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"retinanet-serve exited with {process.returncode}")
        try:
            if requests.get(url + "/health", timeout=5).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    raise RuntimeError("retinanet-serve did not become healthy")


def load(url, jpeg, concurrency, requests_count):
    """``requests_count`` POSTs at ``concurrency``; returns (latencies, seconds, statuses)."""
    import requests

    local = threading.local()

    def one(_):
        if not hasattr(local, "session"):
            local.session = requests.Session()
        begin = time.perf_counter()
        response = local.session.post(url + "/predict", data=jpeg, headers={"Content-Type": "image/jpeg"},
                                      timeout=600)  # fmt: skip
        return time.perf_counter() - begin, response.status_code

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, range(requests_count)))
    seconds = time.perf_counter() - started
    return [latency for latency, _ in results], seconds, [status for _, status in results]


def served(path, jpeg, flags, concurrencies, requests_count, log):
    """Each concurrency against one ``retinanet-serve`` process started with ``flags``."""
    import requests

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, os.path.join(REPOSITORY, "bin", "retinanet-serve"), path, "--port", str(port), *flags]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    rows = {}
    try:
        wait_healthy(url, process)
        load(url, jpeg, max(concurrencies), max(concurrencies))  # warm-up: connections, the batched graphs
        for concurrency in concurrencies:
            before = requests.get(url + "/health", timeout=30).json()
            latencies, seconds, statuses = load(url, jpeg, concurrency, requests_count)
            after = requests.get(url + "/health", timeout=30).json()
            batches = after["batches"] - before["batches"]
            row = summary(latencies, seconds)
            row["mean_batch"] = round((after["images"] - before["images"]) / max(1, batches), 2)
            row["non_200"] = sum(1 for status in statuses if status != 200)
            rows[str(concurrency)] = row
            print(f"  concurrency {concurrency:>2}: {row}", flush=True)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(120)
        except subprocess.TimeoutExpired:
            process.kill()
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="A 96 px model and few requests: a smoke test of the script.")
    parser.add_argument("--requests", type=int, default=None, help="Requests per setting (default 48; tiny 8).")
    parser.add_argument("--concurrency", default="1,4,16", help="Concurrencies, comma-separated (default: 1,4,16).")
    parser.add_argument("--output", default=None, help="Result file (default: benchmarks/results/serve.json).")
    args = parser.parse_args(argv)
    size = TINY if args.tiny else FULL
    requests_count = args.requests or (8 if args.tiny else 48)
    concurrencies = [int(value) for value in args.concurrency.split(",")]
    load_average = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    notes = []
    if load_average > 1.2 and not args.tiny:
        notes.append(f"load average {load_average:.1f} at the start: the machine was busy; figures are not clean")
        print(f"warning: {notes[-1]}", file=sys.stderr)
    if args.tiny:
        notes.append("--tiny: a smoke test of the script, not a measurement")

    import cv2

    image = benchmark_image(size["shape"]).astype(np.uint8)
    jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    folder = tempfile.mkdtemp(prefix="bench_serve_")
    path = os.path.join(folder, "model.keras")
    print("building the model", flush=True)
    build_model(size, path)
    print("direct Detector.predict", flush=True)
    baseline = direct(path, jpeg, requests_count)
    print(f"  {baseline}", flush=True)
    results = {"image": list(size["shape"]), "sides": list(size["sides"]), "heads": size["heads"],
               "jpeg_bytes": len(jpeg), "requests_per_setting": requests_count, "direct": baseline, "served": {}}
    with open(os.path.join(folder, "serve.log"), "w") as log:
        for mode, flags in MODES.items():
            print(f"retinanet-serve {' '.join(flags)}", flush=True)
            rows = served(path, jpeg, flags, concurrencies, requests_count, log)
            for row in rows.values():
                row["ratio_to_direct"] = round(row["requests_per_s"] / baseline["requests_per_s"], 3)
            results["served"][mode] = {"flags": flags, "by_concurrency": rows}
    print(f"{'setting':<14}{'conc':>5}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'batch':>7}{'x direct':>10}")
    print(f"{'direct':<14}{1:>5}{baseline['requests_per_s']:>9.2f}{baseline['p50_ms']:>9.1f}{baseline['p99_ms']:>9.1f}"
          f"{1:>7}{1.0:>10.2f}")  # fmt: skip
    for mode, entry in results["served"].items():
        for concurrency, row in entry["by_concurrency"].items():
            print(f"{mode:<14}{concurrency:>5}{row['requests_per_s']:>9.2f}{row['p50_ms']:>9.1f}{row['p99_ms']:>9.1f}"
                  f"{row['mean_batch']:>7.2f}{row['ratio_to_direct']:>10.2f}")  # fmt: skip
    write_result("serve", results, output=args.output, notes=" ".join(notes) or None)


if __name__ == "__main__":
    main()
