"""Tile sizes and shares, checked in one place: for tiled training (``--tile``, ``data.tile``) and for sliced
inference (``Detector.predict(tile=...)``, ``retinanet-predict --tile``, ``retinanet-serve``'s ``tile`` parameter).

A tile is given as a Python value (an int, a (height, width) pair) or as text (``'640'``, ``'480x640'``); sliced
inference also takes ``'auto'`` (the model's own tile, see :mod:`keras_retinanet.inference.slicing`). Every form is
checked against the same limits and refused with a :class:`TileError` naming the setting, in one line.
"""

import math
from typing import Sequence, Tuple, Union

import numpy as np

from ..errors import RetinaNetError

# A tile side, in the image's pixels: below 16 px a tile holds no object the coarsest anchors could fit, and
# beyond 100,000 px it is no tile.
MIN_TILE_SIDE = 16
MAX_TILE_SIDE = 100_000
# The share of a tile its neighbours may overlap: beyond 0.9 every pixel is detected over a hundred times.
MAX_TILE_OVERLAP = 0.9
AUTO = "auto"

TEXT_FORM = "N or HEIGHTxWIDTH (e.g. 640 or 480x640)"


class TileError(RetinaNetError, ValueError):
    """A bad tile setting: names the setting and what is allowed, in one line."""


# The names each caller used before the tile settings had one home; the same class.
TileCropError = TileError


def _says(name: str, problem: str) -> str:
    """'tile must ...', or 'must ...' where the caller names the setting itself (argparse: 'argument --tile: ...')."""
    return f"{name} {problem}" if name else problem


def _checked_sides(values: Sequence[int], name: str, shown: str) -> Tuple[int, int]:
    if min(values) < MIN_TILE_SIDE or max(values) > MAX_TILE_SIDE:
        raise TileError(_says(name, f"must be a positive size in pixels, {MIN_TILE_SIDE} to {MAX_TILE_SIDE} a side, "
                                    f"got {shown}"))  # fmt: skip
    return int(values[0]), int(values[1])


def _whole(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def tile_shape(tile: Union[int, Sequence[int]], name: str = "tile") -> Tuple[int, int]:
    """A tile given as a Python value, as (height, width): an int is a square; a (height, width) pair is kept.

    Raises:
        TileError: anything else, or sides outside 16 to 100,000 pixels.
    """
    if _whole(tile):
        values = [int(tile), int(tile)]
    elif isinstance(tile, (tuple, list)) and len(tile) == 2 and all(_whole(value) for value in tile):
        values = [int(value) for value in tile]
    else:
        raise TileError(_says(name, f"must be an int or (height, width) in pixels, got {tile!r}"))
    return _checked_sides(values, name, f"{values[0]}x{values[1]}")


def parse_tile_text(text: str, name: str = "tile", allow_auto: bool = True) -> Union[str, Tuple[int, int]]:
    """A tile given as text (a command's argument, a query parameter): ``'N'``, ``'HxW'`` or ``'auto'``.

    Returns:
        (height, width), or ``'auto'``.

    Raises:
        TileError: any other text, or sides outside 16 to 100,000 pixels.
    """
    text = str(text).strip().lower()
    if allow_auto and text == AUTO:
        return AUTO
    parts = text.split("x")
    try:
        sides = [int(part) for part in parts]
    except ValueError:
        sides = []
    form = TEXT_FORM + (", or auto" if allow_auto else "")
    if len(sides) not in (1, 2):
        raise TileError(_says(name, f"must be a size in pixels, {form}, got {text!r}"))
    if len(sides) == 1:
        sides = sides * 2
    if min(sides) < MIN_TILE_SIDE or max(sides) > MAX_TILE_SIDE:
        raise TileError(_says(name, f"must be a size in pixels, {form}, {MIN_TILE_SIDE} to {MAX_TILE_SIDE} a side, "
                                    f"got {text!r}"))  # fmt: skip
    return sides[0], sides[1]


def check_overlap(value, name: str = "tile_overlap") -> float:
    """A tile overlap as a float in [0, 0.9].

    Raises:
        TileError: anything else.
    """
    problem = _says(name, f"must be a fraction of the tile from 0 to {MAX_TILE_OVERLAP:g}, got {value!r}")
    try:
        overlap = float(value)
    except (TypeError, ValueError):
        raise TileError(problem) from None
    if not (math.isfinite(overlap) and 0.0 <= overlap <= MAX_TILE_OVERLAP):
        raise TileError(problem)
    return overlap


def check_share(value: float, name: str) -> float:
    """``value`` as a float in [0, 1]; TileError naming ``name`` otherwise."""
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise TileError(_says(name, f"must lie between 0 and 1, got {value:g}"))
    return value
