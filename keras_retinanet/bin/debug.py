"""retinanet-debug: look at a dataset as the network sees it, with the anchors that match each object.

Annotations drawn red have no anchor with IoU >= 0.5: the network can never learn them.
This is the first thing to run when a model's mAP stays at zero.

    retinanet-debug --anchors --annotations --no-gui --output-dir debug/ csv annotations.csv classes.csv
"""

import argparse
import os
import sys

from . import common

POSITIVE_ANCHOR_COLOR = (255, 255, 0)  # BGR cyan
UNMATCHED_COLOR = (0, 0, 255)  # BGR red
MATCHED_COLOR = (0, 255, 0)  # BGR green


def parse_args(args):
    parser = argparse.ArgumentParser(
        prog="retinanet-debug",
        description="Draw a dataset's annotations and the anchors that match them.",
    )
    common.add_dataset_subparsers(parser)
    parser.add_argument("--backbone", default="resnet50", help="Backbone whose feature sizes place the anchors.")
    parser.add_argument("--no-resize", action="store_true", help="Do not resize images.")
    parser.add_argument("--anchors", action="store_true", help="Draw the anchors that match an annotation.")
    parser.add_argument(
        "--annotations",
        "--show-annotations",
        dest="annotations",
        action="store_true",
        help="Draw annotations: green with a matching anchor, red without.",
    )
    parser.add_argument("--random-transform", action="store_true", help="Apply random augmentation first.")
    parser.add_argument("--image-min-side", type=common.positive_int, default=800, help="Rescale the smaller side.")
    parser.add_argument("--image-max-side", type=common.positive_int, default=1333, help="Cap the larger side.")
    parser.add_argument("--config", help="Config .ini with anchor parameters.")
    parser.add_argument("--no-gui", action="store_true", help="Write images instead of showing them.")
    parser.add_argument("--output-dir", help="Folder for the images (with --no-gui).")
    parser.add_argument("--display-name", action="store_true", help="Write class names next to annotations.")
    parser.add_argument("--max-images", type=common.positive_int, default=None, help="Stop after this many images.")
    args = parser.parse_args(args)
    if args.no_gui and not args.output_dir:
        raise common.CommandLineError("--no-gui needs --output-dir to write the images to")
    return common.apply_demo_image_sides(args)


def render(generator, index, anchors=True, annotations=True, display_name=False, transform=False):
    """One image, resized as for training, with anchors and annotations drawn.

    Returns:
        (image (H, W, 3) uint8 BGR, number of annotations, number of them without an anchor).
    """
    import numpy as np

    from ..utils.anchors import compute_gt_annotations, unmatched_annotations
    from ..utils.visualization import draw_annotations, draw_boxes

    image = generator.load_image(index)
    boxes_and_labels = generator.load_annotations(index)
    if transform:
        image, boxes_and_labels = generator.random_transform_group_entry(image, boxes_and_labels)
    image, scale = generator.resize_image(image)
    boxes = np.asarray(boxes_and_labels["bboxes"], dtype=np.float64).reshape((-1, 4)) * scale
    labels = np.asarray(boxes_and_labels["labels"])
    image = np.ascontiguousarray(image, dtype=np.uint8)

    all_anchors = generator.generate_anchors(image.shape)
    unmatched = unmatched_annotations(all_anchors, boxes)
    if anchors and len(boxes):
        positive, _, _ = compute_gt_annotations(all_anchors, boxes)
        draw_boxes(image, all_anchors[positive], POSITIVE_ANCHOR_COLOR, thickness=1)
    if annotations:
        label_to_name = generator.label_to_name if display_name else None
        draw_annotations(image, {"bboxes": boxes[unmatched], "labels": labels[unmatched]}, UNMATCHED_COLOR, label_to_name)
        draw_annotations(image, {"bboxes": boxes[~unmatched], "labels": labels[~unmatched]}, MATCHED_COLOR, label_to_name)
    return image, len(boxes), int(unmatched.sum())


def run(generator, args):
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
            transform=args.random_transform,
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
                raise common.CommandLineError(
                    "this OpenCV build cannot open windows; use --no-gui --output-dir DIR"
                ) from None
            if key in (ord("q"), 27):
                break
    return total, unmatched


@common.reports_errors
def main(args=None):
    args = parse_args(sys.argv[1:] if args is None else args)
    from .. import models

    backbone = models.backbone(args.backbone)
    config, _, _ = common.read_config(args)
    transform_generator = None
    visual_effect_generator = None
    if args.random_transform:
        transform_generator, visual_effect_generator = common.random_augmentation()
    generator = common.create_generator(
        args,
        "eval",
        transform_generator=transform_generator,
        visual_effect_generator=visual_effect_generator,
        image_min_side=args.image_min_side,
        image_max_side=args.image_max_side,
        no_resize=args.no_resize,
        config=config,
        shuffle_groups=False,
        compute_shapes=backbone.feature_shapes,
    )
    total, unmatched = run(generator, args)
    print(f"{unmatched} of {total} annotations have no anchor with IoU >= 0.5" + (" (drawn red)" if args.annotations else ""))
    if args.output_dir:
        print(f"Images written to {args.output_dir}")
    return total, unmatched


if __name__ == "__main__":
    main()
