"""retinanet-debug: look at a dataset as the network sees it, with the anchors that match each object.

Annotations drawn red have no anchor with IoU >= 0.5: the network can never learn them.
This is the first thing to run when a model's mAP stays at zero.

    retinanet-debug --anchors --annotations --no-gui --output-dir debug/ csv annotations.csv classes.csv

``--anchors`` also prints the coverage by class and object size; ``--optimize-anchors`` fits anchors
to the dataset instead of drawing and writes them as a ``--config`` .ini:

    retinanet-debug --optimize-anchors --config-out anchors.ini csv annotations.csv classes.csv

``--tile 640`` shows random crops as tiled training takes them, and the coverage and the fit see the
boxes as those crops do.
"""

import logging
import os
import sys

from ..anchors.optimize import MAX_BOXES
from . import arguments, common, detection_options, parsing

logger = logging.getLogger("keras_retinanet.bin.debug")  # not __name__, which is '__main__' under python -m

POSITIVE_ANCHOR_COLOR = (255, 255, 0)  # BGR cyan
UNMATCHED_COLOR = (0, 0, 255)  # BGR red
MATCHED_COLOR = (0, 255, 0)  # BGR green
OPTIMIZE_IMAGES = 2000  # images --optimize-anchors looks at unless --max-images says otherwise


def parse_args(args):
    """The parsed arguments, with the configuration built once as ``.config``."""
    parser = parsing.command_parser("retinanet-debug", "Draw a dataset's annotations and the anchors that match them.")
    arguments.add_dataset_subparsers(parser)
    arguments.add_backbone_argument(parser, "Backbone whose feature sizes place the anchors")
    parser.add_argument("--anchors", action="store_true", default=False, help="Draw the anchors that match an annotation.")
    parser.add_argument(
        "--annotations",
        "--show-annotations",
        dest="annotations",
        action="store_true",
        default=False,
        help="Draw annotations: green with a matching anchor, red without.",
    )
    parser.add_argument("--random-transform", dest="data.random_transform", action="store_true",
                        help="Apply random augmentation first.")
    arguments.add_image_side_arguments(parser)
    detection_options.add_train_tile_arguments(parser)
    arguments.add_anchor_config_argument(parser, "Config .ini with anchor parameters.")
    parser.add_argument("--no-gui", action="store_true", default=False, help="Write images instead of showing them.")
    parser.add_argument("--output-dir", default=None, help="Folder for the images (with --no-gui).")
    parser.add_argument("--display-name", action="store_true", default=False,
                        help="Write class names next to annotations.")
    parser.add_argument("--max-images", type=arguments.positive_int, default=None, help="Stop after this many images.")
    parser.add_argument(
        "--optimize-anchors",
        action="store_true",
        default=False,
        help="Fit anchor ratios, scales and sizes to the dataset's boxes (after the training resize) instead of "
        f"drawing: prints the coverage before and after and the .ini for --config (looks at --max-images images, "
        f"default {OPTIMIZE_IMAGES}; searches every box up to {MAX_BOXES:,}, a sample above that).",
    )
    parser.add_argument("--config-out", metavar="INI", default=None, help="With --optimize-anchors: write the fitted .ini here.")
    parser.add_argument("--seed", type=int, default=0,
                        help="Seed of --optimize-anchors' search and of --tile's crops (default: 0).")
    args = parser.parse_args(args)
    if args.config_out and not args.optimize_anchors:
        raise parsing.CommandLineError("--config-out needs --optimize-anchors (it writes the fitted anchors)")
    if args.no_gui and not args.output_dir and not args.optimize_anchors:
        raise parsing.CommandLineError("--no-gui needs --output-dir to write the images to")
    common.build_config(args)
    return args


def render(generator, index, anchors=True, annotations=True, display_name=False, augmentation=None):
    """One image, (cropped with --tile, augmented and) resized as for training, with anchors and annotations drawn.

    Returns:
        (image (H, W, 3) uint8 BGR, number of annotations, number of them without an anchor).
    """
    from ..data.diagnostics import anchor_coverage
    from ..drawing import draw_annotations, draw_boxes

    coverage = anchor_coverage(generator, index, augmentation=augmentation, positive_anchors=anchors)
    image, boxes, labels, unmatched = coverage.image, coverage.boxes, coverage.labels, coverage.unmatched
    if anchors and len(boxes):
        draw_boxes(image, coverage.anchors[coverage.positive_anchors], POSITIVE_ANCHOR_COLOR, thickness=1)
    if annotations:
        label_to_name = generator.label_to_name if display_name else None
        draw_annotations(image, {"bboxes": boxes[unmatched], "labels": labels[unmatched]}, UNMATCHED_COLOR, label_to_name)
        draw_annotations(image, {"bboxes": boxes[~unmatched], "labels": labels[~unmatched]}, MATCHED_COLOR, label_to_name)
    return image, len(boxes), int(unmatched.sum())


def run(generator, args, augmentation=None):
    """Draw every image; show it, or write it to ``args.output_dir``. Returns (annotations, unmatched)."""
    import cv2

    if args.output_dir:
        os.makedirs(args.output_dir, exist_ok=True)
    count = generator.size() if args.max_images is None else min(args.max_images, generator.size())
    total = unmatched = 0
    for index in range(count):
        image, boxes, missing = render(
            generator,
            index,
            anchors=args.anchors,
            annotations=args.annotations,
            display_name=args.display_name,
            augmentation=augmentation,
        )
        total += boxes
        unmatched += missing
        if args.output_dir:
            cv2.imwrite(os.path.join(args.output_dir, f"{index:06d}.png"), image)
        if not args.no_gui:
            try:
                cv2.imshow("retinanet-debug: any key for next, q to quit", image)
                key = cv2.waitKey()
            except cv2.error:
                raise parsing.CommandLineError(
                    "this OpenCV build cannot open windows; use --no-gui --output-dir DIR"
                ) from None
            if key in (ord("q"), 27):
                break
    return total, unmatched


def report_coverage(generator, max_images=None):
    """Log the coverage table of the dataset's anchors (the images drawn, without augmentation)."""
    from ..data.diagnostics import dataset_coverage, format_coverage

    logger.info(format_coverage(dataset_coverage(generator, max_images=max_images)))


def optimize_anchors(generator, args):
    """--optimize-anchors: fit anchors to the dataset, log before/after, write or print the .ini.

    Returns:
        the :class:`~keras_retinanet.data.diagnostics.DatasetAnchorFit`.
    """
    from ..config.anchors_ini import anchor_config_text, write_anchor_config
    from ..data.cropping import describe_sizing
    from ..data.diagnostics import collect_boxes, describe_fit, fit_dataset_anchors, format_coverage

    data = collect_boxes(generator, max_images=args.max_images or OPTIMIZE_IMAGES)
    result = fit_dataset_anchors(data, args.config.model.anchors, generator.compute_shapes, seed=args.seed)
    logger.info(format_coverage(result.before, "Anchor coverage before"))
    logger.info(format_coverage(result.after, "Anchor coverage after"))
    for line in describe_fit(result):
        logger.info(line)
    comment = (
        f"Anchors fitted by retinanet-debug --optimize-anchors --seed {args.seed} to {data.total} annotations "
        f"of {data.images} images\n({describe_sizing(args.config.data)}): coverage {100 * result.before.share:.1f}% -> {100 * result.after.share:.1f}%"
    )
    if args.config_out:
        write_anchor_config(args.config_out, result.anchors, comment)
        logger.info(f"Anchors written to {args.config_out} (use them with --config {args.config_out})")
    else:
        logger.info(anchor_config_text(result.anchors, comment).rstrip())
    return result


@common.reports_errors
def main(args=None):
    args = parse_args(sys.argv[1:] if args is None else args)
    common.start(args)
    common.check_dataset(args.config.data.dataset)
    common.import_tensorflow(args.verbose)
    from .. import models
    from ..data.augmentation import random_transform_augmentation
    from ..readers.from_config import configured_generator
    from ..data.cropping import tile_crop_of, with_native_scale

    config = args.config = with_native_scale(args.config)  # --tile: the crops as training sizes them
    # The backbone's feature sizes place the anchors; its preprocessing is not needed to draw.
    generator = configured_generator(
        config,
        models.backbone(config.model.backbone),
        tile_crop=tile_crop_of(config.data),
        seed=args.seed if config.data.tile is not None else None,  # without tiles, augmentation stays unseeded
    )
    augmentation = random_transform_augmentation() if config.data.random_transform else None
    if args.optimize_anchors:
        return optimize_anchors(generator, args)
    total, unmatched = run(generator, args, augmentation)
    if args.anchors:
        report_coverage(generator, args.max_images)
    drawn = " (drawn red)" if args.annotations else ""
    logger.info(f"{unmatched} of {total} annotations have no anchor with IoU >= 0.5{drawn}")
    if args.output_dir:
        logger.info(f"Images written to {args.output_dir}")
    return total, unmatched


if __name__ == "__main__":
    main()
