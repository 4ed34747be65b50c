"""Any :class:`Generator` as a parallel, prefetching ``tf.data.Dataset`` for ``model.fit``.

Why not hand the generator to ``model.fit`` directly? It works (a Generator is a
``keras.utils.PyDataset``; pass ``workers=`` for threads), but Keras infers the
batch shapes from the first two batches, and batches differ in height and width
(they are padded to their own largest image), so a later batch of another shape
fails. The dataset here declares those dimensions as unknown.

Layout: a (shuffled) range of batch indices; ``map`` runs
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


def make_dataset(
    generator, num_parallel_calls=tf.data.AUTOTUNE, prefetch=tf.data.AUTOTUNE, deterministic=True, repeat=False, seed=None
):
    """A ``tf.data.Dataset`` of a generator's batches: one epoch, or endless passes.

    When the generator shuffles its groups, every pass (each fresh iterator, and each
    round of ``repeat``) visits the batches in a new order; ``seed`` (or TensorFlow's
    global seed, set by ``keras.utils.set_random_seed``) makes the orders repeatable.

    Args:
        generator: a :class:`keras_retinanet.preprocessing.generator.Generator`.
        num_parallel_calls: batches computed at once (``tf.data.AUTOTUNE`` picks).
        prefetch: batches kept ready ahead of the model (``tf.data.AUTOTUNE`` picks; 0 for none).
        deterministic: keep the batch order (True) or hand out whichever batch is
            ready first (False, slightly faster when batches take uneven time).
        repeat: pass over the data endlessly (for ``steps_per_epoch`` that is not the dataset size).
        seed: seed of the batch order.

    Returns:
        tf.data.Dataset of ``(inputs (B, H, W, 3), (regression (B, N, 5), labels (B, N, C + 1)))``.
    """
    signature = output_signature(generator)
    groups = [list(group) for group in generator.groups]  # a copy: the generator's own on_epoch_end may reorder it

    def compute(group_index):
        inputs, (regression, labels) = generator.compute_input_output(groups[int(group_index)])
        return inputs.astype(np.float32), regression.astype(np.float32), labels.astype(np.float32)

    def compute_tensors(group_index):
        inputs, regression, labels = tf.numpy_function(
            compute, [group_index], [tf.float32, tf.float32, tf.float32], stateful=True, name="compute_input_output"
        )
        inputs.set_shape(signature[0].shape)
        regression.set_shape(signature[1][0].shape)
        labels.set_shape(signature[1][1].shape)
        return inputs, (regression, labels)

    # The batch order is a shuffled range of group indices, not a Python generator:
    # Dataset.from_generator doubled the training step time on a 2-core machine.
    dataset = tf.data.Dataset.range(len(groups))
    if generator.shuffle_groups and len(groups) > 1:
        dataset = dataset.shuffle(len(groups), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.map(compute_tensors, num_parallel_calls=num_parallel_calls, deterministic=deterministic)
    if prefetch:
        dataset = dataset.prefetch(prefetch)
    return dataset
