"""What the retinanet-serve tests share (not a test module): a small model that finds many objects, test images, and
a real uvicorn server on 127.0.0.1 in a thread."""

import contextlib
import socket
import threading
import time

import keras
import numpy as np

from keras_retinanet import models
from keras_retinanet.config.spec import DetectorSpec

CLASS_NAMES = ("cell", "debris")
SIDE = 96  # the model's image side


def training_model():
    """A narrow random ResNet-50 RetinaNet whose scores spread over (0, 1): hundreds of detections on a 96 px image
    (as tests/test_dense.py's)."""
    keras.utils.set_random_seed(3)
    widths = dict(pyramid_feature_size=16, classification_feature_size=8, regression_feature_size=8)
    model = models.backbone("resnet50").retinanet(len(CLASS_NAMES), **widths)
    head = model.get_layer("classification_submodel").get_layer("pyramid_classification")
    kernel, bias = head.get_weights()
    head.set_weights([kernel * 30, np.full_like(bias, -1.0)])
    model.spec = DetectorSpec(backbone="resnet50", preprocessing="caffe", class_names=CLASS_NAMES,
                              image_min_side=SIDE, image_max_side=SIDE, **widths)  # fmt: skip
    return model


def scene(height, width, seed=0):
    """A BGR image of bright squares on noise."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 80, (height, width, 3), dtype=np.uint8)
    for _ in range(max(1, height * width // 2500)):
        x, y = int(rng.integers(0, width - 20)), int(rng.integers(0, height - 20))
        image[y : y + 20, x : x + 20] = rng.integers(150, 256, 3, dtype=np.uint8)
    return image


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running(app, timeout=300):
    """Serve ``app`` with uvicorn on 127.0.0.1 in a thread; yields its base URL; stops it (gracefully) after."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(60)
