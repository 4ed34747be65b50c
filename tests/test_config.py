"""keras-retinanet's utils.config, from keras_retinanet.config.anchors_ini: the .ini format of keras-retinanet and its errors."""

import numpy as np
import pytest

from keras_retinanet.errors import DatasetError
from keras_retinanet.config.anchors_ini import parse_anchor_parameters, parse_pyramid_levels, read_config_file

GOOD = """
[anchor_parameters]
sizes   = 16 32 64
strides = 8 16 32
ratios  = 0.5 1 2
scales  = 1 1.25

[pyramid_levels]
levels = 3 4 5
"""


def _write(tmp_path, text, name="config.ini", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_reads_anchor_parameters_and_levels(tmp_path):
    config = read_config_file(_write(tmp_path, GOOD))
    params = parse_anchor_parameters(config)
    assert params.sizes == [16, 32, 64] and params.strides == [8, 16, 32]
    np.testing.assert_allclose(params.ratios, [0.5, 1, 2])
    np.testing.assert_allclose(params.scales, [1, 1.25])
    assert params.num_anchors() == 6
    assert parse_pyramid_levels(config) == [3, 4, 5]


def test_pyramid_levels_are_optional(tmp_path):
    config = read_config_file(_write(tmp_path, GOOD.split("[pyramid_levels]")[0].replace("16 32 64", "32 64 128 256 512")
                                     .replace("8 16 32", "8 16 32 64 128")))
    assert "pyramid_levels" not in config
    assert parse_anchor_parameters(config).sizes == [32, 64, 128, 256, 512]


def test_missing_file(tmp_path):
    with pytest.raises(DatasetError, match=r"nope\.ini: configuration file not found"):
        read_config_file(tmp_path / "nope.ini")


def test_non_numeric_value(tmp_path):
    path = _write(tmp_path, GOOD.replace("0.5 1 2", "0.5 one 2"))
    with pytest.raises(DatasetError, match=r"config\.ini: \[anchor_parameters\] ratios: 'one' is not a number"):
        read_config_file(path)


def test_float_size_is_not_an_integer(tmp_path):
    with pytest.raises(DatasetError, match=r"sizes: '16.5' is not an integer"):
        read_config_file(_write(tmp_path, GOOD.replace("16 32 64", "16.5 32 64")))


def test_missing_key(tmp_path):
    with pytest.raises(DatasetError, match=r"\[anchor_parameters\] lacks scales"):
        read_config_file(_write(tmp_path, GOOD.replace("scales  = 1 1.25", "")))


def test_sizes_and_strides_disagree(tmp_path):
    with pytest.raises(DatasetError, match="3 sizes but 2 strides"):
        read_config_file(_write(tmp_path, GOOD.replace("8 16 32", "8 16")))


def test_levels_and_sizes_disagree(tmp_path):
    with pytest.raises(DatasetError, match="lists 2 levels but \\[anchor_parameters\\] has 3 sizes"):
        read_config_file(_write(tmp_path, GOOD.replace("levels = 3 4 5", "levels = 3 4")))


def test_not_an_ini_file(tmp_path):
    with pytest.raises(DatasetError, match=r"config\.ini line 1: not a valid \.ini file"):
        read_config_file(_write(tmp_path, "sizes = 1 2 3\n"))


def test_not_utf8(tmp_path):
    with pytest.raises(DatasetError, match="not UTF-8"):
        read_config_file(_write(tmp_path, GOOD + "# d\xe9j\xe0 vu\n", encoding="latin-1"))
