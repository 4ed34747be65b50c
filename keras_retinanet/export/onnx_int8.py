"""int8 ONNX: ONNX Runtime's static quantization of the float export, calibrated on a dataset's images.

The float graph tf2onnx writes is quantized in ONNX's QDQ form: QuantizeLinear / DequantizeLinear pairs around
the quantized ops, standard ONNX that any runtime reads; ONNX Runtime fuses each pair and its op into an int8
kernel (VNNI or AMX where the CPU has them). Weights are int8 per output channel, in 7 bits ([-64, 64]: see
:data:`REDUCE_WEIGHT_RANGE`), activations uint8 per tensor, their ranges the minimum and maximum seen on the
calibration images. Quantized are the convolutions, residual
additions, max pooling and activations of the backbone, the pyramid and the heads' hidden layers; the heads'
last convolutions, anchors, box decoding, clipping, scores, NMS and a raw input's preprocessing and resizing
stay float32 (:mod:`.float_parts`), as in the int8 TFLite export. Unlike TFLite's, this export can take raw
images: the calibration only touches the op types listed here, outside the raw input's scope.

onnx and onnxruntime are imported inside the functions, as elsewhere in this package.
"""

import os
import tempfile
from typing import Callable, Iterable, List

from .float_parts import float_op_names
from .formats import ExportError

# The op types ONNX Runtime quantizes here; a Relu or Clip right after a quantized op is folded into its range.
QUANTIZED_OP_TYPES = ("Conv", "Add", "MaxPool", "Relu", "Clip")

# Weights in 7 bits (ONNX Runtime's reduce_range: int8 values in [-64, 64]), so that one file computes the same on
# every x86 CPU. On x86 CPUs without VNNI (SSE4.1, AVX2, AVX-512 without VNNI) ONNX Runtime's uint8 x int8 kernels
# multiply with VPMADDUBSW, which adds each pair of products into a saturating int16: with 8-bit weights a pair can
# reach 2 * 255 * 127 = 64770 > 32767 and is clamped. ONNX Runtime's quantization guide names this saturation, and
# reduce_range or uint8 weights as the remedies; quantize_static's docstring advises reduce_range for CPUs without
# VNNI. With 7 bits a pair is at most 2 * 255 * 64 = 32640: no kernel saturates (VNNI, AMX and ARM's never did).
# Measured on an AMD EPYC with AVX2 and no VNNI, ONNX Runtime 1.32 (benchmarks/bench_int8_weights.py,
# results/int8_weights_demo_avx2.json, the trained demo model): with 8-bit weights its int8 kernels found 2229 of
# the 3223 top-100 detections that the same file gives run node by node (optimizations off: each op as its ONNX
# definition, no integer kernel), and 70% of the float32 model's; with 7 bits 88% (the graph itself: 89% with 8-bit
# weights), mAP 0.9894 against float32's 0.9882. uint8 weights keep 8 bits (89%) but ONNX Runtime has no VNNI or AMX
# kernel for uint8 x uint8, and even here they took 1.35x the 7-bit file's time; 7 bits keep the uint8 x int8
# kernels, VNNI and AMX included. The cost is one bit of weight precision: on the tests' random-weight models, whose
# detections crowd, NMS decides a few more of them differently than with 8 bits (tests/test_export.py).
REDUCE_WEIGHT_RANGE = True


def float_onnx_nodes(model_proto) -> List[str]:
    """The names of the nodes of an ONNX graph that stay float32 (see :mod:`.float_parts`)."""
    return float_op_names(node.name for node in model_proto.graph.node)


def quantize_onnx_int8(
    model_proto,
    representative_images: Callable[[], Iterable],
    work_folder: str,
    reduce_range: bool = REDUCE_WEIGHT_RANGE,
    weight_type: str = "int8",
):
    """The int8 (QDQ) form of a float ONNX detector, calibrated on ``representative_images``.

    Args:
        model_proto: the float ``onnx.ModelProto`` (one input: the graph's images or raw image).
        representative_images: a callable returning an iterable of arrays for that input, as
            :func:`.writers.representative_images` gives: (1, H, W, 3) float32 or, raw, (H, W, 3) uint8.
        work_folder: where ONNX Runtime may write its scratch models (a temporary folder is made inside).
        reduce_range: weights in 7 bits (the default, see :data:`REDUCE_WEIGHT_RANGE`) or, False, 8.
        weight_type: 'int8' (the default) or 'uint8' (ONNX Runtime's uint8 x uint8 kernels: they never saturate,
            but have no VNNI or AMX form); benchmarks/bench_int8_weights.py compares them.

    Returns:
        the quantized ``onnx.ModelProto`` (its metadata is not copied: add it afterwards).

    Raises:
        ExportError: no calibration image, or ONNX Runtime's quantizer failed (its first message line).
    """
    import onnx

    try:
        from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType
        from onnxruntime.quantization import quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError:
        raise ExportError("onnx int8 export needs onnxruntime: pip install onnxruntime") from None

    weight_types = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}
    if weight_type not in weight_types:
        raise ValueError(f"weight_type must be one of {sorted(weight_types)}, not {weight_type!r}")
    input_name = model_proto.graph.input[0].name

    class ImageReader(CalibrationDataReader):
        """The calibration images, one feed at a time."""

        def __init__(self):
            self.images = iter(representative_images())
            self.count = 0

        def get_next(self):
            image = next(self.images, None)
            if image is None:
                return None
            self.count += 1
            return {input_name: image}

    reader = ImageReader()
    with tempfile.TemporaryDirectory(prefix=".int8-", dir=work_folder) as scratch:
        float_path = os.path.join(scratch, "float.onnx")
        int8_path = os.path.join(scratch, "int8.onnx")
        prepared_path = os.path.join(scratch, "prepared.onnx")
        onnx.save(model_proto, float_path)
        try:
            # ONNX Runtime's basic graph optimizations (standard ONNX ops out) fold what tf2onnx leaves apart:
            # a depthwise convolution's BatchNorm multiplier and explicit padding. Quantized apart, the convolution's
            # output would take one range for channels that BatchNorm then scales differently.
            quant_pre_process(float_path, prepared_path, skip_symbolic_shape=True)
            quantize_static(
                prepared_path,
                int8_path,
                reader,
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(QUANTIZED_OP_TYPES),
                nodes_to_exclude=float_onnx_nodes(onnx.load(prepared_path)),
                per_channel=True,
                reduce_range=reduce_range,
                activation_type=QuantType.QUInt8,
                weight_type=weight_types[weight_type],
                calibrate_method=CalibrationMethod.MinMax,
            )
        except Exception as error:  # ONNX Runtime raises its own types (and plain ones) for a graph it cannot quantize
            if reader.count == 0:
                raise ExportError("the representative dataset gave no image to calibrate int8 on") from error
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ExportError(f"ONNX Runtime int8 quantization failed: {first}") from error
        return onnx.load(int8_path)
