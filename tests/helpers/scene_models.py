"""A small model that finds many objects and the crowded test images it runs on (not a test module): shared by the
sliced-inference tests and the retinanet-serve tests."""

import keras
import numpy as np

from keras_retinanet import models
from keras_retinanet.config.spec import DetectorSpec

CLASS_NAMES = ("cell", "debris")
SIDE = 96  # the model's image side


def training_model():
    """A narrow random ResNet-50 RetinaNet (its random features are large enough to spread the scores) whose scores
    spread over (0, 1): hundreds of detections on a 96 px image."""
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
