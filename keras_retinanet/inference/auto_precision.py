"""``--precision auto``: a 16-bit path only where the hardware runs it fast and the model's detections are kept.

The hardware decides which 16-bit path is worth taking (:func:`choose_precision`, a pure function of what the
machine has):

* a GPU of compute capability 7.0 or higher (tensor cores): float16;
* a CPU with AVX512_BF16 or AMX-BF16 (/proc/cpuinfo flags ``avx512_bf16``, ``amx_bf16``), when TensorFlow's
  oneDNN is on (it is what runs bfloat16 convolutions natively): bfloat16;
* anything else: float32 (bfloat16 is emulated there, slower than float32).

The model decides whether it may take it (:func:`model_verdict`): only backbone families whose 16-bit
detections were measured to meet issue 18's bar (see :mod:`.fidelity` and ``benchmarks/bench_fidelity.py``)
do, with the parts they need kept in float32 (:func:`float32_parts_for`: a ResNet's trunk); others stay
float32, and the log line says why.
"""

import dataclasses
import logging
import os
from typing import FrozenSet, Iterable, Optional, Sequence, Tuple

logger = logging.getLogger(__name__)

CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
MIN_FLOAT16_CAPABILITY = (7, 0)
# Backbone families (a backbone name's prefix) whose mixed-precision detections were measured against float32
# (benchmarks/bench_fidelity.py, bfloat16 emulated on a CPU): the parts (models.precision.FLOAT32_PARTS) that must
# stay float32 for the bar to hold, and the measurement. A ResNet's error comes from its trunk's convolutions
# (frozen BatchNorm in float32 alone changes nothing; the FPN and heads in bfloat16 cost 0.5%).
MEASURED_FAMILIES = {
    "mobilenet": ((), "demo model, all in bfloat16: 96.6% of the float32 top-100 found again, mAP 0.9889 -> 0.9889"),
    "resnet": (
        ("backbone", "batchnorm"),
        "ResNet50 at 800 px: 58.0% of the float32 top-100 found again all in bfloat16, 99.5% with the backbone in "
        "float32",
    ),
}
# What a mixed precision asked for keeps in float32 on a backbone not measured: the trunk, as ResNet50 needed.
UNMEASURED_FLOAT32_PARTS = ("backbone", "batchnorm")


@dataclasses.dataclass(frozen=True)
class Choice:
    """What ``auto`` resolved to and why.

    Attributes:
        precision: 'float32', 'mixed_bfloat16' or 'mixed_float16'.
        reason: one sentence, for the log line.
    """

    precision: str
    reason: str

    def describe(self) -> str:
        return f"precision auto: {self.precision} ({self.reason})"


def cpu_flags(path: str = "/proc/cpuinfo") -> FrozenSet[str]:
    """The flags of the first CPU in ``path`` (empty where there is no such file, e.g. macOS, Windows)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            for line in file:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def onednn_enabled() -> bool:
    """Whether TensorFlow runs its CPU kernels through oneDNN (which uses AVX512_BF16 and AMX for bfloat16)."""
    if os.environ.get("TF_ENABLE_ONEDNN_OPTS", "").strip() in ("0", "false", "False"):
        return False
    try:
        from tensorflow.python.util import _pywrap_util_port

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):  # a TensorFlow without the query: oneDNN is its x86 default since 2.9
        return True


def gpu_capabilities() -> Tuple[Tuple[int, int], ...]:
    """The compute capability of every GPU TensorFlow sees, e.g. ((8, 0),); () without GPUs."""
    import tensorflow as tf

    capabilities = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        capability = details.get("compute_capability")
        if capability is not None:
            capabilities.append(tuple(int(part) for part in capability))
    return tuple(capabilities)


def choose_precision(
    flags: Iterable[str], capabilities: Sequence[Tuple[int, int]] = (), onednn: bool = True
) -> Choice:
    """The precision the hardware runs fastest, from what it has (no model considered yet).

    Args:
        flags: the CPU's /proc/cpuinfo flags.
        capabilities: the compute capability (major, minor) of each GPU in use; () for none.
        onednn: whether TensorFlow's oneDNN is on.

    Returns:
        the :class:`Choice`.
    """
    flags = set(flags)
    if capabilities:
        best = max(tuple(capability) for capability in capabilities)
        if best >= MIN_FLOAT16_CAPABILITY:
            return Choice("mixed_float16", f"GPU of compute capability {best[0]}.{best[1]} has float16 tensor cores")
        return Choice("float32", f"GPU of compute capability {best[0]}.{best[1]} has no float16 tensor cores (< 7.0)")
    native = [flag for flag in CPU_BF16_FLAGS if flag in flags]
    if native and onednn:
        return Choice("mixed_bfloat16", f"CPU has {' and '.join(native)}, used by TensorFlow's oneDNN")
    if native:
        return Choice("float32", f"CPU has {' and '.join(native)} but TensorFlow's oneDNN is off (TF_ENABLE_ONEDNN_OPTS)")
    return Choice("float32", "CPU has neither avx512_bf16 nor amx_bf16: bfloat16 would be emulated, slower than float32")


def _family(backbone: Optional[str]) -> Optional[str]:
    for family in MEASURED_FAMILIES:
        if backbone is not None and backbone.startswith(family):
            return family
    return None


def float32_parts_for(backbone: Optional[str]) -> Tuple[str, ...]:
    """The parts a model of ``backbone`` keeps in float32 under a mixed precision, for its detections' sake."""
    family = _family(backbone)
    return MEASURED_FAMILIES[family][0] if family is not None else UNMEASURED_FLOAT32_PARTS


def model_verdict(backbone: Optional[str]) -> Optional[str]:
    """None where a model of ``backbone`` keeps its detections in mixed precision; else why it stays float32."""
    if backbone is None:
        return "a model whose backbone is unknown was not measured in 16-bit"
    if _family(backbone) is None:
        return f"16-bit detections of {backbone} models were not measured against float32 (benchmarks/bench_fidelity.py)"
    return None


def resolve_precision(
    precision: str, backbone: Optional[str] = None, hardware: Optional[Choice] = None
) -> Choice:
    """The precision to run a model of ``backbone`` in: ``precision`` itself unless it is 'auto'.

    For 'auto', the hardware's choice (``hardware``, default: this machine's) unless the model's verdict keeps it
    float32; logs one line saying what was chosen and why.
    """
    if precision != "auto":
        return Choice(precision, "asked for")
    if hardware is None:
        capabilities = gpu_capabilities()
        hardware = choose_precision(cpu_flags(), capabilities, onednn=onednn_enabled() if not capabilities else True)
    choice = hardware
    if hardware.precision != "float32":
        verdict = model_verdict(backbone)
        if verdict is not None:
            choice = Choice("float32", f"{hardware.reason}, but {verdict}")
        elif float32_parts_for(backbone):
            parts = " and ".join(float32_parts_for(backbone))
            choice = Choice(hardware.precision, f"{hardware.reason}; {parts} kept in float32 for the detections")
    logger.info(choice.describe())
    return choice
