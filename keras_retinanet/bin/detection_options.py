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


def _argument_type(parse):
    """An argparse type from a tile-settings parser: its TileError becomes argparse's one-line error."""

    def parsed(text):
        from ..config.tile_settings import TileError

        try:
            return parse(text)
        except TileError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parsed


def _prediction_tile(text):
    from ..config.tile_settings import parse_tile_text

    return parse_tile_text(text, name="")


def _training_tile(text):
    from ..config.tile_settings import parse_tile_text

    return parse_tile_text(text, name="", allow_auto=False)


def _tile_overlap(text):
    from ..config.tile_settings import AUTO, check_overlap

    return AUTO if text.strip().lower() == AUTO else check_overlap(text, name="")


tile_size = _argument_type(_training_tile)


def add_tile_arguments(parser):
    """--tile, --tile-overlap, --tile-merge, --whole-image: sliced inference (see inference/slicing.py)."""
    from ..inference.merging import MERGE_RULES
    from ..inference.slicing import DEFAULT_MERGE

    parser.add_argument("--tile", type=_argument_type(_prediction_tile), default=None, metavar="N|HxW|auto",
                        help="Slice each image into tiles of this size in its own pixels (N or HxW), detect each at "
                        "the model's scale and merge them: small objects in large images. 'auto': the tile the model "
                        "was trained on, else its image side (default: whole images).")  # fmt: skip
    parser.add_argument("--tile-overlap", type=_argument_type(_tile_overlap), default="auto", metavar="SHARE|auto",
                        help="Fraction of a tile its neighbours share, 0-0.9; 'auto': at least the size of most "
                        "training objects (0.2 for a model that recorded none) (default: %(default)s).")  # fmt: skip
    parser.add_argument("--tile-merge", choices=tuple(MERGE_RULES), default=DEFAULT_MERGE,
                        help="How overlapping tiles' detections become one set (default: %(default)s; see "
                        "docs/prediction.md).")  # fmt: skip
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
    """The TileOptions the --tile arguments ask for, or None without --tile."""
    if args.tile is None:
        return None
    from ..inference.slicing import TileOptions

    return TileOptions.of(args.tile, overlap=args.tile_overlap, merge=args.tile_merge, whole_image=args.whole_image)
