"""One tiny distributed training run, for tests/test_distribute.py.

Runs in a process of its own because a strategy's devices (logical CPU devices, the
multi-worker cluster) must be set before TensorFlow starts. It trains the way
``retinanet-train`` does: strategy first, model and optimiser built in its scope,
global batches from the tf.data pipeline, ``model.fit``, a snapshot written by the
chief only; then it resumes from that snapshot under the same strategy and trains on.
It writes the final weights and what it saw to ``--out``.

    python tests/helpers/distribute_worker.py --strategies auto mirrored --logical-cpus 2 --out /tmp/run
    python tests/helpers/distribute_worker.py train-command 2 --strategy mirrored ... csv annotations.csv classes.csv
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.dirname(TESTS), TESTS]  # the checkout's package, and tests/ for the helpers package

from helpers.square_images import SquareImages  # noqa: E402

# (height, width) of the training images: a few sizes, so global batches differ in shape.
SHAPES = [(64, 64), (64, 96), (80, 64), (64, 64), (96, 96), (72, 64), (64, 80), (96, 64)]


# A batch of 2 images with 3 anchors each, for checking the loss normaliser per replica:
# (regression targets (2, 3, 5), regression outputs (2, 3, 4), labels (2, 3, 2), scores (2, 3, 1)).
# Anchor states: image 0 (1, 1, 0), image 1 (1, -1, 0); regression outputs off by 0.5 and 0.05.
_STATES = [[1, 1, 0], [1, -1, 0]]
LOSS_CASE = (
    [[[0, 0, 0, 0, state] for state in image] for image in _STATES],
    [[[0.5, 0, 0, 0]] * 3, [[0.05, 0, 0, 0]] * 3],
    [[[float(state == 1), state] for state in image] for image in _STATES],
    [[[0.5]] * 3] * 2,
)


def replica_losses(strategy):
    """Both losses on each replica of a two-replica strategy, replica i getting image i of LOSS_CASE.

    Returns:
        {'regression': [replica 0, replica 1], 'classification': [replica 0, replica 1]}.
    """
    import tensorflow as tf

    from keras_retinanet import losses

    arrays = [tf.constant(array, tf.float32) for array in LOSS_CASE]

    def image_of_replica(context):
        index = context.replica_id_in_sync_group
        return tuple(array[index : index + 1] for array in arrays)

    inputs = strategy.experimental_distribute_values_from_function(image_of_replica)

    def both_losses(batch):
        regression_true, regression_pred, labels_true, labels_pred = batch
        return losses.smooth_l1_loss(regression_true, regression_pred), losses.focal_loss(labels_true, labels_pred)

    regression, classification = strategy.run(both_losses, args=(inputs,))
    local = strategy.experimental_local_results
    return {
        "regression": [float(value) for value in local(regression)],
        "classification": [float(value) for value in local(classification)],
    }


def tiny_retinanet(num_classes):
    """RetinaNet FPN and heads on a 5-conv backbone whose C3-C5 have ResNet's feature sizes."""
    import keras

    from keras_retinanet.models.retinanet import retinanet

    inputs = keras.Input((None, None, 3))
    features, layers = inputs, {}
    for level in range(1, 6):
        features = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name=f"conv{level}")(
            features
        )
        if level >= 3:
            layers[f"C{level}"] = features
    return retinanet(
        inputs, layers, num_classes, pyramid_feature_size=16, classification_feature_size=8, regression_feature_size=8
    )


def compile_model(model, args):
    import keras

    from keras_retinanet import losses, optimizers

    if args.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(learning_rate=args.lr)
    elif args.optimizer == "keras-adam":  # Keras's own: clips each replica's gradients
        optimizer = keras.optimizers.Adam(learning_rate=args.lr, clipnorm=args.clipnorm)
    else:
        optimizer = optimizers.GlobalBatchAdam(learning_rate=args.lr, clipnorm=args.clipnorm)
    model.compile(
        loss={"regression": losses.smooth_l1(), "classification": losses.focal()},
        optimizer=optimizer,
        jit_compile=False,
    )


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--strategies", nargs="+", default=["auto"], help="Train once under each, one after the other."
    )
    parser.add_argument("--logical-cpus", type=int, default=0, help="Split the CPU into this many logical devices.")
    parser.add_argument("--global-batch-size", type=int, default=4, help="Images per step over all replicas.")
    parser.add_argument("--steps", type=int, default=2, help="Steps before the snapshot.")
    parser.add_argument("--resumed-steps", type=int, default=1, help="Steps after resuming from it.")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--clipnorm", type=float, default=0.001)
    parser.add_argument("--optimizer", choices=("adam", "keras-adam", "sgd"), default="adam")
    parser.add_argument("--out", required=True, help="Folder for weights, snapshots and reports.")
    return parser.parse_args(argv)


def configure_logical_cpus(count):
    """Split the one physical CPU device into ``count`` logical ones (before TensorFlow starts)."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])


def _weights(model):
    return {variable.path: np.asarray(variable.numpy()) for variable in model.trainable_variables}


def train(strategy, args, out):
    """Train ``args.steps`` steps (the chief snapshots), resume from the snapshot, train on.

    Writes ``{out}/{chief|worker}_{i}.npz`` (weights 'trained/...' before and 'resumed/...'
    after resuming) and a JSON report beside it.

    Returns:
        the report (dict).
    """
    import keras

    from keras_retinanet import distribute, models
    from keras_retinanet.callbacks.snapshot import Snapshot
    from keras_retinanet.data.pipeline import make_dataset

    description = distribute.describe_strategy(strategy)
    print(description, flush=True)
    seed = distribute.shared_seed(strategy, args.seed)
    keras.utils.set_random_seed(seed)
    chief = distribute.is_chief(strategy)
    per_replica = args.global_batch_size // strategy.num_replicas_in_sync
    global_batch = distribute.global_batch_size(strategy, per_replica)
    # the batch order of the endless stream is drawn from the generator's seed
    generator = SquareImages(SHAPES, batch_size=global_batch, group_method="none", shuffle_groups=True, seed=seed)

    def dataset():
        return distribute.shard_by_data(make_dataset(generator, repeat=True))

    with strategy.scope():
        model = tiny_retinanet(generator.num_classes())
        compile_model(model, args)

    snapshot_template = os.path.join(out, "snapshots", "tiny_{epoch:02d}")
    callbacks = [Snapshot(snapshot_template)] if chief else []
    first = model.fit(dataset(), steps_per_epoch=args.steps, epochs=1, shuffle=False, verbose=0, callbacks=callbacks)
    trained = _weights(model)
    distribute.barrier(strategy)  # until the chief has written the snapshot

    with strategy.scope():
        resumed = models.load_model(snapshot_template.format(epoch=1) + ".h5")
    loaded = _weights(resumed)
    resumed_iterations = int(resumed.optimizer.iterations.numpy())
    second = resumed.fit(dataset(), steps_per_epoch=args.resumed_steps, epochs=2, initial_epoch=1, shuffle=False, verbose=0)

    task_id = getattr(getattr(strategy, "cluster_resolver", None), "task_id", None) or 0
    name = f"{'chief' if chief else 'worker'}_{task_id}"
    arrays = {f"trained/{key}": value for key, value in trained.items()}
    arrays.update({f"resumed/{key}": value for key, value in _weights(resumed).items()})
    np.savez(os.path.join(out, name + ".npz"), **arrays)
    report = {
        "description": description,
        "chief": chief,
        "replicas": strategy.num_replicas_in_sync,
        "global_batch": global_batch,
        "losses": first.history["loss"] + second.history["loss"],
        "loaded_equals_trained": all(np.array_equal(loaded[key], trained[key]) for key in trained),
        "optimizer": type(resumed.optimizer).__name__,
        "iterations_at_resume": resumed_iterations,
        "iterations": int(resumed.optimizer.iterations.numpy()),
        "snapshots": sorted(os.listdir(os.path.dirname(snapshot_template))) if chief else [],
    }
    if strategy.num_replicas_in_sync == 2 and distribute.num_workers(strategy) == 1:
        report["replica_losses"] = replica_losses(strategy)
    with open(os.path.join(out, name + ".json"), "w") as handle:
        json.dump(report, handle)
    return report


def main(argv):
    args = parse_args(argv)
    if args.logical_cpus:
        configure_logical_cpus(args.logical_cpus)
    from keras_retinanet import distribute

    for name in args.strategies:
        strategy = distribute.make_strategy(name)
        out = os.path.join(args.out, name)
        os.makedirs(out, exist_ok=True)
        train(strategy, args, out)


def train_command(logical_cpus, argv):
    """``retinanet-train ARGV`` in this process, on ``logical_cpus`` logical CPU devices."""
    configure_logical_cpus(logical_cpus)
    from keras_retinanet.bin import train as train_module

    train_module.main(argv)


if __name__ == "__main__":
    if sys.argv[1:2] == ["train-command"]:  # distribute_worker.py train-command 2 --strategy mirrored ... csv ...
        train_command(int(sys.argv[2]), sys.argv[3:])
    else:
        main(sys.argv[1:])
