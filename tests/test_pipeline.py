"""data.pipeline: the tf.data input pipeline gives the generator's batches, and model.fit takes it."""


import keras
import numpy as np
import pytest

from keras_retinanet.data.pipeline import make_dataset
from helpers.square_images import SquareImages


SHAPES = [(64, 64), (64, 96), (80, 64), (64, 64), (96, 96), (72, 64)]


def _as_numpy(batch):
    inputs, (regression, labels) = batch
    return inputs.numpy(), regression.numpy(), labels.numpy()


def test_dataset_yields_the_generators_batches_in_order():
    generator = SquareImages(SHAPES, batch_size=2, group_method="none", shuffle_groups=False)
    batches = [_as_numpy(batch) for batch in make_dataset(generator)]
    assert len(batches) == len(generator) == 3
    shapes = set()
    for index, (inputs, regression, labels) in enumerate(batches):
        expected_inputs, (expected_regression, expected_labels) = generator[index]
        np.testing.assert_array_equal(inputs, expected_inputs)
        np.testing.assert_array_equal(regression, expected_regression)
        np.testing.assert_array_equal(labels, expected_labels)
        shapes.add(inputs.shape)
    assert len(shapes) == 3  # batches of different sizes pass through one dataset


def _batch_orders(batches, generator):
    """For each batch, the index of the generator group it was computed from."""
    references = [generator.compute_input_output(group)[0] for group in generator.groups]
    orders = []
    for inputs in batches:
        matches = [i for i, reference in enumerate(references) if reference.shape == inputs.shape and np.array_equal(reference, inputs)]
        assert len(matches) == 1
        orders.append(matches[0])
    return orders


def test_each_pass_is_a_reshuffled_epoch():
    shapes = [(64 + 8 * i, 64) for i in range(8)]  # each image differs, so a batch names its group
    generator = SquareImages(shapes, batch_size=1, group_method="none", shuffle_groups=True)
    keras.utils.set_random_seed(1)
    dataset = make_dataset(generator)
    first = _batch_orders([_as_numpy(batch)[0] for batch in dataset], generator)
    second = _batch_orders([_as_numpy(batch)[0] for batch in dataset], generator)
    assert sorted(first) == sorted(second) == list(range(8))  # every batch once per pass
    assert first != second
    keras.utils.set_random_seed(1)
    again = make_dataset(generator)
    assert _batch_orders([_as_numpy(batch)[0] for batch in again], generator) == first  # the seed fixes the orders


def test_repeated_dataset_reshuffles_every_pass():
    shapes = [(64 + 8 * i, 64) for i in range(6)]
    generator = SquareImages(shapes, batch_size=1, group_method="none", shuffle_groups=True, seed=3)
    dataset = make_dataset(generator, repeat=True)
    orders = _batch_orders([_as_numpy(batch)[0] for batch in dataset.take(18)], generator)
    passes = [orders[i : i + 6] for i in (0, 6, 12)]
    assert all(sorted(p) == list(range(6)) for p in passes)
    assert len({tuple(p) for p in passes}) == 3
    # The stream resumes anywhere: started at place 7 it gives what the full stream gave there.
    resumed = make_dataset(generator, repeat=True, start=7, num_parallel_calls=3)
    assert _batch_orders([_as_numpy(batch)[0] for batch in resumed.take(11)], generator) == orders[7:18]


def test_unshuffled_generator_keeps_its_order_every_pass():
    shapes = [(64 + 8 * i, 64) for i in range(6)]
    generator = SquareImages(shapes, batch_size=1, group_method="none", shuffle_groups=False)
    orders = _batch_orders([_as_numpy(batch)[0] for batch in make_dataset(generator, repeat=True).take(12)], generator)
    assert orders == list(range(6)) * 2


def _tiny_retinanet(num_classes):
    """RetinaNet heads and FPN on a 5-conv backbone whose C3-C5 have ResNet's sizes ((side + 2^l - 1) // 2^l)."""
    from keras_retinanet.models.retinanet import retinanet

    inputs = keras.Input((None, None, 3))
    x, layers = inputs, {}
    for level in range(1, 6):
        x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
        if level >= 3:
            layers[f"C{level}"] = x
    return retinanet(inputs, layers, num_classes, pyramid_feature_size=16, classification_feature_size=8,
                     regression_feature_size=8)


@pytest.mark.slow  # tracing the train step takes ~15 s on a quiet 2-core machine
def test_model_fit_trains_a_retinanet_on_batches_of_different_shapes():
    from keras_retinanet import losses

    generator = SquareImages(SHAPES, batch_size=2, group_method="none", shuffle_groups=False)
    dataset = make_dataset(generator)
    assert int(dataset.cardinality()) == len(generator)
    model = _tiny_retinanet(num_classes=2)
    model.compile(
        loss={"regression": losses.smooth_l1(), "classification": losses.focal()},
        optimizer=keras.optimizers.Adam(1e-3, clipnorm=0.001),
        jit_compile=False,  # XLA would recompile for every batch shape
    )
    history = model.fit(dataset, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and np.all(np.isfinite(history.history["loss"]))
