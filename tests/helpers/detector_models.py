"""The small detector the load_detector, retinanet-predict and retinanet-evaluate tests share: a narrow random
ResNet-50 RetinaNet whose scores spread over (0, 1), its spec, sample images and keras-retinanet's prediction by hand.
"""

import cv2
import keras
import numpy as np

from keras_retinanet import models
from keras_retinanet.config.spec import DetectorSpec

BACKBONE = "resnet50"  # random ResNet features are large enough to give scores that vary (MobileNet's vanish)
WIDTHS = dict(pyramid_feature_size=16, classification_feature_size=8, regression_feature_size=8)
CLASS_NAMES = ("cat", "dog")
MIN_SIDE, MAX_SIDE = 96, 128
SIZES = [(96, 128), (150, 100), (120, 120)]  # three sizes, three scales (1.0, 0.853, 0.8)
OWN_THRESHOLD = 0.5


def make_spec(**changes):
    """The spec of the test models; a different class list or sides through ``changes``."""
    values = dict(
        backbone=BACKBONE, preprocessing="caffe", class_names=CLASS_NAMES,
        image_min_side=MIN_SIDE, image_max_side=MAX_SIDE, **WIDTHS,
    )  # fmt: skip
    values.update(changes)
    return DetectorSpec(**values)


def training_model(spec=None, seed=0):
    """A narrow ResNet-50 RetinaNet whose classification scores spread over (0, 1), carrying ``spec``."""
    keras.utils.set_random_seed(seed)
    model = models.backbone(BACKBONE).retinanet(len(CLASS_NAMES), **WIDTHS)
    head = model.get_layer("classification_submodel").get_layer("pyramid_classification")
    kernel, bias = head.get_weights()
    # The prior bias keeps every score near 0.01; larger weights and a milder bias give a real ranking.
    head.set_weights([kernel * 30, np.full_like(bias, -2.0)])
    model.spec = spec
    return model


def sample_images(seed=1):
    """Three BGR uint8 images of different sizes with bright rectangles on noise."""
    rng = np.random.default_rng(seed)
    images = []
    for height, width in SIZES:
        image = rng.integers(0, 80, (height, width, 3), dtype=np.uint8)
        for _ in range(3):
            x, y = int(rng.integers(0, width - 30)), int(rng.integers(0, height - 30))
            image[y : y + 30, x : x + 30] = rng.integers(150, 256, 3, dtype=np.uint8)
        images.append(image)
    return images


def write_sample_dataset(folder):
    """:func:`sample_images` as PNGs in ``folder`` with a CSV dataset of them (two boxes an image, both classes).

    Returns:
        (annotations CSV path, classes CSV path), both in ``folder``.
    """
    rows = []
    for index, image in enumerate(sample_images()):
        name = f"img{index}.png"
        cv2.imwrite(str(folder / name), image)
        height, width = image.shape[:2]
        rows.append(f"{name},5,5,{width // 2},{height // 2},{CLASS_NAMES[index % 2]}\n")
        rows.append(f"{name},{width // 3},{height // 3},{width - 4},{height - 4},{CLASS_NAMES[(index + 1) % 2]}\n")
    annotations, classes = folder / "annotations.csv", folder / "classes.csv"
    annotations.write_text("".join(rows))
    classes.write_text("".join(f"{name},{i}\n" for i, name in enumerate(CLASS_NAMES)))
    return str(annotations), str(classes)


def hand_detections(inference_model, image, min_side=MIN_SIDE, max_side=MAX_SIDE, threshold=None):
    """keras-retinanet's prediction by hand: caffe means, resize the float image, predict, divide by the scale.

    Returns:
        (boxes (N, 4), scores (N,), labels (N,)) without padding, in the image's pixels.
    """
    x = image.astype(np.float32) - np.array([103.939, 116.779, 123.68], dtype=np.float32)
    rows, cols = image.shape[:2]
    scale = min_side / min(rows, cols)
    if max(rows, cols) * scale > max_side:
        scale = max_side / max(rows, cols)
    x = cv2.resize(x, None, fx=scale, fy=scale)
    boxes, scores, labels = (np.asarray(o)[0] for o in inference_model.predict_on_batch(x[np.newaxis])[:3])
    keep = labels >= 0
    if threshold is not None:
        keep &= scores > threshold
    return boxes[keep] / scale, scores[keep], labels[keep]
