"""retinanet-serve as its users meet it: a real uvicorn server on 127.0.0.1, answering what load_detector(MODEL).predict
answers; every bad input a 4xx with a one-line JSON error; limits (413, 503 with Retry-After, 504); /health while a
prediction runs; a bounded load test; SIGTERM finishing the requests in flight, in a real process (issue 28)."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi", reason="retinanet-serve needs the [serve] extra (fastapi, uvicorn, python-multipart)")
pytest.importorskip("uvicorn", reason="retinanet-serve needs the [serve] extra")
import requests  # noqa: E402 - TensorFlow's own dependency

from keras_retinanet import load_detector  # noqa: E402
from keras_retinanet.bin import serve as serve_command  # noqa: E402
from keras_retinanet.serve import ServeSettings, create_app  # noqa: E402
from keras_retinanet.serve.batching import Batcher  # noqa: E402

from helpers.scene_models import scene, training_model  # noqa: E402
from helpers.serve_support import free_port, running  # noqa: E402

MAX_PIXELS = 2_000_000
MAX_UPLOAD = 1_000_000
REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The model file and test images (PNG and JPEG, of several sizes and aspect ratios)."""
    folder = tmp_path_factory.mktemp("serve")
    model_path = str(folder / "model.keras")
    training_model().save(model_path)
    images = {}
    for name, (height, width, seed) in {"a.png": (120, 160, 0), "b.jpg": (200, 150, 1), "c.png": (96, 96, 2),
                                         "d.png": (300, 420, 3)}.items():  # fmt: skip
        path = str(folder / name)
        cv2.imwrite(path, scene(height, width, seed))
        images[name] = path
    return {"model": model_path, "images": images, "folder": folder}


@pytest.fixture(scope="module")
def reference(files):
    return load_detector(files["model"])


@pytest.fixture(scope="module")
def server(files):
    """A server of the model with small limits, for the whole module."""
    settings = ServeSettings(max_batch_size=8, max_batch_wait_ms=5, max_queue=32, max_upload_bytes=MAX_UPLOAD,
                             max_image_pixels=MAX_PIXELS, timeout_s=120, max_tiles=64)  # fmt: skip
    app = create_app(load_detector(files["model"]), settings, model_name="model.keras")
    with running(app) as url:
        yield url


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


def content_type(path):
    return "image/jpeg" if path.endswith(".jpg") else "image/png"


def post(url, data, params=None, headers=None, **kwargs):
    return requests.post(url + "/predict", data=data, params=params, headers=headers, timeout=120, **kwargs)


def assert_same(answer, expected, height, width, exact=False):
    """The JSON answer equals Detector.predict's result: labels, names and counts exactly; boxes and scores as the
    same float32 values (exact) or within the last bits of another TensorFlow graph of the same model: 1e-4 px and
    1e-5 (measured: up to 7.6e-6 px, scores equal)."""
    assert answer["width"] == width and answer["height"] == height
    assert answer["labels"] == expected["labels"].tolist()
    assert answer["names"] == expected["names"].tolist()
    assert answer["counts"] == expected["counts"]
    boxes = np.asarray(answer["boxes"], np.float32).reshape(-1, 4)
    scores = np.asarray(answer["scores"], np.float32)
    if exact:
        np.testing.assert_array_equal(boxes, expected["boxes"])
        np.testing.assert_array_equal(scores, expected["scores"])
    else:
        np.testing.assert_allclose(boxes, expected["boxes"], rtol=0, atol=1e-4)
        np.testing.assert_allclose(scores, expected["scores"], rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "params, names",
    [({}, ["a.png", "b.jpg", "c.png", "d.png"]), ({"score_threshold": 0.3}, ["a.png", "b.jpg"]),
     ({"max_detections": 10}, ["d.png"]), ({"score_threshold": 0.5, "max_detections": 50}, ["c.png"]),
     ({"tile": "128", "tile_overlap": 0.25}, ["d.png"]),
     ({"tile": "100x80", "tile_merge": "nms", "whole_image": "true"}, ["b.jpg"]),
     ({"tile": "auto", "tile_overlap": "auto"}, ["d.png"])],
    ids=["defaults", "threshold", "max_detections", "both", "tile", "tile_hxw_nms_whole", "tile_auto"],
)  # fmt: skip
def test_predict_answers_what_load_detector_predicts(server, files, reference, params, names):
    options = dict(params)
    if "tile" in options and options["tile"] != "auto":
        sides = [int(side) for side in options["tile"].split("x")]
        options["tile"] = sides[0] if len(sides) == 1 else tuple(sides)
    if "tile" in options:
        options["whole_image"] = options.get("whole_image") == "true"
    for name in names:
        path = files["images"][name]
        expected = reference.predict(path, **options)
        image = cv2.imread(path)
        response = post(server, read(path), params=params, headers={"Content-Type": content_type(path)})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        assert "model;dur=" in response.headers["server-timing"]
        answer = response.json()
        assert_same(answer, expected, *image.shape[:2])
        assert len(answer["scores"]) > 0, name
    # The same image as multipart field 'image'.
    path = files["images"]["b.jpg"]
    response = requests.post(server + "/predict", params=params, timeout=120,
                             files={"image": ("b.jpg", read(path), "image/jpeg")})  # fmt: skip
    assert response.status_code == 200, response.text
    assert_same(response.json(), reference.predict(path, **options), 200, 150)


def test_json_numbers_read_back_as_the_detectors_float32_values(server, files):
    """Boxes and scores are written as the shortest decimals of their float32 values ('0.87', not
    '0.8700000047683716'), which read back as those values exactly."""
    from keras_retinanet.inference.detections import json_float32

    values = np.array([0.87, 1 / 3, 123.456, 1e-7, 0.0, 4095.9998], np.float32)
    decoded = json.loads(json.dumps(json_float32(values)))
    np.testing.assert_array_equal(np.asarray(decoded, np.float32), values)
    assert json.dumps(json_float32(np.float32([0.87]))) == "[0.87]"
    text = post(server, read(files["images"]["c.png"])).text
    assert "00000" not in text.split('"labels"')[0]  # no float64 tails in boxes and scores


def test_model_health_page_and_openapi(server):
    model = requests.get(server + "/model", timeout=30).json()
    assert model["backbone"] == "resnet50" and model["class_names"] == ["cell", "debris"]
    assert model["image_min_side"] == model["image_max_side"] == 96
    assert set(model["anchors"]) == {"sizes", "strides", "ratios", "scales"}
    assert model["version"] and model["package_version"] and model["model"] == "model.keras"
    assert model["defaults"]["max_detections"] == 300 and model["defaults"]["filter_threshold"] == pytest.approx(0.05)
    assert model["limits"]["max_upload_bytes"] == MAX_UPLOAD and model["limits"]["batching"] is True
    health = requests.get(server + "/health", timeout=30)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    page = requests.get(server + "/", timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "http://" not in page.text and "https://" not in page.text  # no CDN: the page works offline
    for asset in ("static/page.js", "static/page.css"):
        response = requests.get(f"{server}/{asset}", timeout=30)
        assert response.status_code == 200 and "https://" not in response.text
    schema = requests.get(server + "/openapi.json", timeout=30).json()
    operation = schema["paths"]["/predict"]["post"]
    assert {p["name"] for p in operation["parameters"]} == {
        "score_threshold", "max_detections", "tile", "tile_overlap", "tile_merge", "whole_image"}
    assert {"image/*", "multipart/form-data"} <= set(operation["requestBody"]["content"])
    assert set(schema["paths"]) >= {"/predict", "/model", "/health"}
    assert requests.get(server + "/docs", timeout=30).status_code == 200


def png(image):
    return cv2.imencode(".png", image)[1].tobytes()


def bad_requests(files):
    """(what, request keyword arguments, expected status, words the error says)."""
    jpeg = read(files["images"]["b.jpg"])
    image = read(files["images"]["a.png"])
    large = png(np.zeros((1500, 1500, 3), np.uint8))  # 2.25 MP in a small file
    big_body = png(np.random.default_rng(0).integers(0, 256, (700, 700, 3), dtype=np.uint8))  # > 1 MB
    assert len(large) < MAX_UPLOAD < len(big_body)
    return [
        ("zero-byte body", dict(data=b""), 400, "empty"),
        ("text", dict(data=b"hello, world", headers={"Content-Type": "image/png"}), 400, "not an image"),
        ("json", dict(data=b'{"image": 1}', headers={"Content-Type": "application/json"}), 415, "not an image"),
        ("plain text type", dict(data=image, headers={"Content-Type": "text/plain"}), 415, "not an image"),
        ("truncated jpeg", dict(data=jpeg[: len(jpeg) // 2]), 400, "truncated"),
        ("truncated png", dict(data=image[: len(image) // 2]), 400, "not an image"),
        ("png header only", dict(data=image[:40]), 400, "not an image"),
        ("random bytes", dict(data=os.urandom(5000)), 400, "not an image"),
        ("too many pixels", dict(data=large), 413, "pixels"),
        ("body over the limit", dict(data=big_body), 413, "bytes"),
        ("multipart without image", dict(files={"photo": ("a.png", image, "image/png")}), 400, "'image'"),
        ("multipart empty image", dict(files={"image": ("a.png", b"", "image/png")}), 400, "empty"),
        ("multipart text field", dict(data={"image": "not a file"}, files={"x": ("x", b"x")}), 400, "'image'"),
        ("broken multipart", dict(data=b"--xyz\r\nbroken", headers={"Content-Type": "multipart/form-data"}), 400,
         "multipart"),
        ("threshold above 1", dict(data=image, params={"score_threshold": 1.5}), 400, "score_threshold"),
        ("threshold negative", dict(data=image, params={"score_threshold": -0.1}), 400, "score_threshold"),
        ("threshold nan", dict(data=image, params={"score_threshold": "nan"}), 400, "score_threshold"),
        ("threshold inf", dict(data=image, params={"score_threshold": "inf"}), 400, "score_threshold"),
        ("threshold text", dict(data=image, params={"score_threshold": "high"}), 400, "score_threshold"),
        ("threshold below the filter", dict(data=image, params={"score_threshold": 0.01}), 400, "--score-threshold"),
        ("zero detections", dict(data=image, params={"max_detections": 0}), 400, "max_detections"),
        ("absurd detections", dict(data=image, params={"max_detections": 10**12}), 400, "max_detections"),
        ("detections text", dict(data=image, params={"max_detections": "all"}), 400, "max_detections"),
        ("tile zero", dict(data=image, params={"tile": "0"}), 400, "tile"),
        ("tile text", dict(data=image, params={"tile": "big"}), 400, "tile"),
        ("tile three sides", dict(data=image, params={"tile": "4x4x4"}), 400, "tile"),
        ("tile huge", dict(data=image, params={"tile": "10000000"}), 400, "tile"),
        ("too many tiles", dict(data=image, params={"tile": "16", "tile_overlap": 0.5}), 400, "--max-tiles"),
        ("overlap 1.5", dict(data=image, params={"tile": "64", "tile_overlap": 1.5}), 400, "tile_overlap"),
        ("overlap without tile", dict(data=image, params={"tile_overlap": 0.3}), 400, "give tile"),
        ("unknown merge", dict(data=image, params={"tile": "64", "tile_merge": "best"}), 400, "tile_merge"),
        ("whole_image text", dict(data=image, params={"tile": "64", "whole_image": "maybe"}), 400, "whole_image"),
        ("unknown parameter", dict(data=image, params={"score_treshold": 0.5}), 400, "score_treshold"),
    ]


def test_every_bad_input_is_a_4xx_with_a_one_line_json_error(server, files, reference):
    for what, request, status, words in bad_requests(files):
        response = requests.post(server + "/predict", timeout=60, **request)
        assert response.status_code == status, (what, response.status_code, response.text)
        body = response.json()
        assert list(body) == ["error"] and words in body["error"], (what, body)
        assert "\n" not in response.text, what
    for method, path, status in (("GET", "/predict", 405), ("GET", "/nothing", 404), ("DELETE", "/model", 405)):
        response = requests.request(method, server + path, timeout=30)
        assert response.status_code == status and list(response.json()) == ["error"]
    # A body longer than its Content-Length says, or sent in chunks past the limit, gets 413 too.
    chunks = (bytes(100_000) for _ in range(20))
    response = requests.post(server + "/predict", data=chunks, timeout=60)
    assert response.status_code == 413 and "bytes" in response.json()["error"]
    # A client that goes away in the middle of its upload.
    import socket

    host, port = server.rsplit("/", 1)[-1].split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                           b"Content-Length: 50000\r\n\r\n" + read(files["images"]["a.png"])[:1000])  # fmt: skip
    # The server is as it was.
    time.sleep(0.5)
    assert requests.get(server + "/health", timeout=30).json()["status"] == "ok"
    path = files["images"]["a.png"]
    assert_same(post(server, read(path)).json(), reference.predict(path), 120, 160)


def rss_mb(pid="self"):
    with open(f"/proc/{pid}/status") as handle:
        line = next(line for line in handle if line.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc to read memory")
@pytest.mark.slow
def test_bad_inputs_do_not_leak_memory(server, files):
    requests_ = bad_requests(files)

    def one_round():
        for _, request, status, _ in requests_:
            assert requests.post(server + "/predict", timeout=60, **request).status_code == status

    one_round()
    one_round()
    before = rss_mb()
    for _ in range(5):
        one_round()
    growth = rss_mb() - before
    # 165 bad requests, among them 2.25 MP images refused before decoding and 1 MB bodies: a leak of each would be
    # hundreds of MB.
    assert growth < 40, f"resident memory grew by {growth:.0f} MB over {5 * len(requests_)} bad requests"


@pytest.mark.slow
def test_load_200_requests_at_concurrency_8(server, files, reference):
    """Good and bad requests mixed, images of three shapes: no 5xx, every good answer right, batches of more than
    one image formed, and the server healthy after."""
    names = ["a.png", "b.jpg", "c.png", "a.png"]
    expected = {name: reference.predict(files["images"][name]) for name in set(names)}
    bodies = {name: read(files["images"][name]) for name in set(names)}
    before = requests.get(server + "/health", timeout=30).json()

    def one(number):
        if number % 10 == 9:
            response = post(server, b"not an image")
            return number, None, response
        name = names[number % len(names)]
        return number, name, post(server, bodies[name])

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(200)))
    elapsed = time.monotonic() - started
    assert elapsed < 300
    statuses = [response.status_code for _, _, response in results]
    assert all(status < 500 for status in statuses), sorted(set(statuses))
    assert statuses.count(400) == 20 and statuses.count(200) == 180
    batch_sizes = []
    for _, name, response in results:
        if name is None:
            continue
        answer = response.json()
        image = expected[name]
        batch_sizes.append(int(response.headers["x-batch-size"]))
        # In a batch the network's last bits may differ from a single run: a score at the threshold could cross it.
        assert abs(len(answer["scores"]) - len(image["scores"])) <= 2
        count = min(len(answer["scores"]), len(image["scores"]), 100)
        np.testing.assert_allclose(answer["scores"][:count], image["scores"][:count], atol=1e-4)
    assert max(batch_sizes) > 1, "concurrent requests never shared a batch"
    health = requests.get(server + "/health", timeout=30)
    assert health.status_code == 200
    after = health.json()
    assert after["status"] == "ok" and after["in_flight"] == 0 and after["errors"] == before["errors"]
    assert after["images"] - before["images"] == 180
    print(f"200 requests in {elapsed:.1f} s; batch sizes {after['batch_sizes']}")


# ----------------------------------------------------------------------------------------------------------------
# A model that holds its predictions until the test lets them go: /health while one runs, 503 and 504.


class GatedDetector:
    """A Detector whose one network step (``run_batch``) waits for a gate (set: runs at once); everything else is the
    detector's."""

    def __init__(self, detector):
        self.detector = detector
        self.gate, self.entered = threading.Event(), threading.Event()
        self.gate.set()

    def run_batch(self, *args, **kwargs):
        self.entered.set()
        assert self.gate.wait(60)
        return self.detector.run_batch(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.detector, name)


def test_health_answers_while_a_prediction_runs_and_limits_answer_503_and_504(files, reference):
    detector = GatedDetector(load_detector(files["model"]))
    settings = ServeSettings(max_batch_size=2, max_queue=3, timeout_s=2.0)
    app = create_app(detector, settings, warm_up=False)
    body = read(files["images"]["c.png"])
    with running(app) as url:
        detector.gate.clear()
        detector.entered.clear()
        with ThreadPoolExecutor(3) as pool:
            first = pool.submit(post, url, body)
            assert detector.entered.wait(30)  # the first request is in the model, held there
            started = time.monotonic()
            health = requests.get(url + "/health", timeout=5)
            assert health.status_code == 200 and health.json()["busy"] is True
            assert time.monotonic() - started < 1.0
            queued = [pool.submit(post, url, body) for _ in range(2)]
            deadline = time.monotonic() + 10
            while requests.get(url + "/health", timeout=5).json()["in_flight"] < 3 and time.monotonic() < deadline:
                time.sleep(0.02)
            refused = post(url, body)
            assert refused.status_code == 503, refused.text
            assert int(refused.headers["retry-after"]) >= 1 and "--max-queue" in refused.json()["error"]
            # Nobody gets an answer within 2 s: each gets 504, and the two that never reached the model are dropped.
            for future in [first] + queued:
                response = future.result(30)
                assert response.status_code == 504 and "--timeout" in response.json()["error"], response.text
            detector.gate.set()
        deadline = time.monotonic() + 30
        while requests.get(url + "/health", timeout=5).json()["busy"] and time.monotonic() < deadline:
            time.sleep(0.05)
        health = requests.get(url + "/health", timeout=5).json()
        assert health["images"] == 1 and health["in_flight"] == 0 and health["refused"] == 1
        # And the server goes on.
        response = post(url, body)
        assert response.status_code == 200
        assert_same(response.json(), reference.predict(files["images"]["c.png"]), 96, 96)


def test_batcher_groups_requests_by_prepared_shape(reference):
    """Images whose prepared input has one shape share a network batch; others run in batches of their own; each
    gets its own result (close to a single run); a tiled request runs alone; a batch of one is Detector.predict
    exactly."""
    batcher = Batcher(reference, max_batch_size=4, max_batch_wait_ms=0)
    # The model's sides are 96/96: 120x160 and 90x120 become 72x96 (one shape), 200x150 becomes 96x72.
    images = [scene(120, 160, 0), scene(120, 160, 1), scene(90, 120, 2), scene(200, 150, 3), scene(120, 160, 4)]
    jobs = [batcher.prepare(image, {}) for image in images]
    jobs.append(batcher.prepare(scene(150, 200, 5), {"tile": (96, 96), "tile_overlap": 0.2}))
    batcher.run(jobs)
    assert [job.prepared.network_input.shape[:2] for job in jobs[:5]] == [(72, 96)] * 3 + [(96, 72), (72, 96)]
    assert [job.batch_size for job in jobs] == [4, 4, 4, 1, 4, 1]
    assert jobs[5].prepared is None  # a tiled request runs alone
    assert batcher.stats["batch_sizes"] == {4: 1, 1: 2}
    for job, image in zip(jobs[:5], images):
        expected = reference.predict(image)
        result = job.future.result()
        assert result["labels"].tolist()[:50] == expected["labels"].tolist()[:50]
        np.testing.assert_allclose(result["scores"], expected["scores"], atol=1e-5)
    tiled = reference.predict(scene(150, 200, 5), tile=96, tile_overlap=0.2)
    np.testing.assert_array_equal(jobs[5].future.result()["scores"], tiled["scores"])
    single = batcher.prepare(images[0], {"score_threshold": 0.4, "max_detections": 20})
    batcher.run([single])
    expected = reference.predict(images[0], score_threshold=0.4, max_detections=20)
    np.testing.assert_array_equal(single.future.result()["boxes"], expected["boxes"])
    np.testing.assert_array_equal(single.future.result()["scores"], expected["scores"])


@pytest.mark.slow
def test_an_onnx_export_is_served_as_load_detector_runs_it(files, tmp_path):
    """An export runs in its own runtime, one request at a time (its graph is the export's): the same answers."""
    pytest.importorskip("tf2onnx", reason="the ONNX export needs the [export] extra")
    pytest.importorskip("onnxruntime", reason="the ONNX export needs the [export] extra")
    from keras_retinanet.bin import convert_model

    path = str(tmp_path / "detector.onnx")
    # At the test image's own sides (the model file has no spec, so 800 px by default): the same graph, less to run.
    convert_model.main([files["model"], path, "--image-min-side", "120", "--image-max-side", "160"])
    reference = load_detector(path)
    assert (reference.spec.image_min_side, reference.spec.image_max_side) == (120, 160)
    with running(create_app(load_detector(path), model_name="detector.onnx")) as url:
        assert requests.get(url + "/model", timeout=30).json()["format"] == "onnx"
        image_path = files["images"]["a.png"]
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: post(url, read(image_path)), range(4)))
        for response in answers:
            assert response.status_code == 200 and response.headers["x-batch-size"] == "1"
            assert_same(response.json(), reference.predict(image_path), 120, 160, exact=True)


# ----------------------------------------------------------------------------------------------------------------
# The command.


def test_command_errors_are_one_line_before_the_model_loads(files, capsys):
    import keras_retinanet

    with pytest.raises(SystemExit) as stopped:
        serve_command.main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.strip() == f"retinanet-serve {keras_retinanet.__version__} (keras3-retinanet; " \
        "Keras-3 RetinaNet)"
    with pytest.raises(SystemExit) as stopped:
        serve_command.main([str(files["folder"] / "missing.keras"), "--port", str(free_port())])
    assert stopped.value.code == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error:") and "missing.keras" in errors[0]
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit):
            serve_command.main([files["model"], "--port", str(port)])
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and len(err.strip().splitlines()) == 1
    for flags in (["--max-batch-size", "0"], ["--port", "70000"], ["--max-batch-wait-ms", "-1"], ["--timeout", "0"]):
        with pytest.raises(SystemExit) as stopped:
            serve_command.main([files["model"], *flags])
        assert stopped.value.code == 2
    assert "usage: retinanet-serve" in capsys.readouterr().err


def wait_for_health(url, process, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"retinanet-serve exited with {process.returncode}")
        try:
            if requests.get(url + "/health", timeout=5).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.25)
    raise AssertionError("retinanet-serve did not become healthy")


@pytest.mark.slow
def test_sigterm_answers_the_requests_in_flight_then_exits(files, reference, tmp_path):
    """The real command in its own process: requests in flight when SIGTERM comes (one still uploading) are
    answered in full, then the process exits with status 0; afterwards nothing listens."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "serve.log", "w+")
    command = [sys.executable, os.path.join(REPOSITORY, "bin", "retinanet-serve"), files["model"],
               "--port", str(port), "--max-batch-wait-ms", "20"]  # fmt: skip
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=str(tmp_path))
    try:
        wait_for_health(url, process)
        path = files["images"]["d.png"]
        body = read(path)
        uploaded_half = threading.Event()

        def slow_body():
            yield body[: len(body) // 2]
            uploaded_half.set()
            time.sleep(2.0)  # SIGTERM arrives now
            yield body[len(body) // 2 :]

        with ThreadPoolExecutor(4) as pool:
            slow = pool.submit(requests.post, url + "/predict", data=slow_body(), timeout=120,
                               headers={"Content-Type": "image/png"})  # fmt: skip
            assert uploaded_half.wait(30)
            others = [pool.submit(post, url, body) for _ in range(3)]
            time.sleep(0.3)
            process.send_signal(signal.SIGTERM)
            answers = [slow.result(120)] + [future.result(120) for future in others]
        expected = reference.predict(path)
        for response in answers:
            assert response.status_code == 200, response.text
            answer = response.json()
            assert answer["counts"] == expected["counts"]
            np.testing.assert_allclose(answer["scores"], expected["scores"], atol=1e-4)
        assert process.wait(60) == 0
        with pytest.raises(requests.ConnectionError):
            requests.get(url + "/health", timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.seek(0)
        output = log.read()
        log.close()
    assert "stopped on SIGTERM" in output, output
    assert "Traceback" not in output, output
