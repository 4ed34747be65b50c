"""Tiled training's settings checked where the configuration is built: the tile size and the two shares.

The crops themselves are :mod:`keras_retinanet.data.cropping`'s, which checks its arguments with these too.
"""

from typing import Sequence, Tuple, Union

import numpy as np

from ..errors import RetinaNetError


class TileCropError(RetinaNetError, ValueError):
    """Bad tiled-training settings: names the setting and what is allowed."""


def tile_shape(tile: Union[int, Sequence[int]]) -> Tuple[int, int]:
    """``tile`` as (height, width): an int is a square; a (height, width) pair is kept. Both positive whole pixels.

    Raises:
        TileCropError: anything else.
    """
    if isinstance(tile, (int, np.integer)) and not isinstance(tile, bool):
        values = [int(tile), int(tile)]
    elif (
        isinstance(tile, (tuple, list))
        and len(tile) == 2
        and all(isinstance(value, (int, np.integer)) and not isinstance(value, bool) for value in tile)
    ):
        values = [int(value) for value in tile]
    else:
        raise TileCropError(f"tile must be a size in pixels, an int or (height, width), got {tile!r}")
    if min(values) < 1:
        raise TileCropError(f"tile must be a positive size in pixels, got {values[0]}x{values[1]}")
    return values[0], values[1]


def check_share(value: float, name: str) -> float:
    """``value`` as a float in [0, 1]; TileCropError naming ``name`` otherwise."""
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise TileCropError(f"{name} must lie between 0 and 1, got {value:g}")
    return value
