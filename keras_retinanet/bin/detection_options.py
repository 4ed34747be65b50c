"""Command-line options of the detection filter and of tiles, shared by predict, evaluate, convert-model, serve,
train and debug: the candidate cap, the kind of NMS, sliced inference, and tiled training."""

import argparse

from .arguments import default_of, positive_float, positive_int, probability

def add_candidate_cap_argument(parser):
    """``--max-candidates-per-level``: the opt-in cap on NMS candidates (keras-retinanet has none)."""
    parser.add_argument(
        "--max-candidates-per-level",
        dest="model.max_candidates_per_level",
        type=positive_int,
        help="Keep only each pyramid level's N best scores as NMS candidates (torchvision uses 1000): bounded "
        "post-processing where very many scores pass the threshold, but objects lost in crowded images "
        "(default: every score above the threshold, as keras-retinanet).",
    )


def add_nms_method_arguments(parser):
    """``--nms hard|soft`` and ``--soft-nms-sigma``: keras-retinanet's NMS, or Gaussian Soft-NMS."""
    parser.add_argument(
        "--nms",
        dest="model.nms_method",
        choices=("hard", "soft"),
        help="NMS kind: 'hard' (keras-retinanet's) or 'soft' (Gaussian Soft-NMS: overlapping boxes keep a decayed "
        "score instead of being dropped; default: hard).",
    )
    parser.add_argument(
        "--soft-nms-sigma",
        dest="model.soft_nms_sigma",
        type=positive_float,
        help="Soft-NMS's sigma: a kept box multiplies an overlapping box's score by exp(-IoU^2 / (2 sigma)) "
        "(default: 0.5).",
    )


def tile_size(text):
    """--tile's value: 'N' (square) or 'HxW', in pixels."""
    parts = text.lower().split("x")
    try:
        values = [int(part) for part in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"must be a size in pixels, N or HEIGHTxWIDTH (e.g. 640 or 480x640), got {text}")
    return values[0] if len(values) == 1 else (values[0], values[1])


def fraction_below_one(text):
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1), got {text}")
    return value


def add_tile_arguments(parser):
    """--tile, --tile-overlap, --tile-merge, --whole-image: sliced inference (see inference/slicing.py)."""
    parser.add_argument("--tile", type=tile_size, default=None,
                        help="Slice each image into tiles of this size in its own pixels (N or HxW), detect each at "
                        "the model's scale and merge them: small objects in large images (default: whole images).")
    parser.add_argument("--tile-overlap", type=fraction_below_one, default=0.2,
                        help="Fraction of a tile its neighbours share (default: %(default)s).")
    parser.add_argument("--tile-merge", choices=("border", "nms", "merge"), default="border",
                        help="How overlapping tiles' detections become one set (default: %(default)s; see the README).")
    parser.add_argument("--whole-image", action="store_true", default=False,
                        help="With --tile, also detect on the whole image, for objects larger than a tile.")


def add_train_tile_arguments(parser):
    """--tile, --tile-min-visibility, --tile-object-chance: tiled training (see data/cropping.py)."""
    parser.add_argument(
        "--tile",
        dest="data.tile",
        type=tile_size,
        metavar="N|HxW",
        help="Train on a random crop of this size (N or HEIGHTxWIDTH) of each image, in its own pixels (a side "
        "shorter than the tile is taken whole): large images within memory, their objects at their own size. "
        "Without --image-min-side/--image-max-side/--no-resize the crops keep their own scale (resizing off); "
        "with them each crop is resized as an image would be. Boxes are clipped to the crop. The anchor check and "
        "--auto-anchors see the boxes as the crops do; the per-epoch evaluation slices validation images into "
        "tiles of this size; the model's spec records it, and prediction reads whole images unless given --tile "
        "(default: whole images).",
    )
    parser.add_argument(
        "--tile-min-visibility",
        dest="data.tile_min_visibility",
        type=probability,
        metavar="SHARE",
        help="With --tile: drop a box that keeps less than this share (0-1) of its area in the crop "
        f"(default: {default_of('data.tile_min_visibility')}).",
    )
    parser.add_argument(
        "--tile-object-chance",
        dest="data.tile_object_chance",
        type=probability,
        metavar="SHARE",
        help="With --tile: the share (0-1) of crops placed around a random object (holding it whole when it fits), "
        "so that sparse large images still give objects; the others fall anywhere "
        f"(default: {default_of('data.tile_object_chance')}).",
    )


def tiling_of(args):
    """The Tiling the --tile arguments ask for, or None without --tile."""
    if args.tile is None:
        return None
    from ..inference.slicing import Tiling

    return Tiling.of(args.tile, overlap=args.tile_overlap, merge=args.tile_merge, whole_image=args.whole_image)
