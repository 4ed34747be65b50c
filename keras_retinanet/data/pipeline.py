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

from .seeding import keyed_random_state


def output_signature(generator):
    """The element spec of :func:`make_dataset`: (inputs, (regression, classification)).

    Returns:
        (TensorSpec (B, H, W, 3), (TensorSpec (B, N, R), TensorSpec (B, N, C + 1))), float32, with B, H, W and N
        unknown; R, the box targets' columns, too: 4 + 1 (keras-retinanet's), or 4 + 4 + 1 with the anchors (GIoU).
    """
    return (
        tf.TensorSpec(shape=(None, None, None, 3), dtype=tf.float32),
        (
            tf.TensorSpec(shape=(None, None, None), dtype=tf.float32),
            tf.TensorSpec(shape=(None, None, generator.num_classes() + 1), dtype=tf.float32),
        ),
    )


def batch_order(num_groups, seed, shuffle):
    """The group index at every place of an endless stream of batches.

    Pass ``p`` over the data (places ``p * num_groups`` to ``(p + 1) * num_groups - 1``)
    visits the groups in a permutation drawn from ``(seed, p)`` alone, so any place's
    group is known without replaying the places before it.

    Returns:
        ``(position) -> group index``.
    """
    permutations = {}

    def group_at(position):
        epoch_pass, offset = divmod(int(position), num_groups)
        if not shuffle:
            return offset
        permutation = permutations.get(epoch_pass)
        if permutation is None:
            permutation = keyed_random_state(seed, epoch_pass).permutation(num_groups)
            permutations.clear()  # one pass at a time is all the stream needs
            permutations[epoch_pass] = permutation
        return int(permutation[offset])

    return group_at


def make_dataset(
    generator,
    num_parallel_calls=tf.data.AUTOTUNE,
    prefetch=tf.data.AUTOTUNE,
    deterministic=True,
    repeat=False,
    start=0,
):
    """A ``tf.data.Dataset`` of a generator's batches: one epoch, or an endless resumable stream.

    One epoch (``repeat=False``): every fresh iterator (Keras makes one per epoch)
    visits the batches in a new order when the generator shuffles its groups
    (TensorFlow's global seed, set by ``keras.utils.set_random_seed``, fixes the orders).

    Endless (``repeat=True``): batch number ``p`` of the stream is a function of
    ``(generator.seed, p)`` alone: its group comes from :func:`batch_order` and its
    augmentation from ``generator.augmentation_rng(p)``. So parallel workers do not
    change a run, and a stream started at ``start`` (epochs done x steps) gives exactly
    the batches an uninterrupted run gave there, without computing the ones before.

    Args:
        generator: a :class:`keras_retinanet.readers.generator.Generator` (or anything with its
            ``groups``, ``shuffle_groups``, ``seed``, ``num_classes()`` and ``compute_input_output(group, position)``).
        num_parallel_calls: batches computed at once (``tf.data.AUTOTUNE`` picks).
        prefetch: batches kept ready ahead of the model (``tf.data.AUTOTUNE`` picks; 0 for none).
        deterministic: keep the batch order (True) or hand out whichever batch is
            ready first (False, slightly faster when batches take uneven time).
        repeat: pass over the data endlessly (for ``steps_per_epoch`` that is not the dataset size).
        start: with ``repeat``, the place in the stream of the first batch.

    Returns:
        tf.data.Dataset of ``(inputs (B, H, W, 3), (regression (B, N, 5), labels (B, N, C + 1)))``.
    """
    signature = output_signature(generator)
    groups = [list(group) for group in generator.groups]  # a copy: the generator's own on_epoch_end may reorder it
    shuffle = generator.shuffle_groups and len(groups) > 1
    group_at = batch_order(len(groups), generator.seed, shuffle) if repeat else None

    def compute(index):
        # Endless: ``index`` is the place in the stream; one epoch: the group itself.
        if repeat:
            inputs, (regression, labels) = generator.compute_input_output(groups[group_at(index)], position=int(index))
        else:
            inputs, (regression, labels) = generator.compute_input_output(groups[int(index)])
        return inputs.astype(np.float32), regression.astype(np.float32), labels.astype(np.float32)

    def compute_tensors(index):
        inputs, regression, labels = tf.numpy_function(
            compute, [index], [tf.float32, tf.float32, tf.float32], stateful=True, name="compute_input_output"
        )
        inputs.set_shape(signature[0].shape)
        regression.set_shape(signature[1][0].shape)
        labels.set_shape(signature[1][1].shape)
        return inputs, (regression, labels)

    # Indices come from tf.data ranges, not a Python generator:
    # Dataset.from_generator doubled the training step time on a 2-core machine.
    if repeat:
        dataset = tf.data.Dataset.range(int(start), np.iinfo(np.int64).max)
    else:
        dataset = tf.data.Dataset.range(len(groups))
        if shuffle:
            dataset = dataset.shuffle(len(groups), reshuffle_each_iteration=True)
    dataset = dataset.map(compute_tensors, num_parallel_calls=num_parallel_calls, deterministic=deterministic)
    if prefetch:
        dataset = dataset.prefetch(prefetch)
    return dataset
