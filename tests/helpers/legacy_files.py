"""keras-retinanet (Keras 2) model files written by hand, for the tests that load them.

``write_keras2_h5`` writes a Keras 2 HDF5 model file from layer names and weights; ``inference_additions`` are the
layers keras-retinanet's convert_model added. keras-retinanet built VGG, MobileNet and DenseNet from
tf.keras.applications (TF 2.3) and EfficientNet from the ``efficientnet`` package; the RetinaNet graph held the
trunk's layers directly, so a snapshot stores them at the top level under their Keras 2 names.
``application_snapshot_layout`` writes that layout from the layers of this package's own model, with the Keras 2
names put back by hand.
"""

import json
import re

import h5py
import keras
import numpy as np

from keras_retinanet import models

# keras-applications' DenseNet named its stem with slashes (Keras 3: 'conv1_conv', ...).
DENSENET_KERAS2_NAMES = {"conv1_conv": "conv1/conv", "conv1_bn": "conv1/bn", "conv1_relu": "conv1/relu"}
# Keras 2 weight names per layer class, in the order Keras 2 saved them (trainable, then not).
KERAS2_WEIGHT_NAMES = {
    "Conv2D": ["kernel", "bias"],
    "DepthwiseConv2D": ["depthwise_kernel", "bias"],
    "BatchNormalization": ["gamma", "beta", "moving_mean", "moving_variance"],
}


def class_name_of(layer):
    """The Keras 2 class name a layer of a keras-retinanet model has (for a realistic config)."""
    rules = [
        (r"input_\d+", "InputLayer"),
        (r"padding.*", "ZeroPadding2D"),
        (r"bn.*", "BatchNormalization"),
        (r".*_relu", "Activation"),
        (r"pool1", "MaxPooling2D"),
        (r"res\d\w+_branch\w+|conv1|C\d_reduced|P\d", "Conv2D"),
        (r"res\d\w+|P\d_merged", "Add"),
        (r"P\d_upsampled", "UpsampleLike"),
        (r".*_submodel", "Functional"),
        (r"regression|classification|anchors", "Concatenate"),
        (r"anchors_\d+", "Anchors"),
        (r"boxes", "RegressBoxes"),
        (r"clipped_boxes", "ClipBoxes"),
        (r"filtered_detections", "FilterDetections"),
    ]
    for pattern, name in rules:
        if re.fullmatch(pattern, layer):
            return name
    raise AssertionError(f"no class for {layer}")


def write_keras2_h5(path, layer_names, values, extra_configs=None, training_config=None, keras_version="2.4.0"):
    """Write a Keras 2 HDF5 model file: root attrs, 'model_config', 'model_weights/<layer>/<weight>'."""
    extra_configs = extra_configs or {}
    config_layers = []
    for name in layer_names:
        entry = extra_configs[name] if name in extra_configs else {"class_name": class_name_of(name), "config": {}}
        config = dict(entry["config"], name=name)
        config_layers.append({"class_name": entry["class_name"], "config": config, "name": name, "inbound_nodes": []})
    model_config = {
        "class_name": "Functional",
        "config": {"name": "retinanet", "layers": config_layers, "input_layers": [["input_1", 0, 0]]},
        "keras_version": keras_version,
        "backend": "tensorflow",
    }
    with h5py.File(path, "w") as handle:
        handle.attrs["keras_version"] = keras_version.encode("utf8")
        handle.attrs["backend"] = b"tensorflow"
        handle.attrs["model_config"] = json.dumps(model_config).encode("utf8")
        if training_config is not None:
            handle.attrs["training_config"] = json.dumps(training_config).encode("utf8")
        group = handle.create_group("model_weights")
        group.attrs["layer_names"] = [n.encode("utf8") for n in layer_names]
        group.attrs["backend"] = b"tensorflow"
        group.attrs["keras_version"] = keras_version.encode("utf8")
        for name in layer_names:
            layer_group = group.create_group(name)
            entries = values.get(name, [])
            layer_group.attrs["weight_names"] = [w.encode("utf8") for w, _ in entries]
            for weight_name, array in entries:
                layer_group.create_dataset(weight_name, data=array)


def inference_additions(anchor_sizes, strides, ratios, scales, filter_config, std):
    """Layer names and configs keras-retinanet's convert_model adds to a training model."""
    names = [f"anchors_{i}" for i in range(len(anchor_sizes))] + ["anchors", "boxes", "clipped_boxes", "filtered_detections"]
    configs = {
        f"anchors_{i}": {
            "class_name": "Anchors",
            "config": {"size": size, "stride": stride, "ratios": list(ratios), "scales": list(scales)},
        }
        for i, (size, stride) in enumerate(zip(anchor_sizes, strides))
    }
    configs["boxes"] = {"class_name": "RegressBoxes", "config": {"mean": [0.0] * 4, "std": list(std)}}
    configs["filtered_detections"] = {"class_name": "FilterDetections", "config": filter_config}
    return names, configs


def keras2_name(backbone_name, name):
    if backbone_name.startswith("densenet"):
        return DENSENET_KERAS2_NAMES.get(name, name)
    return name


def application_snapshot_layout(backbone_name, sizes, seed=0):
    """A keras-retinanet snapshot of ``backbone_name`` with random weights, in the Keras 2 layout.

    Returns:
        (layer names, {layer: [(weight name, array)]}, {layer: config entry},
        {Keras 3 layer name: [arrays]} of the trunk and heads as they must load).
    """
    model = models.backbone(backbone_name).retinanet(
        num_classes=sizes["num_classes"],
        pyramid_feature_size=sizes["pyramid"],
        classification_feature_size=sizes["classification"],
        regression_feature_size=sizes["regression"],
    )
    rng = np.random.default_rng(seed)
    names, values, configs, expected = [], {}, {}, {}

    def random_array(weight_name, shape):
        if "moving_variance" in weight_name:
            return rng.uniform(0.5, 1.5, size=shape).astype(np.float32)
        return (rng.standard_normal(size=shape, dtype=np.float32) * 0.05).astype(np.float32)

    for layer in model.layers:
        if isinstance(layer, keras.layers.Normalization):
            continue  # keras-retinanet's EfficientNet normalised outside the model
        name = layer.name if isinstance(layer, keras.layers.InputLayer) else keras2_name(backbone_name, layer.name)
        names.append(name)
        configs[name] = {"class_name": type(layer).__name__, "config": {}}
        if not layer.weights:
            continue
        if name in ("regression_submodel", "classification_submodel"):
            values[name] = []
            for sublayer in layer.layers:
                arrays = [random_array(v.name, v.shape) for v in sublayer.weights]
                values[name] += [(f"{sublayer.name}/{v.name}:0", a) for v, a in zip(sublayer.weights, arrays)]
                if arrays:
                    expected[f"{name}/{sublayer.name}"] = arrays
            continue
        keras2_weights = KERAS2_WEIGHT_NAMES[type(layer).__name__][: len(layer.weights)]
        # Keras 3 keeps Keras 2's order; only the depthwise kernel lost its prefix.
        assert [v.name for v in layer.weights] == [w.replace("depthwise_", "") for w in keras2_weights]
        arrays = [random_array(w, v.shape) for w, v in zip(keras2_weights, layer.weights)]
        values[name] = [(f"{name}/{w}:0", a) for w, a in zip(keras2_weights, arrays)]
        expected[layer.name] = arrays
    return names, values, configs, expected
