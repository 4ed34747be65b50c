"""Moved to :mod:`keras_retinanet.checkpoint` (files, optimizer, training_state); re-exported for old imports."""

from ..checkpoint.files import (  # noqa: F401
    CODE_LAYER_CLASSES,
    MODEL_EXTENSIONS,
    UNSAFE_FLAG,
    check_no_code_layers,
    layer_classes,
    load_model_file,
    model_file_kind,
    read_model_config,
)
from ..checkpoint.optimizer import rebind_optimizer  # noqa: F401
from ..checkpoint.training_state import (  # noqa: F401
    TRAINING_STATE_KEY,
    read_h5_optimizer_weights,
    read_training_state,
    write_training_state,
)
