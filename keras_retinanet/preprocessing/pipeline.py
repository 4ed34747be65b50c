"""Any :class:`Generator` as a parallel, prefetching ``tf.data.Dataset`` for ``model.fit``.

Why not hand the generator to ``model.fit`` directly? It works (a Generator is a
``keras.utils.PyDataset``; pass ``workers=`` for threads), but Keras infers the
batch shapes from the first two batches, and batches differ in height and width
(they are padded to their own largest image), so a later batch of another shape
fails. The dataset here declares those dimensions as unknown.

Layout: a Python iterator yields the image indices of each batch (cheap, in order,
reshuffled by ``generator.on_epoch_end`` after each pass); ``map`` runs
``generator.compute_input_output`` on several batches at once in TensorFlow's thread
pool (OpenCV and most numpy work release the GIL); ``prefetch`` keeps batches ready
while the model trains.
"""

import numpy as np
import tensorflow as tf


def output_signature(generator):
    """The element spec of :func:`make_dataset`: (inputs, (regression, classification)).

    Returns:
        (TensorSpec (B, H, W, 3), (TensorSpec (B, N, 5), TensorSpec (B, N, C + 1))), float32,
        with B, H, W and N unknown.
    """
    return (
        tf.TensorSpec(shape=(None, None, None, 3), dtype=tf.float32),
        (
            tf.TensorSpec(shape=(None, None, 4 + 1), dtype=tf.float32),
            tf.TensorSpec(shape=(None, None, generator.num_classes() + 1), dtype=tf.float32),
        ),
    )


def _group_stream(generator):
    """One pass over the generator's batches (as index arrays), then reshuffle for the next pass."""

    def stream():
        groups = [np.asarray(group, dtype=np.int64) for group in generator.groups]
        for group in groups:
            yield group
        generator.on_epoch_end()

    return stream


def make_dataset(generator, num_parallel_calls=tf.data.AUTOTUNE, prefetch=tf.data.AUTOTUNE, deterministic=True):
    """A ``tf.data.Dataset`` of one epoch of a generator's batches.

    Keras creates a fresh iterator for every epoch, which runs the next pass with the
    batches reshuffled (when the generator shuffles its groups).

    Args:
        generator: a :class:`keras_retinanet.preprocessing.generator.Generator`.
        num_parallel_calls: batches computed at once (``tf.data.AUTOTUNE`` picks).
        prefetch: batches kept ready ahead of the model (``tf.data.AUTOTUNE`` picks; 0 for none).
        deterministic: keep the generator's batch order (True) or hand out whichever batch is
            ready first (False, slightly faster when batches take uneven time).

    Returns:
        tf.data.Dataset of ``(inputs (B, H, W, 3), (regression (B, N, 5), labels (B, N, C + 1)))``.
    """
    signature = output_signature(generator)

    def compute(group):
        inputs, (regression, labels) = generator.compute_input_output([int(index) for index in group])
        return inputs.astype(np.float32), regression.astype(np.float32), labels.astype(np.float32)

    def compute_tensors(group):
        inputs, regression, labels = tf.numpy_function(
            compute, [group], [tf.float32, tf.float32, tf.float32], stateful=True, name="compute_input_output"
        )
        inputs.set_shape(signature[0].shape)
        regression.set_shape(signature[1][0].shape)
        labels.set_shape(signature[1][1].shape)
        return inputs, (regression, labels)

    dataset = tf.data.Dataset.from_generator(
        _group_stream(generator), output_signature=tf.TensorSpec(shape=(None,), dtype=tf.int64)
    )
    # A known length lets Keras show progress and end the epoch without an "ran out of data" warning.
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(len(generator)))
    dataset = dataset.map(compute_tensors, num_parallel_calls=num_parallel_calls, deterministic=deterministic)
    if prefetch:
        dataset = dataset.prefetch(prefetch)
    return dataset
