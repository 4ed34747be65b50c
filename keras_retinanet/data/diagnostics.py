"""Checks on a dataset that explain a detector that cannot learn: objects no anchor matches.

:func:`anchor_coverage` gives everything ``retinanet-debug`` draws for one image;
:func:`count_unmatched_annotations` counts the annotations no anchor matches;
:func:`collect_boxes` and :func:`coverage_of` measure coverage by class and object size (the table of
``retinanet-debug --anchors`` and of ``retinanet-train``'s start, :func:`format_coverage`);
:func:`fit_dataset_anchors` fits anchors to the boxes (``--optimize-anchors``, ``--auto-anchors``).

With tiled training (a generator with a ``tile_crop``) every one of them sees the boxes as the crops give them: at
the images' own resolution, cut by the crop, then resized as the crop is.
"""

import dataclasses
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import DatasetError
from .boxes import clip_annotations_to_image
from .cropping import crop_annotations, crops_per_image
from .seeding import keyed_random_state
from ..anchors import DEFAULT_PYRAMID_LEVELS, anchors_for_shape, compute_gt_annotations, unmatched_annotations
from ..anchors.coverage import CoverageSummary, box_coverage, box_sizes, concatenate_results, summarise_coverage
from ..anchors.optimize import MOST_COVERED, SEARCH_RESULT, AnchorFit, fit_anchors, place_boxes, start_parameters
from ..config.anchors_ini import AnchorConfig
from ..config.defaults import POSITIVE_OVERLAP

MAX_CLASS_ROWS = 10  # classes the coverage table lists (the least covered ones)
KERAS_RETINANET_ANCHORS = "keras-retinanet's default anchors"  # a candidate of every fit that starts elsewhere
# Keys the crops the anchor check draws (seed, image, this) apart from the training stream's.
_CHECK_CROPS = 3


@dataclasses.dataclass(frozen=True)
class AnchorCoverage:
    """One image as the network sees it, with its anchors and which of them match.

    Attributes:
        image: (H, W, 3) uint8 BGR image, augmented (if asked) and resized, not preprocessed.
        boxes: (K, 4) float64 annotations in the pixels of ``image``.
        labels: (K,) their labels.
        anchors: (N, 4) anchors of ``image``'s shape.
        unmatched: (K,) bool, annotations that no anchor matches with IoU >= 0.5 (never learned).
        positive_anchors: (N,) bool, anchors that training assigns to an annotation (IoU >= 0.5),
            or None when not asked for.
    """

    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    anchors: np.ndarray
    unmatched: np.ndarray
    positive_anchors: Optional[np.ndarray] = None


def anchor_coverage(generator, image_index: int, augmentation=None, rng=None, positive_anchors: bool = True) -> AnchorCoverage:
    """Anchors and annotations of one image after the steps of training that move boxes.

    Args:
        generator: a :class:`keras_retinanet.readers.generator.Generator` (its reader,
            ``input_transform`` and ``generate_anchors`` are used; its ``tile_crop``, if any, crops the image first,
            drawn from ``generator.crop_rng()``).
        image_index: the image.
        augmentation: an :class:`~keras_retinanet.data.augmentation.Augmentation` applied before
            resizing (e.g. to look at ``--random-transform``), or None.
        rng: the random state the augmentation draws from (default: ``generator.augmentation_rng()``).
        positive_anchors: also find the anchors assigned to an annotation (a second matching pass).
    """
    image = generator.load_image(image_index)
    annotations = generator.load_annotations(image_index)
    crop = getattr(generator, "tile_crop", None)
    if crop is not None:
        annotations = {key: np.asarray(value) for key, value in annotations.items()}
        annotations["bboxes"] = annotations["bboxes"].astype(np.float64).reshape((-1, 4))
        annotations, _, _ = clip_annotations_to_image(annotations, image.shape)
        image, annotations = crop(image, annotations, generator.crop_rng())
    if augmentation is not None:
        rng = generator.augmentation_rng() if rng is None else rng
        image, annotations = augmentation(image, annotations, rng)
    image, scale = generator.input_transform.resize(image)
    boxes = np.asarray(annotations["bboxes"], dtype=np.float64).reshape((-1, 4)) * scale
    anchors = generator.generate_anchors(image.shape)
    positive = None
    if positive_anchors:
        positive = compute_gt_annotations(anchors, boxes)[0] if len(boxes) else np.zeros((len(anchors),), dtype=bool)
    return AnchorCoverage(
        image=np.ascontiguousarray(image, dtype=np.uint8),
        boxes=boxes,
        labels=np.asarray(annotations["labels"]),
        anchors=anchors,
        unmatched=unmatched_annotations(anchors, boxes),
        positive_anchors=positive,
    )


def image_anchor_coverage(generator, image_index: int):
    """:func:`anchor_coverage` as a tuple: (image, boxes (K, 4), labels (K,), anchors (N, 4), unmatched (K,) bool)."""
    coverage = anchor_coverage(generator, image_index, positive_anchors=False)
    return coverage.image, coverage.boxes, coverage.labels, coverage.anchors, coverage.unmatched


def count_unmatched_annotations(generator, max_images: Optional[int] = None, skip_bad_images: Optional[bool] = None) -> Tuple[int, int]:
    """How many annotations no anchor overlaps with IoU >= 0.5.

    Args:
        generator: a dataset reader with anchors (a Generator).
        max_images: look at the first this many images only (None: all).
        skip_bad_images: leave out images that cannot be read, recording them with
            ``generator.record_bad_image`` (None: the generator's own ``skip_bad_images``).

    Returns:
        (unmatched, total) annotation counts.
    """
    if skip_bad_images is None:
        skip_bad_images = getattr(generator, "skip_bad_images", False)
    count = generator.size() if max_images is None else min(generator.size(), max_images)
    unmatched = total = 0
    for index in range(count):
        try:
            coverage = anchor_coverage(generator, index, positive_anchors=False)
        except DatasetError as error:
            if not skip_bad_images:
                raise
            generator.record_bad_image(index, error)
            continue
        unmatched += int(coverage.unmatched.sum())
        total += len(coverage.boxes)
    return unmatched, total


@dataclasses.dataclass(frozen=True)
class DatasetBoxes:
    """A dataset's annotations as the network sees them: resized (and cropped) as for training, without augmentation.

    Attributes:
        boxes: one (K_i, 4) float64 array per network input (an image, or a crop of one), in its pixels.
        labels: one (K_i,) array per network input.
        shapes: one (height, width) per network input.
        label_to_name: label -> class name.
        image_count: the images they come from (None: one input per image).
    """

    boxes: Tuple[np.ndarray, ...]
    labels: Tuple[np.ndarray, ...]
    shapes: Tuple[Tuple[int, int], ...]
    label_to_name: Callable[[int], str] = str
    image_count: Optional[int] = None

    @property
    def total(self) -> int:
        return int(sum(len(boxes) for boxes in self.boxes))

    @property
    def images(self) -> int:
        """The images looked at."""
        return len(self.shapes) if self.image_count is None else self.image_count


def collect_boxes(generator, max_images: Optional[int] = None, skip_bad_images: Optional[bool] = None) -> DatasetBoxes:
    """Every annotation of (the first ``max_images`` images of) a dataset after the training resize.

    With a ``tile_crop`` (tiled training), each image gives as many crops as tiles cover it
    (:func:`~keras_retinanet.data.cropping.crops_per_image`), drawn as training draws them from ``(generator.seed,
    image)``: about every box once, at the scale and cut that training gives it. Those crops are the entries.

    Args:
        generator: a Generator (its reader and ``input_transform``: the same resize as training).
        max_images: look at the first this many images only (None: all).
        skip_bad_images: leave out unreadable images, recording them (None: the generator's setting).
    """
    if skip_bad_images is None:
        skip_bad_images = getattr(generator, "skip_bad_images", False)
    count = generator.size() if max_images is None else min(generator.size(), max_images)
    crop = getattr(generator, "tile_crop", None)
    boxes: List[np.ndarray] = []
    labels: List[np.ndarray] = []
    shapes: List[Tuple[int, int]] = []
    images = 0
    for index in range(count):
        try:
            image = generator.load_image(index)
            annotations = generator.load_annotations(index)
        except DatasetError as error:
            if not skip_bad_images:
                raise
            generator.record_bad_image(index, error)
            continue
        images += 1
        if crop is not None:
            for crop_boxes, crop_labels, shape in _crops_of(generator, crop, index, image.shape, annotations):
                boxes.append(crop_boxes)
                labels.append(crop_labels)
                shapes.append(shape)
            continue
        image, scale = generator.input_transform.resize(image)
        boxes.append(np.asarray(annotations["bboxes"], dtype=np.float64).reshape((-1, 4)) * scale)
        labels.append(np.asarray(annotations["labels"]).reshape(-1).astype(np.int64))
        shapes.append((int(image.shape[0]), int(image.shape[1])))

    def label_to_name(label: int) -> str:
        return generator.label_to_name(label) if generator.has_label(label) else str(label)

    return DatasetBoxes(tuple(boxes), tuple(labels), tuple(shapes), label_to_name, image_count=images)


def _crops_of(generator, crop, index: int, image_shape, annotations):
    """(boxes in input pixels, labels, input shape) of each crop :func:`collect_boxes` takes of one image."""
    annotations = {"bboxes": np.asarray(annotations["bboxes"], dtype=np.float64).reshape((-1, 4)),
                   "labels": np.asarray(annotations["labels"]).reshape(-1).astype(np.int64)}  # fmt: skip
    annotations, _, _ = clip_annotations_to_image(annotations, image_shape)
    rng = keyed_random_state(getattr(generator, "seed", 0), index, _CHECK_CROPS)
    resized = {}  # crops of one image mostly share a shape: resize an empty one of each shape once
    for _ in range(crops_per_image(image_shape, crop.tile)):
        window = crop.window(image_shape, annotations["bboxes"], rng)
        cropped = crop_annotations(annotations, window, crop.min_visibility)
        shape = (int(window[3] - window[1]), int(window[2] - window[0]))
        if shape not in resized:
            image, scale = generator.input_transform.resize(np.zeros(shape + (3,), dtype=np.uint8))
            resized[shape] = ((int(image.shape[0]), int(image.shape[1])), scale)
        input_shape, scale = resized[shape]
        yield cropped["bboxes"] * scale, cropped["labels"], input_shape


def coverage_of(data: DatasetBoxes, anchors_of: Callable[[Tuple[int, int]], np.ndarray]) -> CoverageSummary:
    """Coverage of the boxes by the anchors ``anchors_of((height, width))`` gives each image.

    A box is covered when training assigns it an anchor with IoU >= 0.5 (the same test as the
    drawings of ``retinanet-debug``); its best IoU is its largest with any anchor.
    """
    results = []
    for boxes, labels, shape in zip(data.boxes, data.labels, data.shapes):
        best_iou, covered = box_coverage(anchors_of(shape), boxes, positive_overlap=POSITIVE_OVERLAP)
        results.append((best_iou, covered, labels, box_sizes(boxes)))
    merged = concatenate_results(results)
    return summarise_coverage(**merged, label_to_name=data.label_to_name, images=data.images)


def dataset_coverage(generator, max_images: Optional[int] = None, skip_bad_images: Optional[bool] = None) -> CoverageSummary:
    """:func:`coverage_of` the generator's own anchors on (the first ``max_images``) images of its dataset."""
    return coverage_of(collect_boxes(generator, max_images, skip_bad_images), generator.generate_anchors)


def format_coverage(summary: CoverageSummary, title: str = "Anchor coverage", max_classes: int = MAX_CLASS_ROWS) -> str:
    """The summary as a short table: all boxes, each class (the least covered ``max_classes``), each non-empty size."""
    overall = summary.overall
    classes = summary.by_class
    if len(classes) > max_classes:
        classes = sorted(classes, key=lambda group: (group.share, group.mean_best_iou))[:max_classes]
    lines = [
        f"{title}: {overall.covered} of {overall.total} annotations ({100 * overall.share:.1f}%) in "
        f"{summary.images} images have an anchor with IoU >= {POSITIVE_OVERLAP} (sizes after resizing)",
        f"  {'':24s} {'boxes':>7s} {'covered':>8s} {'mean best IoU':>14s}",
    ]
    rows = [("all", overall)]
    rows += [(f"class {group.name}", group) for group in classes]
    rows += [(f"size {group.name} px", group) for group in summary.by_size if group.total]
    for name, group in rows:
        lines.append(f"  {name[:24]:24s} {group.total:7d} {100 * group.share:7.1f}% {group.mean_best_iou:14.3f}")
    if len(classes) < len(summary.by_class):
        lines.append(f"  (the {len(classes)} least covered of {len(summary.by_class)} classes)")
    return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class DatasetAnchorFit:
    """Anchors fitted to a dataset, with the coverage before and after on every collected box.

    Attributes:
        anchors: the fitted :class:`AnchorConfig` (levels as the start's); the start's when nothing covers more.
        before, after: coverage of the start's anchors and of ``anchors``, as training assigns anchors.
        fit: the search's own result (boxes looked at alone, every box counted).
        crowded: (coverage, mean best IoU) of the search's anchors as training assigns anchors, when they cover
            fewer annotations there than the start's (boxes sharing their best anchor) and so were not taken.
    """

    anchors: AnchorConfig
    before: CoverageSummary
    after: CoverageSummary
    fit: AnchorFit
    crowded: Optional[CoverageSummary] = None

    @property
    def improved(self) -> bool:
        """Whether ``anchors`` are not the start's."""
        return self.fit.improved and self.crowded is None


def fit_dataset_anchors(
    data: DatasetBoxes,
    start: Optional[AnchorConfig],
    compute_shapes: Callable,
    seed: int = 0,
    **search,
) -> DatasetAnchorFit:
    """Fit anchor ratios, scales and sizes to a dataset's boxes (see :mod:`keras_retinanet.anchors.optimize`).

    Args:
        data: the boxes, from :func:`collect_boxes`.
        start: the current anchors and levels (None: keras-retinanet's); the levels are kept.
        compute_shapes: the backbone's ``feature_shapes`` (where the anchors are placed).
        seed: seed of the search.
        **search: further :func:`~keras_retinanet.anchors.optimize.fit_anchors` options.
    """
    levels = list(start.pyramid_levels) if start is not None and start.pyramid_levels else list(DEFAULT_PYRAMID_LEVELS)
    parameters = start_parameters(levels, start.parameters if start is not None else None)
    placed_boxes, feature_shapes = [], []
    for boxes, shape in zip(data.boxes, data.shapes):
        level_shapes = np.array([np.asarray(s, dtype=np.int64)[:2] for s in compute_shapes(shape, levels)])
        placed_boxes.append(boxes)
        feature_shapes.append(np.broadcast_to(level_shapes, (len(boxes),) + level_shapes.shape))
    all_boxes = np.concatenate(placed_boxes) if placed_boxes else np.zeros((0, 4))
    all_shapes = np.concatenate(feature_shapes) if feature_shapes else np.zeros((0, len(levels), 2), np.int64)
    default = start_parameters(levels)  # keras-retinanet's anchors on these levels, in the running too
    others = [] if default == parameters else [(KERAS_RETINANET_ANCHORS, default)]
    fit = fit_anchors(place_boxes(all_boxes, all_shapes, parameters.strides), parameters, seed=seed, others=others,
                      **search)  # fmt: skip

    def anchors_with(anchor_parameters):
        return lambda shape: anchors_for_shape(shape, levels, anchor_parameters, shapes_callback=compute_shapes)

    before = coverage_of(data, anchors_with(parameters))
    after = coverage_of(data, anchors_with(fit.parameters)) if fit.improved else before
    if after.overall.covered < before.overall.covered:
        # Fewer annotations get an anchor once training assigns each anchor to one box: keep the start.
        return DatasetAnchorFit(AnchorConfig(parameters, tuple(levels)), before, before, fit, crowded=after)
    return DatasetAnchorFit(anchors=AnchorConfig(fit.parameters, tuple(levels)), before=before, after=after, fit=fit)


def describe_fit(result: DatasetAnchorFit) -> Sequence[str]:
    """Lines saying what a fit found: the boxes it looked at, the anchors, and coverage and mean best IoU before
    and after on every annotation; why the starting anchors were kept, when they were."""
    parameters = result.anchors.parameters
    before, after = result.before.overall, result.after.overall
    fit = result.fit
    if fit.sampled:
        searched = f"searched a random sample of {fit.boxes:,} of the {fit.total:,} boxes; the coverage counts them all"
    else:
        searched = f"searched all {fit.total:,} boxes"
    if result.crowded is not None:
        crowded = result.crowded.overall
        kept = (f" (the fitted anchors cover fewer, {100 * crowded.share:.1f}%, once crowded boxes share anchors; "
                "kept the starting ones)")  # fmt: skip
    elif fit.improved:
        kept = "" if fit.chosen in (SEARCH_RESULT, MOST_COVERED) else f" ({fit.chosen}: they cover the most)"
    elif fit.search is not None and fit.search[0] < fit.before[0]:
        kept = (f" (the search's best anchors cover fewer boxes, {100 * fit.search[0]:.1f}% against "
                f"{100 * fit.before[0]:.1f}%; kept the starting ones)")  # fmt: skip
    else:
        kept = " (no better anchors found; kept)"
    return [
        f"Anchor fit ({searched}): coverage {100 * before.share:.1f}% -> "
        f"{100 * after.share:.1f}%, mean best IoU {before.mean_best_iou:.3f} -> {after.mean_best_iou:.3f} "
        f"on {after.total} annotations" + kept,
        f"Fitted anchors: levels {list(result.anchors.pyramid_levels)}, sizes {parameters.sizes}, "
        f"strides {parameters.strides}, ratios {[round(float(r), 3) for r in parameters.ratios]}, "
        f"scales {[round(float(s), 3) for s in parameters.scales]}",
    ]
