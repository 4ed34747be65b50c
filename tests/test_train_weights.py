"""retinanet-train's initial weights: the backbone's ImageNet weights by default, by path, name or URL,
--weights, --no-weights, the demo preset, the frozen-BatchNorm warning and the offline error.

Downloads come from a local HTTP server (tests/helpers/weight_server.py) or fail against a refused local port;
nothing here reaches the internet.
"""

import os

import h5py
import keras
import numpy as np
import pytest

from keras_retinanet import hub, models
from keras_retinanet.bin import train as train_command
from keras_retinanet.config.defaults import IMAGENET_WEIGHTS_ENV
from keras_retinanet.engine.initial_weights import imagenet_weights_source, load_initial_weights
from keras_retinanet.engine.trainer import build_training_model

from helpers.datasets import SMALL
from helpers.weight_server import WeightServer, refused_port

BACKBONE = "mobilenet128_0.25"
NOTOP_FILE = "mobilenet_2_5_128_tf_no_top.h5"  # the file name of mobilenet128_0.25_imagenet


@pytest.fixture(scope="module")
def notop_weights(tmp_path_factory):
    """Keras' MobileNet (alpha 0.25) no-top ImageNet file layout, with random weights: (bytes, {layer: arrays}).

    Written as Keras 2's ``save_weights`` wrote it (root attribute layer_names; per layer a group
    whose weight_names list its datasets), which is what the ImageNet files hold.
    """
    keras.utils.set_random_seed(7)
    trunk = keras.applications.MobileNet(alpha=0.25, include_top=False, weights=None, input_shape=(128, 128, 3))
    layers = {layer.name: [np.asarray(w) for w in layer.weights] for layer in trunk.layers}
    path = tmp_path_factory.mktemp("notop") / NOTOP_FILE
    with h5py.File(path, "w") as handle:
        handle.attrs["layer_names"] = [name.encode() for name in layers]
        handle.attrs["backend"] = b"tensorflow"
        handle.attrs["keras_version"] = b"2.2.4"
        for layer in trunk.layers:
            group = handle.create_group(layer.name)
            names = [f"{layer.name}/{weight.name}:0" for weight in layer.weights]
            group.attrs["weight_names"] = [name.encode() for name in names]
            for name, weight in zip(names, layer.weights):
                group.create_dataset(name, data=np.asarray(weight))
    return path.read_bytes(), {name: arrays for name, arrays in layers.items() if arrays}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(hub.ENV_HOME, str(tmp_path / "home"))
    monkeypatch.delenv(hub.ENV_MIRROR, raising=False)
    monkeypatch.delenv(IMAGENET_WEIGHTS_ENV, raising=False)
    return tmp_path / "home" / "weights"


def config_of(argv):
    return train_command.parse_args(argv).config


@pytest.mark.slow
def test_retinanet_train_downloads_imagenet_weights_by_url_and_loads_them(dataset, notop_weights, cache, tmp_path,
                                                                            capsys, monkeypatch):
    data, layers = notop_weights
    snapshots = tmp_path / "snapshots"
    with WeightServer() as server:
        server.files[f"/{NOTOP_FILE}"] = data
        url = f"{server.url}/{NOTOP_FILE}"
        train_command.main([
            "--backbone", BACKBONE, *SMALL, "--imagenet-weights", url, "--freeze-backbone", "--epochs", "1",
            "--steps", "1", "--no-evaluation", "--snapshot-path", str(snapshots), "--seed", "1", "csv", *dataset,
        ])  # fmt: skip
        out = capsys.readouterr().out
        assert f"from {hub.cache_path(url)} (downloaded from {url})" in out
        assert "Loaded ImageNet weights (--imagenet-weights) of 54 layers" in out, out

        # the frozen trunk of the snapshot holds the file's weights
        model = models.load_model(str(snapshots / f"{BACKBONE}_csv_01.h5"), backbone_name=BACKBONE)
        for name in ("conv1", "conv_dw_7", "conv_pw_13_bn"):
            for stored, loaded in zip(layers[name], model.get_layer(name).get_weights()):
                np.testing.assert_array_equal(stored, loaded)

        # the next run with the default is another source of the same file name: the URL's file is not taken
        # for it (the cache is keyed by source); it comes from its own place (the mirror here), then the cache
        keras.utils.clear_session()
        monkeypatch.setenv(hub.ENV_MIRROR, server.url)
        config = config_of(["--backbone", BACKBONE, *SMALL, "csv", *dataset])
        assert imagenet_weights_source(config, models.backbone(BACKBONE)) == (
            "mobilenet128_0.25_imagenet", "the backbone's default")
        model = build_training_model(config, models.backbone(BACKBONE), ["square"])
        assert (
            "Loaded ImageNet weights (mobilenet128_0.25_imagenet, the backbone's default) of 54 layers from "
            f"{cache / NOTOP_FILE} (downloaded from {url})"
        ) in capsys.readouterr().out
        assert server.requests == {f"/{NOTOP_FILE}": 2}
        assert hub.resolve("mobilenet128_0.25_imagenet").describe() == f"{cache / NOTOP_FILE} (cached)"
        assert server.requests == {f"/{NOTOP_FILE}": 2}
        np.testing.assert_array_equal(model.get_layer("conv1").get_weights()[0], layers["conv1"][0])


def test_a_local_file_and_whole_model_weights(dataset, notop_weights, cache, tmp_path, capsys):
    data, layers = notop_weights
    local = tmp_path / NOTOP_FILE
    local.write_bytes(data)
    backbone = models.backbone(BACKBONE)
    config = config_of(["--backbone", BACKBONE, *SMALL, "--imagenet-weights", str(local), "csv", *dataset])
    model = build_training_model(config, backbone, ["square"])
    assert f"of 54 layers from {local} (local file)" in capsys.readouterr().out
    np.testing.assert_array_equal(model.get_layer("conv_pw_5").get_weights()[0], layers["conv_pw_5"][0])
    assert not os.path.exists(cache)

    whole = tmp_path / "whole.h5"
    model.save(whole)
    config = config_of(["--backbone", BACKBONE, *SMALL, "--weights", str(whole), "csv", *dataset])
    assert imagenet_weights_source(config, backbone) == (BACKBONE + "_imagenet", "the backbone's default")
    keras.utils.clear_session()
    again = build_training_model(config, backbone, ["square"])
    out = capsys.readouterr().out
    assert f"from {whole} (local file)" in out and "ImageNet" not in out
    for want, got in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(want, got)


def test_random_weights_choices(dataset, cache, monkeypatch):
    backbone = models.backbone(BACKBONE)
    assert imagenet_weights_source(config_of(["demo"]), backbone) == (None, "the demo preset")
    assert imagenet_weights_source(config_of(["--no-weights", "csv", *dataset]), backbone) == (None, "--no-weights")
    monkeypatch.setenv(IMAGENET_WEIGHTS_ENV, "none")
    assert imagenet_weights_source(config_of(["csv", *dataset]), backbone) == (None, f"{IMAGENET_WEIGHTS_ENV}=none")
    # the user's choice wins over the environment
    chosen = config_of(["--imagenet-weights", "resnet50_imagenet", "csv", *dataset])
    assert imagenet_weights_source(chosen, backbone) == ("resnet50_imagenet", "--imagenet-weights")


def test_frozen_batchnorm_resnet_from_random_weights_warns(dataset, cache, capsys):
    backbone = models.backbone("resnet50")
    config = config_of(["--backbone", "resnet50", "--no-weights", *SMALL, "csv", *dataset])
    model = build_training_model(config, backbone, ["square"])
    captured = capsys.readouterr()
    assert "Weights: random (--no-weights)" in captured.out
    warnings = [line for line in captured.err.splitlines() if line.startswith("WARNING:")]
    assert len(warnings) == 1 and "will not learn" in warnings[0] and "--trainable-bn" in warnings[0]

    trainable = config_of(["--backbone", "resnet50", "--no-weights", "--trainable-bn", *SMALL, "csv", *dataset])
    load_initial_weights(model, trainable, backbone)
    assert "WARNING" not in capsys.readouterr().err
    assert not os.path.exists(cache)


def test_offline_default_weights_fail_in_one_line(dataset, cache, monkeypatch, capsys):
    dead = f"http://127.0.0.1:{refused_port()}"
    monkeypatch.setenv(hub.ENV_MIRROR, dead)  # where the default download goes: a refused local port
    with pytest.raises(SystemExit) as exit_info:
        train_command.main(["--backbone", BACKBONE, *SMALL, "--epochs", "1", "--steps", "1", "csv", *dataset])
    assert exit_info.value.code == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert f"from {dead}/{NOTOP_FILE} (mirror of https://github.com/fchollet/deep-learning-models" in errors[0]
    assert f"put {NOTOP_FILE} at {cache / NOTOP_FILE}" in errors[0]
    assert "--imagenet-weights PATH" in errors[0] and "--no-weights" in errors[0]
    assert os.listdir(cache) == []


def test_unknown_weights_are_an_argument_error(dataset, capsys):
    with pytest.raises(SystemExit):
        train_command.main(["--imagenet-weights", "resnet5O_imagenet", "csv", *dataset])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--imagenet-weights: 'resnet5O_imagenet' is not a file" in errors[0]
    with pytest.raises(SystemExit):
        train_command.main(["--weights", "missing/model.h5", "csv", *dataset])
    assert "error: --weights: no such file 'missing/model.h5'" in capsys.readouterr().err
