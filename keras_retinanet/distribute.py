"""Training on several devices or machines with ``tf.distribute``.

``retinanet-train --strategy`` picks one of:

* ``one``: a single device (the first GPU, else the CPU), as ``OneDeviceStrategy``;
* ``mirrored``: every GPU of this machine (without GPUs: every logical CPU device),
  as ``MirroredStrategy``;
* ``multi-worker``: several machines (or processes), each with its devices, as
  ``MultiWorkerMirroredStrategy``; the cluster and this process's place in it come from
  the ``TF_CONFIG`` environment variable, as TensorFlow documents;
* ``auto``: ``multi-worker`` when ``TF_CONFIG`` names more than one task, ``mirrored``
  when this machine has more than one GPU, else TensorFlow's default (no strategy).

How a global batch is trained, whatever the strategy:

* The input pipeline yields *global* batches (per-replica batch times replicas), padded
  to their largest image as on one device; Keras splits each into one slice per replica
  (``strategy.experimental_distribute_dataset``). Every worker computes the same global
  batches (same seed) and keeps its own slices (``AutoShardPolicy.DATA``).
* The losses divide by the number of positive anchors in the global batch
  (:mod:`keras_retinanet.losses` sums the count over replicas), and the replicas'
  gradients are summed, so the update is the one a single device makes on that batch.
* Keras clips each replica's gradients before summing them;
  :class:`keras_retinanet.optimizers.GlobalBatchAdam` clips the summed gradients instead, so
  ``clipnorm`` also means what it means on one device.

Strategies must be created before TensorFlow runs anything else (``multi-worker`` in
particular), so create the strategy first thing in a program.
"""

import json
import os

import tensorflow as tf

from .errors import RetinaNetError

STRATEGY_NAMES = ("auto", "one", "mirrored", "multi-worker")


class StrategyError(RetinaNetError, ValueError):
    """A distribution setting (strategy name, TF_CONFIG) that cannot be used."""


def read_tf_config(environ=None):
    """The parsed ``TF_CONFIG`` environment variable, or None when it is unset or empty.

    Args:
        environ: mapping to read instead of ``os.environ``.

    Returns:
        dict with 'cluster' ({task type: [host:port, ...]}) and 'task' ({'type', 'index'}), or None.

    Raises:
        StrategyError: TF_CONFIG is not JSON, or lacks the cluster or the task.
    """
    environ = os.environ if environ is None else environ
    text = environ.get("TF_CONFIG", "").strip()
    if not text:
        return None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise StrategyError(f"TF_CONFIG: not valid JSON ({error.msg} at character {error.pos})") from error
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict) or not config["cluster"]:
        raise StrategyError('TF_CONFIG: needs a "cluster", e.g. {"worker": ["host1:port", "host2:port"]}')
    task = config.get("task")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise StrategyError('TF_CONFIG: needs a "task" naming this process, e.g. {"type": "worker", "index": 0}')
    tasks = config["cluster"].get(task["type"])
    if not isinstance(tasks, list) or not 0 <= int(task["index"]) < len(tasks):
        raise StrategyError(
            f'TF_CONFIG: task {task["type"]} {task["index"]} is not in the cluster '
            f"({', '.join(f'{kind}: {len(v)}' for kind, v in config['cluster'].items())})"
        )
    return config


def cluster_size(tf_config):
    """Number of training tasks ('chief' and 'worker') in a parsed TF_CONFIG (0 for None)."""
    if tf_config is None:
        return 0
    return sum(len(tf_config["cluster"].get(kind, [])) for kind in ("chief", "worker"))


def _local_devices():
    """The devices a mirrored strategy replicates on: all GPUs, else all logical CPU devices."""
    gpus = tf.config.list_logical_devices("GPU")
    return [device.name for device in (gpus or tf.config.list_logical_devices("CPU"))]


def make_strategy(name="auto", devices=None):
    """The ``tf.distribute.Strategy`` a ``--strategy`` name stands for.

    Args:
        name: one of :data:`STRATEGY_NAMES`.
        devices: for 'mirrored', the device names to replicate on (default: every GPU,
            else every logical CPU device); for 'one', the device (default: first GPU, else CPU).

    Returns:
        tf.distribute.Strategy (for 'auto' on one device, TensorFlow's default strategy).

    Raises:
        StrategyError: unknown name, or 'multi-worker' without a usable TF_CONFIG.
    """
    if name not in STRATEGY_NAMES:
        raise StrategyError(f"unknown strategy '{name}'; expected one of {', '.join(STRATEGY_NAMES)}")
    tf_config = read_tf_config()
    if name == "auto":
        if cluster_size(tf_config) > 1:
            name = "multi-worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            return tf.distribute.get_strategy()
    if name == "one":
        device = devices[0] if devices else _local_devices()[0]
        return tf.distribute.OneDeviceStrategy(device)
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=list(devices) if devices else _local_devices())
    if tf_config is None:
        raise StrategyError(
            "--strategy multi-worker needs the TF_CONFIG environment variable, e.g. "
            'TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}\''
        )
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    _reduce_each_value(strategy)
    return strategy


def _reduce_each_value(strategy):
    """Make ``strategy.reduce`` take what Keras 3's ``fit`` hands a multi-worker strategy.

    Keras 3 (keras-team/keras#20585) calls ``reduce`` with a whole (inputs, targets)
    structure, which MultiWorkerMirroredStrategy cannot reduce, and with ``axis=0`` on
    scalar metrics, which has no axis 0. Here each value of the structure is reduced on
    its own, and a scalar across replicas: what Keras means, and what MirroredStrategy does.
    """
    reduce = strategy.reduce

    def reduce_each(reduce_op, value, axis=None):
        def reduce_one(item):
            rank = strategy.experimental_local_results(item)[0].shape.rank
            return reduce(reduce_op, item, axis=axis if axis is None or rank else None)

        return tf.nest.map_structure(reduce_one, value)

    strategy.reduce = reduce_each


def _task(strategy):
    """(task type, task index, cluster spec dict) of a multi-worker strategy, else (None, None, {})."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return None, None, {}
    return resolver.task_type, int(resolver.task_id), resolver.cluster_spec().as_dict()


def is_chief(strategy):
    """Whether this process writes snapshots, TensorBoard logs and runs evaluation.

    The chief is the 'chief' task if the cluster has one, else worker 0, as in TensorFlow's
    multi-worker guide. A single-machine strategy is always the chief.
    """
    task_type, task_id, cluster = _task(strategy)
    if task_type is None:
        return True
    if task_type == "chief":
        return True
    return task_type == "worker" and task_id == 0 and "chief" not in cluster


def num_workers(strategy):
    """Number of training processes (1 outside multi-worker)."""
    _, _, cluster = _task(strategy)
    return max(1, sum(len(cluster.get(kind, [])) for kind in ("chief", "worker")))


def global_batch_size(strategy, per_replica_batch_size):
    """Images per training step over all replicas: per-replica batch times replicas."""
    return per_replica_batch_size * strategy.num_replicas_in_sync


def describe_strategy(strategy):
    """A few lines naming the strategy, its devices and (multi-worker) the cluster and this task.

    Returns:
        str, e.g. 'Strategy: MirroredStrategy, 2 replicas\\n  devices: /job:localhost/.../CPU:0, ...'.
    """
    replicas = strategy.num_replicas_in_sync
    kind = type(strategy).__name__
    if kind == "_DefaultDistributionStrategy":
        kind = "default (no tf.distribute strategy)"
    lines = [f"Strategy: {kind}, {replicas} replica{'s' if replicas != 1 else ''}"]
    try:
        devices = list(strategy.extended.worker_devices)
    except RuntimeError:  # the default strategy: TensorFlow places ops itself, on the first GPU if any
        devices = _local_devices()[:1]
    lines.append(f"  devices of this worker: {', '.join(devices)}")
    task_type, task_id, cluster = _task(strategy)
    if task_type is not None:
        role = "chief" if is_chief(strategy) else "not chief"
        lines.append(f"  this worker: {task_type} {task_id} ({role}) of {num_workers(strategy)}")
        for kind_name in ("chief", "worker"):
            for index, address in enumerate(cluster.get(kind_name, [])):
                lines.append(f"  {kind_name} {index}: {address}")
    return "\n".join(lines)


def shard_by_data(dataset):
    """Let every worker keep its own slices of each global batch.

    TensorFlow's default (AUTO) tries to shard by input file first; the pipeline reads
    no files through tf.data, so say DATA outright (and skip the warning).

    Args:
        dataset: tf.data.Dataset of global batches.

    Returns:
        the dataset, with the sharding option set.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def shared_seed(strategy, seed=None):
    """A seed every worker agrees on: ``seed`` if given, else one the chief draws.

    Every worker must visit the global batches in the same order, or the slices a worker
    keeps would come from other batches than its peers'. Call it on every worker.

    Returns:
        int.
    """
    if seed is not None:
        return int(seed)
    drawn = int.from_bytes(os.urandom(4), "little") & 0x7FFFFFFF
    if num_workers(strategy) == 1:
        return drawn
    own = drawn if is_chief(strategy) else 0

    def contribute():
        context = tf.distribute.get_replica_context()
        first_replica = tf.equal(context.replica_id_in_sync_group, 0)
        value = tf.where(first_replica, tf.constant(own, tf.int64), tf.constant(0, tf.int64))
        return context.all_reduce(tf.distribute.ReduceOp.SUM, value)

    result = strategy.run(contribute)
    return int(strategy.experimental_local_results(result)[0].numpy())


def barrier(strategy):
    """Wait until every worker reaches this point (e.g. until the chief has written a snapshot)."""
    if num_workers(strategy) > 1:
        shared_seed(strategy, None)
