"""Opening an exported detector (SavedModel folder, ``.tflite``, ``.onnx``) with its stored spec and the user's settings.

An export is what gets deployed: evaluating and predicting with it measures exactly that graph, in its runtime.
What is fixed in the graph cannot be overridden: the precision it was exported in, and for a raw-input export
the image sides (it resizes inside). A preprocessed-input export is resized by the detector as a Keras model is,
so its image sides may be overridden (and a note says so).
"""

import logging
import os
from typing import List, Optional, Sequence, Tuple

from ..config import RetinaNetConfig
from ..config.spec import DetectorSpec, check_class_count, reconcile
from ..errors import ModelError
from ..export.metadata import read_exported_metadata
from .auto_precision import Choice
from .refilter import OVERRIDABLE_FILTER_KEYS
from .runtimes import exported_format, open_runner

logger = logging.getLogger(__name__)


def is_exported(path) -> bool:
    """Whether ``path`` is an existing SavedModel folder, ``.tflite`` or ``.onnx`` file."""
    path = os.fspath(path)
    return os.path.exists(path) and exported_format(path) is not None


def _checked_options(source: str, export_format: str, convert: Optional[bool], precision: str) -> None:
    """Refuse what an exported graph cannot do.

    Raises:
        ModelError: --convert-model, or a precision other than float32/auto.
    """
    if convert is True:
        raise ModelError(f"{source} is an exported inference model ({export_format}); drop --convert-model")
    if precision == "auto":
        # Logged like any other 'auto' choice: the graph's types were fixed when it was exported.
        reason = f"a {export_format} export runs in the precision it was exported in"
        logger.info(Choice("float32", reason).describe())
    elif precision != "float32":
        raise ModelError(
            f"--precision {precision} applies to Keras models; {source} ({export_format}) runs as it was exported "
            "(export a float16 or int8 .tflite for a smaller model)"
        )


def open_exported_model(
    path: str,
    config: RetinaNetConfig,
    class_names: Optional[Sequence[str]] = None,
    class_source: str = "class_names",
    convert: Optional[bool] = None,
    precision: str = "float32",
    threads: Optional[int] = None,
) -> Tuple[object, DetectorSpec, RetinaNetConfig, List[str]]:
    """An exported model's runner (see :mod:`.runtimes`), its spec and the configuration reconciled with it.

    Args:
        path: a SavedModel folder, ``.tflite`` or ``.onnx`` file written by ``retinanet-convert-model``.
        config: the user's settings (only those given count, as for a model file with a spec).
        class_names: names in label order or None; their number must match the model's.
        class_source: how to call ``class_names`` in messages.
        convert: True (--convert-model) is refused: an export is an inference model.
        precision: 'float32' or 'auto'; others are refused.
        threads: runtime threads (TFLite, ONNX Runtime); default: the cores this process may use.

    Returns:
        (runner, spec, reconciled configuration, notes about overridden settings).

    Raises:
        ModelError: no stored spec, an option the export cannot follow, a contradicting setting, a bad file.
    """
    source = os.fspath(path)
    export_format = exported_format(source)
    _checked_options(source, export_format, convert, precision)
    metadata = read_exported_metadata(source)
    if metadata is None:
        raise ModelError(
            f"{source} holds no detector spec (class names, image sides); export it again with "
            "retinanet-convert-model from a model file of this package, or from one with --backbone and --classes"
        )
    spec = DetectorSpec.from_dict(metadata)
    raw_input = metadata.get("input") == "raw"
    config, notes = reconcile(config, spec, source)
    sides = (config.data.image_min_side, config.data.image_max_side, not config.data.no_resize)
    if raw_input and sides != (spec.image_min_side, spec.image_max_side, spec.resize):
        raise ModelError(
            f"{source} resizes images inside its graph (to {spec.image_min_side}/{spec.image_max_side} px); "
            "its image sides cannot be overridden: export it again with other sides, or leave them out"
        )
    fixed = [
        key for key in OVERRIDABLE_FILTER_KEYS
        if config.given(f"model.{key}") and getattr(config.model, key) != (spec.filter or {}).get(key)
    ]  # fmt: skip
    if fixed:
        flags = ", ".join(f"--{key.replace('_', '-')} {getattr(config.model, key)}" for key in fixed)
        kept = ", ".join(f"{key} {(spec.filter or {}).get(key)}" for key in fixed)
        raise ModelError(
            f"{source} has its detection filter in its graph ({kept}); {flags} cannot change it: export the "
            "model again with retinanet-convert-model and these options"
        )
    if not raw_input:
        spec = spec.replace(image_min_side=sides[0], image_max_side=sides[1], resize=sides[2])
    if class_names is not None:
        check_class_count(spec, class_names, class_source, source)
        if tuple(str(name) for name in class_names) != spec.class_names:
            named = ", ".join(spec.class_names[:5])
            notes.append(f"naming the classes as {source} does ({named}), not as {class_source}")
    runner = open_runner(source, metadata, threads=threads)
    return runner, spec, config, notes
