"""The configuration of a run: one object, built once from the command line or in code, stored as JSON.

    from keras_retinanet.config import RetinaNetConfig
    config = RetinaNetConfig.build({"model.backbone": "resnet101", "training.epochs": 10})
    config.to_json()
"""

from .anchors_ini import AnchorConfig, read_anchor_config
from .defaults import CONFIG_PRESETS, DEFAULTS
from .spec import DetectorSpec
from .schema import (
    DATASET_TYPES,
    DataConfig,
    DatasetConfig,
    EvaluationConfig,
    ModelConfig,
    RetinaNetConfig,
    TrainingConfig,
)

__all__ = [
    "AnchorConfig",
    "CONFIG_PRESETS",
    "DATASET_TYPES",
    "DEFAULTS",
    "DataConfig",
    "DatasetConfig",
    "DetectorSpec",
    "EvaluationConfig",
    "ModelConfig",
    "RetinaNetConfig",
    "TrainingConfig",
    "read_anchor_config",
]
