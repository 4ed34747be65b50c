"""keras-retinanet's ``utils.gpu``: :func:`setup_gpu`, which picks the GPU a script trains or predicts on."""

import logging
from typing import Union

import tensorflow as tf

logger = logging.getLogger(__name__)

__all__ = ["setup_gpu"]


def setup_gpu(gpu_id: Union[int, str]) -> None:
    """Show TensorFlow one GPU, with memory growth, or none.

    Call it before anything runs on a device: TensorFlow fixes its visible devices when it starts.

    Args:
        gpu_id: the index among this machine's GPUs (an int or a string such as ``"0"``), or ``"cpu"`` / ``-1``
            to hide every GPU.

    Raises:
        ValueError: ``gpu_id`` is neither ``"cpu"`` nor the index of a GPU of this machine.
    """
    if str(gpu_id).strip().lower() in ("cpu", "-1"):
        tf.config.set_visible_devices([], "GPU")
        return
    try:
        index = int(gpu_id)
    except ValueError:
        raise ValueError(f"setup_gpu: {gpu_id!r} is neither 'cpu' nor a GPU index") from None
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        logger.warning("setup_gpu(%r): this machine has no GPU, running on the CPU", gpu_id)
        return
    if not 0 <= index < len(gpus):
        raise ValueError(f"setup_gpu: there is no GPU {index}; this machine has {len(gpus)} (0..{len(gpus) - 1})")
    try:
        # Memory growth has to be the same on every GPU; without it TensorFlow takes all of the GPU's memory.
        for gpu in gpus:
            tf.config.experimental.set_memory_growth(gpu, True)
        tf.config.set_visible_devices(gpus[index], "GPU")
    except RuntimeError as error:
        # Devices are fixed once TensorFlow has started; keras-retinanet reported it and went on, so does this.
        logger.warning("setup_gpu(%r) came too late: %s", gpu_id, error)
