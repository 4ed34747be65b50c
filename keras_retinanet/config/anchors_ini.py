"""The .ini configuration file of keras-retinanet: anchor parameters and pyramid levels.

Example::

    [anchor_parameters]
    sizes   = 32 64 128 256 512
    strides = 8 16 32 64 128
    ratios  = 0.5 1 2
    scales  = 1 1.2 1.6

    [pyramid_levels]
    levels = 3 4 5 6 7
"""

import configparser
import dataclasses
import math
import os
from typing import Any, Dict, Optional, Tuple

import numpy as np

from ..errors import DatasetError
from ..anchors.generation import AnchorParameters

_ANCHOR_KEYS = ("sizes", "strides", "ratios", "scales")
_MAX_INT = 2**31 - 1  # sizes, strides and levels become int32 tensors
_MAX_FLOAT = 1e30  # ratios and scales become float32, and their squares must stay finite
# Levels models.retinanet.create_pyramid_features builds: P2 (from C2, ResNets only) to P7.
PYRAMID_LEVEL_RANGE = (2, 7)


def read_config_file(config_path):
    """Read and check a configuration file.

    Args:
        config_path: path of the .ini file.

    Returns:
        configparser.ConfigParser; its ``anchor_parameters`` section (if any) holds the
        four keys ``sizes strides ratios scales`` and ``pyramid_levels`` (if any) holds ``levels``.

    Raises:
        DatasetError: the file is missing, unreadable, not an .ini file, or a section is incomplete or
            holds values that are not numbers.
    """
    config_path = os.fspath(config_path)
    if not os.path.isfile(config_path):
        raise DatasetError(config_path, "configuration file not found")
    # No interpolation: a '%' in a value is a bad number, not a reference to resolve later.
    config = configparser.ConfigParser(interpolation=None)
    try:
        with open(config_path, encoding="utf-8") as file:
            config.read_file(file)
    except UnicodeDecodeError as error:
        raise DatasetError(config_path, f"not UTF-8 text ({error.reason} at byte {error.start})") from None
    except configparser.Error as error:
        line = getattr(error, "lineno", None)
        raise DatasetError(config_path, f"not a valid .ini file: {error.message.splitlines()[0]}", line=line) from None

    if "anchor_parameters" in config:
        section = config["anchor_parameters"]
        missing = [key for key in _ANCHOR_KEYS if key not in section]
        if missing:
            raise DatasetError(
                config_path,
                f"section [anchor_parameters] lacks {', '.join(missing)}; it needs all of {', '.join(_ANCHOR_KEYS)}",
            )
        sizes = _parse_numbers(config_path, "anchor_parameters", "sizes", section["sizes"], int)
        strides = _parse_numbers(config_path, "anchor_parameters", "strides", section["strides"], int)
        _parse_numbers(config_path, "anchor_parameters", "ratios", section["ratios"], float)
        _parse_numbers(config_path, "anchor_parameters", "scales", section["scales"], float)
        if len(sizes) != len(strides):
            raise DatasetError(
                config_path,
                f"[anchor_parameters] has {len(sizes)} sizes but {len(strides)} strides; give one of each per pyramid level",
            )
    if "pyramid_levels" in config:
        if "levels" not in config["pyramid_levels"]:
            raise DatasetError(config_path, "section [pyramid_levels] lacks 'levels' (e.g. levels = 3 4 5 6 7)")
        levels = _parse_numbers(config_path, "pyramid_levels", "levels", config["pyramid_levels"]["levels"], int)
        outside = [level for level in levels if not PYRAMID_LEVEL_RANGE[0] <= level <= PYRAMID_LEVEL_RANGE[1]]
        if outside:
            raise DatasetError(
                config_path,
                f"[pyramid_levels] levels: {outside[0]} is not a level the feature pyramid has "
                f"({PYRAMID_LEVEL_RANGE[0]}-{PYRAMID_LEVEL_RANGE[1]}; P2 needs a backbone with stride-4 features, the ResNets)",
            )
        if "anchor_parameters" in config:
            num_sizes = len(config["anchor_parameters"]["sizes"].split())
            if num_sizes != len(levels):
                raise DatasetError(
                    config_path,
                    f"[pyramid_levels] lists {len(levels)} levels but [anchor_parameters] has {num_sizes} sizes",
                )
    # Remember where the values came from, for later error messages.
    config.path = config_path
    return config


def _parse_numbers(path, section, key, text, kind):
    """Space separated numbers of one key; DatasetError naming the key and the bad value."""
    values = []
    for token in text.split():
        try:
            value = kind(token)
        except ValueError:
            expected = "an integer" if kind is int else "a number"
            raise DatasetError(path, f"[{section}] {key}: '{token}' is not {expected}") from None
        try:
            finite = math.isfinite(float(value))
        except OverflowError:  # an integer beyond any float
            finite = False
        if not finite or value <= 0:
            raise DatasetError(path, f"[{section}] {key}: '{token}' must be a positive number")
        limit = _MAX_INT if kind is int else _MAX_FLOAT
        if value > limit:
            raise DatasetError(path, f"[{section}] {key}: '{token}' is too large (at most {limit})")
        values.append(value)
    if not values:
        raise DatasetError(path, f"[{section}] {key} is empty")
    return values


def parse_anchor_parameters(config):
    """Anchor parameters of a configuration read by :func:`read_config_file`.

    Returns:
        AnchorParameters with ratios and scales as float32 arrays.
    """
    path = getattr(config, "path", "config")
    section = config["anchor_parameters"]
    sizes = _parse_numbers(path, "anchor_parameters", "sizes", section["sizes"], int)
    strides = _parse_numbers(path, "anchor_parameters", "strides", section["strides"], int)
    ratios = np.array(_parse_numbers(path, "anchor_parameters", "ratios", section["ratios"], float), np.float32)
    scales = np.array(_parse_numbers(path, "anchor_parameters", "scales", section["scales"], float), np.float32)
    return AnchorParameters(sizes, strides, ratios, scales)


def parse_pyramid_levels(config):
    """Pyramid levels of a configuration, e.g. ``[3, 4, 5, 6, 7]``."""
    path = getattr(config, "path", "config")
    return _parse_numbers(path, "pyramid_levels", "levels", config["pyramid_levels"]["levels"], int)


@dataclasses.dataclass(frozen=True)
class AnchorConfig:
    """Anchor parameters and pyramid levels of a model; either may be None for keras-retinanet's default.

    Attributes:
        parameters: the :class:`AnchorParameters` (sizes, strides, ratios, scales), or None.
        pyramid_levels: the pyramid levels, e.g. (3, 4, 5, 6, 7), or None.
        source: the .ini file they were read from, for messages (None when built in code).
    """

    parameters: Optional[AnchorParameters] = None
    pyramid_levels: Optional[Tuple[int, ...]] = None
    source: Optional[str] = None

    def __post_init__(self):
        if self.pyramid_levels is not None:
            object.__setattr__(self, "pyramid_levels", tuple(int(level) for level in self.pyramid_levels))

    def to_dict(self) -> Dict[str, Any]:
        return {
            "parameters": self.parameters.get_config() if self.parameters is not None else None,
            "pyramid_levels": list(self.pyramid_levels) if self.pyramid_levels is not None else None,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "AnchorConfig":
        parameters = values.get("parameters")
        return cls(
            parameters=AnchorParameters.from_config(parameters) if parameters is not None else None,
            pyramid_levels=values.get("pyramid_levels"),
            source=values.get("source"),
        )


def anchor_config_from_parser(config) -> AnchorConfig:
    """The :class:`AnchorConfig` of a configuration read by :func:`read_config_file` (keras-retinanet's object)."""
    return AnchorConfig(
        parameters=parse_anchor_parameters(config) if config.has_section("anchor_parameters") else None,
        pyramid_levels=parse_pyramid_levels(config) if config.has_section("pyramid_levels") else None,
        source=getattr(config, "path", None),
    )


def read_anchor_config(config_path) -> AnchorConfig:
    """Read a keras-retinanet .ini file into an :class:`AnchorConfig`: the one place .ini files are parsed.

    Raises:
        DatasetError: the file is missing or malformed (the message names the file, section and value).
    """
    return anchor_config_from_parser(read_config_file(config_path))


def _format_numbers(values, kind) -> str:
    """Space separated values as the reader parses them back: integers, or float32s by their shortest repr."""
    if kind is int:
        return " ".join(str(int(value)) for value in values)
    return " ".join(np.format_float_positional(np.float32(value), trim="-") for value in values)


def anchor_config_text(anchor_config: AnchorConfig, comment: Optional[str] = None) -> str:
    """The .ini text of an :class:`AnchorConfig`, which :func:`read_anchor_config` reads back equal.

    Args:
        anchor_config: the anchors; a None part (parameters or levels) leaves its section out.
        comment: lines to put first, as '#' comments (e.g. how the anchors were found).
    """
    lines = [f"# {line}" for line in (comment or "").splitlines()]
    parameters = anchor_config.parameters
    if parameters is not None:
        lines += [
            "[anchor_parameters]",
            f"sizes   = {_format_numbers(parameters.sizes, int)}",
            f"strides = {_format_numbers(parameters.strides, int)}",
            f"ratios  = {_format_numbers(parameters.ratios, float)}",
            f"scales  = {_format_numbers(parameters.scales, float)}",
        ]
    if anchor_config.pyramid_levels is not None:
        lines += ["", "[pyramid_levels]"] if parameters is not None else ["[pyramid_levels]"]
        lines.append(f"levels = {_format_numbers(anchor_config.pyramid_levels, int)}")
    return "\n".join(lines) + "\n"


def write_anchor_config(path, anchor_config: AnchorConfig, comment: Optional[str] = None) -> AnchorConfig:
    """Write an .ini file for ``--config`` atomically (a crash leaves the old file or none), then read it back.

    Returns:
        the :class:`AnchorConfig` read from the written file (its ``source`` is ``path``).
    """
    from ..atomic_files import write_bytes_atomically

    path = os.fspath(path)
    write_bytes_atomically(anchor_config_text(anchor_config, comment).encode("utf-8"), path)
    return read_anchor_config(path)
