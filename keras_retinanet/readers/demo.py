"""A synthetic detection dataset, so that a new user can train and evaluate without bringing data.

Each image has a textured, noisy background (a colour gradient, low-frequency blotches
and pixel noise) and a few filled shapes of four classes: rectangle, ellipse,
triangle and cross, in random sizes, aspect ratios and colours that stand out from
the background. Shapes may overlap a little (at most ``max_overlap`` of the smaller
one). The boxes are the tight boxes of the rendered shapes.

Everything is drawn from ``seed``: the same arguments write byte-identical files.
Image ``i`` of a split depends only on ``(seed, split, i)``, so asking for more
images keeps the first ones.

Written layout (one copy of the images, two annotation formats)::

    output_dir/
        classes.csv  train.csv  val.csv                  # CSVGenerator
        annotations/instances_train.json, instances_val.json   # CocoGenerator(output_dir, 'train')
        images/train/000000.jpg ...  images/val/...

``retinanet-train demo`` reads it through :func:`ensure_demo_dataset`, which writes it once (config.defaults'
DEMO_DATASET settings) into the configured folder or the user's cache.
"""

import csv
import dataclasses
import io
import json
import logging
import os

import cv2
import numpy as np

from ..config import DatasetConfig
from ..config.defaults import DEMO_DATASET

logger = logging.getLogger(__name__)

CLASSES = ("rectangle", "ellipse", "triangle", "cross")
SPLITS = {"train": 0, "val": 1}

# Aspect ratios (width / height) of the shapes stay within the anchors' ratios 0.5-2.
_MIN_ASPECT, _MAX_ASPECT = 0.7, 1.45
_MIN_CONTRAST = 80  # smallest luminance difference between a shape and the background under it
_PLACEMENT_TRIES = 50


@dataclasses.dataclass(frozen=True)
class DemoDataset:
    """Paths of a written demo dataset."""

    root: str
    classes_csv: str
    train_csv: str
    val_csv: str
    coco_train_json: str
    coco_val_json: str
    train_images: str
    val_images: str
    class_names: tuple = CLASSES


def _luminance(bgr):
    """Perceived brightness of BGR colour(s), 0-255."""
    bgr = np.asarray(bgr, dtype=np.float64)
    return 0.114 * bgr[..., 0] + 0.587 * bgr[..., 1] + 0.299 * bgr[..., 2]


def render_background(rng, height, width):
    """A textured background: gradient between two colours, smooth blotches and pixel noise.

    Returns:
        (height, width, 3) float64 image in [0, 255].
    """
    start, end = rng.uniform(0, 255, size=(2, 3))
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    position = (np.cos(angle) * xs / width + np.sin(angle) * ys / height + 1.0) / 2.0  # roughly 0..1
    image = start + (end - start) * np.clip(position, 0, 1)[..., None]

    # Low-frequency blotches: a coarse random grid smoothly upsampled.
    grid = rng.normal(0, rng.uniform(10, 30), size=(rng.integers(3, 9), rng.integers(3, 9), 3))
    image += cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    image += rng.normal(0, rng.uniform(3, 12), size=(height, width, 3))
    return np.clip(image, 0, 255)


def shape_mask(class_name, x, y, w, h, height, width, rng):
    """Mask of one filled shape drawn in the rectangle (x, y, w, h).

    Returns:
        (height, width) uint8 mask, 1 inside the shape.
    """
    mask = np.zeros((height, width), dtype=np.uint8)
    x2, y2 = x + w - 1, y + h - 1
    if class_name == "rectangle":
        cv2.rectangle(mask, (x, y), (x2, y2), 1, thickness=-1)
    elif class_name == "ellipse":
        cv2.ellipse(mask, (x + w // 2, y + h // 2), ((w - 1) // 2, (h - 1) // 2), 0, 0, 360, 1, thickness=-1)
    elif class_name == "triangle":
        apex = int(rng.integers(4))  # pointing up, down, left or right
        corners = {
            0: [(x + w // 2, y), (x, y2), (x2, y2)],
            1: [(x, y), (x2, y), (x + w // 2, y2)],
            2: [(x, y + h // 2), (x2, y), (x2, y2)],
            3: [(x, y), (x, y2), (x2, y + h // 2)],
        }[apex]
        cv2.fillPoly(mask, [np.array(corners, dtype=np.int32)], 1)
    elif class_name == "cross":
        bar_h = max(3, int(round(h * 0.3)))
        bar_w = max(3, int(round(w * 0.3)))
        top = y + (h - bar_h) // 2
        left = x + (w - bar_w) // 2
        cv2.rectangle(mask, (x, top), (x2, top + bar_h - 1), 1, thickness=-1)
        cv2.rectangle(mask, (left, y), (left + bar_w - 1, y2), 1, thickness=-1)
    else:
        raise ValueError(f"unknown shape class {class_name!r}; expected one of {CLASSES}")
    return mask


def _overlap_fraction(box, other):
    """Intersection over the smaller area of two (x1, y1, x2, y2) boxes."""
    iw = min(box[2], other[2]) - max(box[0], other[0])
    ih = min(box[3], other[3]) - max(box[1], other[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    smaller = min((box[2] - box[0]) * (box[3] - box[1]), (other[2] - other[0]) * (other[3] - other[1]))
    return iw * ih / smaller


def _contrasting_colour(rng, background_luminance):
    """A random colour at least _MIN_CONTRAST brighter or darker than the background."""
    for _ in range(_PLACEMENT_TRIES):
        colour = rng.uniform(0, 255, size=3)
        if abs(_luminance(colour) - background_luminance) >= _MIN_CONTRAST:
            return colour
    # Rare: fall back to a grey far from the background.
    return np.full(3, 235.0 if background_luminance < 128 else 20.0)


def render_image(rng, height, width, min_object_size, max_object_size, min_objects, max_objects, max_overlap):
    """One image and its objects.

    Returns:
        image: (height, width, 3) uint8 BGR.
        objects: list of (x1, y1, x2, y2, class_index, area), integer pixel boxes with x2/y2 exclusive.
    """
    image = render_background(rng, height, width)
    num_objects = int(rng.integers(min_objects, max_objects + 1))
    objects = []
    for _ in range(num_objects):
        class_index = int(rng.integers(len(CLASSES)))
        placed = None
        for _ in range(_PLACEMENT_TRIES):
            size = rng.uniform(min_object_size, max_object_size)
            aspect = np.exp(rng.uniform(np.log(_MIN_ASPECT), np.log(_MAX_ASPECT)))
            w = int(round(min(width, max(4, size * np.sqrt(aspect)))))
            h = int(round(min(height, max(4, size / np.sqrt(aspect)))))
            x = int(rng.integers(0, width - w + 1))
            y = int(rng.integers(0, height - h + 1))
            box = (x, y, x + w, y + h)
            if all(_overlap_fraction(box, other[:4]) <= max_overlap for other in objects):
                placed = (x, y, w, h)
                break
        if placed is None:
            continue
        x, y, w, h = placed
        # The shape is drawn in its own rectangle, not in an image-sized mask: the same pixels (cv2 draws
        # integer coordinates alike wherever they lie), without a pass over the whole image per object.
        mask = shape_mask(CLASSES[class_index], 0, 0, w, h, h, w, rng).astype(bool)
        window = image[y : y + h, x : x + w]
        colour = _contrasting_colour(rng, _luminance(window[mask].mean(axis=0)))
        texture = rng.normal(0, 6, size=(int(mask.sum()), 3))
        window[mask] = np.clip(colour + texture, 0, 255)
        ys, xs = np.nonzero(mask)
        objects.append((x + int(xs.min()), y + int(ys.min()), x + int(xs.max()) + 1, y + int(ys.max()) + 1,
                        class_index, int(mask.sum())))  # fmt: skip
    return np.round(image).astype(np.uint8), objects


def _write_image(path, image, image_format):
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if image_format in (".jpg", ".jpeg") else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, encoded = cv2.imencode(image_format, image, params)
    if not ok:
        raise OSError(f"cannot encode image as {image_format}")
    with open(path, "wb") as file:
        file.write(encoded.tobytes())


def _write_text(path, text):
    with open(path, "w", encoding="utf-8", newline="") as file:
        file.write(text)


def _write_split(root, split, count, seed, height, width, sizes, objects_range, max_overlap, image_format):
    """Render one split; write its images, CSV and COCO files."""
    image_dir = os.path.join(root, "images", split)
    os.makedirs(image_dir, exist_ok=True)
    rows = io.StringIO()
    writer = csv.writer(rows, lineterminator="\n")
    coco = {
        "info": {"description": f"keras-retinanet synthetic shapes, split {split}, seed {seed}"},
        "images": [],
        "annotations": [],
        "categories": [{"id": index + 1, "name": name, "supercategory": "shape"} for index, name in enumerate(CLASSES)],
    }
    for index in range(count):
        rng = np.random.default_rng([seed, SPLITS[split], index])
        image, objects = render_image(rng, height, width, *sizes, *objects_range, max_overlap)
        file_name = f"{index:06d}{image_format}"
        _write_image(os.path.join(image_dir, file_name), image, image_format)
        relative = f"images/{split}/{file_name}"
        coco["images"].append({"id": index + 1, "file_name": file_name, "width": width, "height": height})
        if not objects:
            writer.writerow([relative, "", "", "", "", ""])
        for x1, y1, x2, y2, class_index, area in objects:
            writer.writerow([relative, x1, y1, x2, y2, CLASSES[class_index]])
            coco["annotations"].append({
                "id": len(coco["annotations"]) + 1,
                "image_id": index + 1,
                "category_id": class_index + 1,
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "area": area,
                "iscrowd": 0,
            })
    _write_text(os.path.join(root, f"{split}.csv"), rows.getvalue())
    os.makedirs(os.path.join(root, "annotations"), exist_ok=True)
    _write_text(os.path.join(root, "annotations", f"instances_{split}.json"), json.dumps(coco, sort_keys=True))
    return image_dir


def make_demo_dataset(
    output_dir,
    num_train=200,
    num_val=50,
    image_size=256,
    min_object_size=32,
    max_object_size=112,
    min_objects=1,
    max_objects=4,
    max_overlap=0.25,
    image_format=".jpg",
    seed=0,
):
    """Write the synthetic shapes dataset in CSV and COCO layout.

    Args:
        output_dir: folder to write into (created; existing demo files are overwritten).
        num_train: images in the train split.
        num_val: images in the val split.
        image_size: side of the square images, or (height, width).
        min_object_size: smallest object side (geometric mean of width and height), in pixels.
        max_object_size: largest object side, in pixels (capped by the image).
        min_objects: fewest objects per image (0 allows images without objects).
        max_objects: most objects per image.
        max_overlap: largest intersection of two objects, as a fraction of the smaller one.
        image_format: '.jpg' or '.png'.
        seed: seed of everything drawn.

    Returns:
        :class:`DemoDataset` with the written paths.
    """
    height, width = (image_size, image_size) if np.isscalar(image_size) else tuple(image_size)
    height, width = int(height), int(width)
    if not 0 < min_object_size <= max_object_size:
        raise ValueError(f"need 0 < min_object_size ({min_object_size}) <= max_object_size ({max_object_size})")
    if min_object_size > min(height, width):
        raise ValueError(f"min_object_size ({min_object_size}) does not fit in a {height}x{width} image")
    if not 0 <= min_objects <= max_objects:
        raise ValueError(f"need 0 <= min_objects ({min_objects}) <= max_objects ({max_objects})")
    if image_format not in (".jpg", ".jpeg", ".png"):
        raise ValueError(f"image_format must be '.jpg' or '.png', got {image_format!r}")

    root = os.fspath(output_dir)
    os.makedirs(root, exist_ok=True)
    _write_text(os.path.join(root, "classes.csv"), "".join(f"{name},{index}\n" for index, name in enumerate(CLASSES)))
    common = dict(
        seed=seed,
        height=height,
        width=width,
        sizes=(min_object_size, max_object_size),
        objects_range=(min_objects, max_objects),
        max_overlap=max_overlap,
        image_format=image_format,
    )
    train_images = _write_split(root, "train", num_train, **common)
    val_images = _write_split(root, "val", num_val, **common)
    return DemoDataset(
        root=root,
        classes_csv=os.path.join(root, "classes.csv"),
        train_csv=os.path.join(root, "train.csv"),
        val_csv=os.path.join(root, "val.csv"),
        coco_train_json=os.path.join(root, "annotations", "instances_train.json"),
        coco_val_json=os.path.join(root, "annotations", "instances_val.json"),
        train_images=train_images,
        val_images=val_images,
    )


def demo_data_dir(dataset: DatasetConfig) -> str:
    """Folder of the demo dataset: the configured one, else ``$XDG_CACHE_HOME/keras_retinanet/demo``."""
    if dataset.path:
        return dataset.path
    cache = os.environ.get("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache"))
    return os.path.join(cache, "keras_retinanet", "demo")


def ensure_demo_dataset(dataset: DatasetConfig) -> dict:
    """Generate the demo dataset unless its folder already holds it; returns its CSV paths by split.

    A marker written after the last file says the folder is complete and with which
    settings, so an interrupted generation is redone rather than trusted.
    """
    folder = demo_data_dir(dataset)
    marker = os.path.join(folder, "COMPLETE.json")
    settings = json.dumps(DEMO_DATASET, sort_keys=True)
    if os.path.isfile(marker):
        with open(marker, encoding="utf8") as handle:
            if handle.read() == settings:
                return {split: os.path.join(folder, f"{split}.csv") for split in ("train", "val", "classes")}
    logger.info(f"Generating the demo dataset in {folder} ...")
    written = make_demo_dataset(folder, **DEMO_DATASET)
    with open(marker, "w", encoding="utf8") as handle:
        handle.write(settings)
    return {"train": written.train_csv, "val": written.val_csv, "classes": written.classes_csv}
