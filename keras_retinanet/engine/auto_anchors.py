"""retinanet-train's anchor check: the coverage table at start-up, and ``--auto-anchors``.

``--auto-anchors`` measures, before the model is built, how many training annotations the anchors
cover (IoU >= 0.5 after the training resize). Below ``--auto-anchors-threshold`` it fits new ratios,
scales and sizes to the boxes (:func:`keras_retinanet.data.diagnostics.fit_dataset_anchors`, seeded
with the run's seed), writes them as ``anchors.ini`` into the snapshot folder and trains with them:
the model's DetectorSpec carries them as it carries a ``--config`` file's.
"""

import logging
import os
from typing import Dict, Optional, Tuple

import numpy as np

from ..config import RetinaNetConfig
from ..config.anchors_ini import write_anchor_config
from ..config.spec import OBJECT_SIZE_KEYS
from ..config.defaults import POSITIVE_OVERLAP
from ..data.cropping import describe_sizing
from ..data.diagnostics import DatasetBoxes, collect_boxes, coverage_of, describe_fit, fit_dataset_anchors, format_coverage
from ..callbacks.run_record import choose_run_folder

logger = logging.getLogger(__name__)

ANCHORS_FILE = "anchors.ini"
CHECK_IMAGES = 500  # training images the check and the fit look at


def training_boxes(config: RetinaNetConfig, generator) -> DatasetBoxes:
    """The boxes of (up to :data:`CHECK_IMAGES`) training images after the training resize, for the check and the fit.

    With tiled training, the boxes of crops drawn as training draws them (see :func:`collect_boxes`).

    They do not depend on the anchors, so one collection serves ``--auto-anchors`` and the coverage table after it.
    """
    return collect_boxes(generator, max_images=CHECK_IMAGES, skip_bad_images=config.data.skip_bad_images)


def object_sizes(boxes: DatasetBoxes) -> Optional[Dict[str, float]]:
    """The spec's ``object_sizes``: percentiles 50, 90, 95, 99 and the largest of the boxes' longer side.

    Args:
        boxes: the training boxes (:func:`training_boxes`), in the pixels the network sees them.

    Returns:
        {'p50', 'p90', 'p95', 'p99', 'max'} in pixels (numpy's linear percentiles), or None without any box.
    """
    every = np.concatenate([np.asarray(b, dtype=np.float64).reshape((-1, 4)) for b in boxes.boxes] or [np.zeros((0, 4))])
    if not len(every):
        return None
    longer = np.maximum(every[:, 2] - every[:, 0], every[:, 3] - every[:, 1])
    values = [float(value) for value in np.percentile(longer, [50, 90, 95, 99])] + [float(longer.max())]
    return dict(zip(OBJECT_SIZE_KEYS, values))


def report_coverage(
    generator,
    max_images: int = CHECK_IMAGES,
    skip_bad_images: Optional[bool] = None,
    boxes: Optional[DatasetBoxes] = None,
) -> None:
    """Log the coverage table of the training set; warn when annotations have no positive anchor.

    ``boxes`` (from :func:`training_boxes`) saves reading the images again; ``max_images`` and ``skip_bad_images``
    apply when they are read here.
    """
    if boxes is None:
        boxes = collect_boxes(generator, max_images=max_images, skip_bad_images=skip_bad_images)
    summary = coverage_of(boxes, generator.generate_anchors)
    crop = getattr(generator, "tile_crop", None)
    crops = f", in {len(boxes.shapes)} random {crop.describe()} crops" if crop is not None else ""
    logger.info(format_coverage(summary, f"Anchor coverage (up to {max_images} training images{crops})"))
    missed = summary.overall.total - summary.overall.covered
    if missed:
        logger.warning(
            f"{missed} of {summary.overall.total} annotations (checked on up to {max_images} images) have no anchor "
            f"with IoU >= {POSITIVE_OVERLAP} and cannot be learned; adjust the anchors with --config "
            "(retinanet-debug --optimize-anchors writes one) or train with --auto-anchors"
        )


def _record_folder(config: RetinaNetConfig) -> Tuple[str, RetinaNetConfig]:
    """The folder the snapshots will go to, and the configuration that makes the run use it.

    ``--snapshot-path`` when given; else the run folder, chosen now and fixed in ``training.run_dir`` so
    that the run records (and snapshots) into the same one when it chooses its folder later.
    """
    if config.training.snapshot_path:
        return config.training.snapshot_path, config
    folder = choose_run_folder(config, None)
    return folder, config.replace(training={"run_dir": folder})


def auto_fit_anchors(
    config: RetinaNetConfig, generator, chief: bool = True, boxes: Optional[DatasetBoxes] = None
) -> RetinaNetConfig:
    """``--auto-anchors``: the configuration to train with, its anchors fitted when they cover too little.

    Args:
        config: the run's configuration (``training.seed`` set).
        generator: the training generator, built with ``config``'s anchors.
        chief: write the fitted .ini (the other workers fit the same anchors from the same seed).
        boxes: the training boxes (:func:`training_boxes`), read here when None.

    Returns:
        ``config`` itself when nothing changes (off, resumed, coverage at or above the threshold, no
        better anchors found); else a new configuration whose generators must be rebuilt.
    """
    training = config.training
    if not training.auto_anchors:
        return config
    if training.snapshot:
        logger.info("--auto-anchors does nothing with --snapshot: a resumed model keeps the anchors it was trained with")
        return config
    data = training_boxes(config, generator) if boxes is None else boxes
    share = coverage_of(data, generator.generate_anchors).share
    threshold = training.auto_anchors_threshold
    if share >= threshold:
        logger.info(f"--auto-anchors: the anchors cover {100 * share:.1f}% of the annotations "
                    f"(threshold {100 * threshold:g}%); kept")  # fmt: skip
        return config
    logger.info(f"--auto-anchors: the anchors cover {100 * share:.1f}% of the annotations "
                f"(threshold {100 * threshold:g}%); fitting anchors to {data.total} annotations ...")  # fmt: skip
    result = fit_dataset_anchors(data, config.model.anchors, generator.compute_shapes, seed=training.seed)
    for line in describe_fit(result):
        logger.info(line)
    if not result.improved:
        return config
    anchors = result.anchors
    if chief:
        folder, config = _record_folder(config)
        comment = (
            f"Anchors fitted by retinanet-train --auto-anchors (seed {training.seed}) to {data.total} annotations of "
            f"{data.images} images\n({describe_sizing(config.data)}): coverage {100 * result.before.share:.1f}% -> {100 * result.after.share:.1f}%"
        )
        anchors = write_anchor_config(os.path.join(folder, ANCHORS_FILE), anchors, comment)
        logger.info(f"Training with the fitted anchors, written to {anchors.source} (use it with --config)")
    return config.replace(model={"anchors": anchors})
