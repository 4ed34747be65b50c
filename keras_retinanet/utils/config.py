"""keras-retinanet's ``utils.config``: the .ini reader, from :mod:`keras_retinanet.config.anchors_ini`."""

from ..config.anchors_ini import parse_anchor_parameters, parse_pyramid_levels, read_config_file

__all__ = ["parse_anchor_parameters", "parse_pyramid_levels", "read_config_file"]
