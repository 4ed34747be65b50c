"""The configuration of a run: frozen dataclasses built once, passed down, stored as JSON.

A :class:`RetinaNetConfig` has four parts: ``model`` (what is built and how it detects),
``data`` (the dataset and how images are read, augmented and sized), ``training`` and
``evaluation``. Every default comes from :data:`keras_retinanet.config.defaults.DEFAULTS`.
Build one with :meth:`RetinaNetConfig.build` (defaults, then a preset, then the user's
settings); change one with :meth:`RetinaNetConfig.replace`, which returns a new object.
"""

import dataclasses
import json
from typing import Any, Dict, FrozenSet, Mapping, Optional, Tuple, Union

from .anchors_ini import AnchorConfig
from .defaults import BOX_LOSSES, CONFIG_PRESETS, DEFAULTS, HEAD_NORMS, KEEP_SNAPSHOTS, LR_SCHEDULES, OPTIMIZERS, RECIPES
from .tile_settings import check_share, tile_shape

DATASET_TYPES = ("csv", "coco", "pascal", "oid", "kitti", "demo")


def _default(section: str, name: str):
    value = DEFAULTS[section][name]
    return dataclasses.field(default=tuple(value) if isinstance(value, list) else value)


@dataclasses.dataclass(frozen=True)
class DatasetConfig:
    """Where a dataset is and which of its sets a command reads.

    Attributes:
        type: 'csv', 'coco', 'pascal', 'oid', 'kitti' or 'demo'.
        path: the dataset folder (COCO, Pascal VOC, Open Images, KITTI; the demo's data folder, None: the cache).
        annotations, classes, val_annotations: the CSV files of a 'csv' dataset.
        train_set, val_set: the sets training reads (None: the format's default).
        eval_set: the set evaluation, prediction and calibration read (None: the format's default).
        image_extension: Pascal VOC image file extension.
        version, labels_filter, annotation_cache_dir, parent_label: Open Images options.
    """

    type: str
    path: Optional[str] = None
    annotations: Optional[str] = None
    classes: Optional[str] = None
    val_annotations: Optional[str] = None
    train_set: Optional[str] = None
    val_set: Optional[str] = None
    eval_set: Optional[str] = None
    image_extension: str = ".jpg"
    version: str = "v4"
    labels_filter: Optional[Tuple[str, ...]] = None
    annotation_cache_dir: str = "."
    parent_label: Optional[str] = None

    def __post_init__(self):
        if self.type not in DATASET_TYPES:
            raise ValueError(f"unknown dataset type '{self.type}'; expected one of {', '.join(DATASET_TYPES)}")
        if self.labels_filter is not None:
            object.__setattr__(self, "labels_filter", tuple(self.labels_filter))


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The network and its detection settings.

    Attributes:
        backbone: backbone name (see ``keras_retinanet.models.backbone_names``).
        pyramid_feature_size, classification_feature_size, regression_feature_size: channel widths.
        freeze_backbone: do not train the backbone's layers.
        trainable_bn: train the BatchNorm layers of backbones that freeze them (ResNet).
        head_norm: the subnets' normalisation: 'none' (keras-retinanet's) or 'group' (GroupNorm, 32 groups).
        anchors: anchor parameters and pyramid levels (None: keras-retinanet's).
        nms, class_specific_filter, nms_threshold, score_threshold, max_detections, max_candidates_per_level,
            nms_method, soft_nms_sigma: the inference model's filter.
    """

    backbone: str = _default("model", "backbone")
    pyramid_feature_size: int = _default("model", "pyramid_feature_size")
    classification_feature_size: int = _default("model", "classification_feature_size")
    regression_feature_size: int = _default("model", "regression_feature_size")
    freeze_backbone: bool = _default("model", "freeze_backbone")
    trainable_bn: bool = _default("model", "trainable_bn")
    head_norm: str = _default("model", "head_norm")
    anchors: Optional[AnchorConfig] = _default("model", "anchors")
    nms: bool = _default("model", "nms")
    class_specific_filter: bool = _default("model", "class_specific_filter")
    nms_threshold: float = _default("model", "nms_threshold")
    score_threshold: float = _default("model", "score_threshold")
    max_detections: int = _default("model", "max_detections")
    max_candidates_per_level: Optional[int] = _default("model", "max_candidates_per_level")
    nms_method: str = _default("model", "nms_method")
    soft_nms_sigma: float = _default("model", "soft_nms_sigma")

    def __post_init__(self):
        _check_choice("model.head_norm", self.head_norm, HEAD_NORMS)

    @property
    def anchor_parameters(self):
        """The :class:`AnchorParameters` to build with, or None for the default ones."""
        return self.anchors.parameters if self.anchors is not None else None

    @property
    def pyramid_levels(self):
        """The pyramid levels as a list, or None for the default P3-P7."""
        if self.anchors is None or self.anchors.pyramid_levels is None:
            return None
        return list(self.anchors.pyramid_levels)

    @property
    def num_anchors(self):
        """Anchors per position, or None for the default (9)."""
        parameters = self.anchor_parameters
        return parameters.num_anchors() if parameters is not None else None

    def filter_options(self) -> Dict[str, Any]:
        """The keyword arguments of ``models.convert_model`` this configuration sets."""
        return {
            "nms": self.nms,
            "class_specific_filter": self.class_specific_filter,
            "anchor_params": self.anchor_parameters,
            "pyramid_levels": self.pyramid_levels,
            "nms_threshold": self.nms_threshold,
            "score_threshold": self.score_threshold,
            "max_detections": self.max_detections,
            "max_candidates_per_level": self.max_candidates_per_level,
            "nms_method": self.nms_method,
            "soft_nms_sigma": self.soft_nms_sigma,
        }


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """The dataset, and how its images are sized, augmented and batched.

    Attributes:
        dataset: the :class:`DatasetConfig`, or None for a command that reads none.
        image_min_side, image_max_side: images are resized so the smaller side is ``image_min_side``
            unless the larger would pass ``image_max_side``.
        no_resize: keep the images' own size.
        batch_size: images per batch on each replica.
        group_method: 'none', 'random' or 'ratio' (images of similar aspect ratio batched together).
        random_transform: keras-retinanet's random affine and colour augmentation (else only horizontal flips).
        top_down: vertical flips and 90-degree rotations too (top-down imagery).
        scale_jitter: (smallest, largest) factor of a random resize of each training image, which is then cropped or
            padded back to its size; None: none.
        skip_bad_images: unreadable training images are skipped and listed instead of stopping the run.
        workers: batches prepared in parallel (0: no prefetching).
        max_queue_size: batches prepared ahead of training.
        tile: tiled training: (height, width) of the random crops taken from the training images at their own
            resolution, then resized as the image sides say (an int is a square); None: whole images.
        tile_min_visibility: a box keeping less than this share of its area in a crop is dropped.
        tile_object_chance: the probability of a crop placed around one of the image's boxes.
    """

    dataset: Optional[DatasetConfig] = _default("data", "dataset")
    image_min_side: int = _default("data", "image_min_side")
    image_max_side: int = _default("data", "image_max_side")
    no_resize: bool = _default("data", "no_resize")
    batch_size: int = _default("data", "batch_size")
    group_method: str = _default("data", "group_method")
    random_transform: bool = _default("data", "random_transform")
    top_down: bool = _default("data", "top_down")
    scale_jitter: Optional[Tuple[float, float]] = _default("data", "scale_jitter")
    skip_bad_images: bool = _default("data", "skip_bad_images")
    workers: int = _default("data", "workers")
    max_queue_size: int = _default("data", "max_queue_size")
    tile: Optional[Tuple[int, int]] = _default("data", "tile")
    tile_min_visibility: float = _default("data", "tile_min_visibility")
    tile_object_chance: float = _default("data", "tile_object_chance")

    def __post_init__(self):
        # The rules data.cropping.TileCrop checks its arguments with; an int or a JSON list becomes (height, width).
        check_share(self.tile_min_visibility, "tile_min_visibility")
        check_share(self.tile_object_chance, "tile_object_chance")
        if self.tile is not None:
            object.__setattr__(self, "tile", tile_shape(self.tile if isinstance(self.tile, int) else tuple(self.tile)))
        if self.scale_jitter is not None:
            low, high = (float(value) for value in self.scale_jitter)
            if not 0 < low <= high:
                raise ValueError(f"data.scale_jitter must be (smallest, largest) with 0 < smallest <= largest, got "
                                 f"({low:g}, {high:g})")  # fmt: skip
            object.__setattr__(self, "scale_jitter", (low, high))

    @property
    def dataset_type(self) -> Optional[str]:
        return self.dataset.type if self.dataset is not None else None


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """How ``retinanet-train`` trains, resumes and records (see its ``--help`` for each option; ``recipe`` names the
    :data:`~keras_retinanet.config.defaults.RECIPES` entry the settings started from)."""

    recipe: str = _default("training", "recipe")
    epochs: int = _default("training", "epochs")
    steps: Optional[int] = _default("training", "steps")
    lr: float = _default("training", "lr")
    optimizer_clipnorm: float = _default("training", "optimizer_clipnorm")
    optimizer: str = _default("training", "optimizer")
    weight_decay: float = _default("training", "weight_decay")
    box_loss: str = _default("training", "box_loss")
    lr_schedule: str = _default("training", "lr_schedule")
    warmup_steps: int = _default("training", "warmup_steps")
    reduce_lr_patience: int = _default("training", "reduce_lr_patience")
    reduce_lr_factor: float = _default("training", "reduce_lr_factor")
    ema: Optional[float] = _default("training", "ema")
    ema_warmup_steps: int = _default("training", "ema_warmup_steps")
    initial_epoch: int = _default("training", "initial_epoch")
    seed: Optional[int] = _default("training", "seed")
    deterministic: bool = _default("training", "deterministic")
    mixed_precision: bool = _default("training", "mixed_precision")
    strategy: str = _default("training", "strategy")
    snapshot: Optional[str] = _default("training", "snapshot")
    imagenet_weights: Optional[str] = _default("training", "imagenet_weights")
    weights: Optional[str] = _default("training", "weights")
    unsafe_load: bool = _default("training", "unsafe_load")
    snapshot_path: Optional[str] = _default("training", "snapshot_path")
    run_dir: Optional[str] = _default("training", "run_dir")
    snapshots: bool = _default("training", "snapshots")
    keep_snapshots: str = _default("training", "keep_snapshots")
    save_keras: bool = _default("training", "save_keras")
    tensorboard_dir: str = _default("training", "tensorboard_dir")
    tensorboard_freq: Union[str, int] = _default("training", "tensorboard_freq")
    evaluation: bool = _default("training", "evaluation")
    compute_val_loss: bool = _default("training", "compute_val_loss")
    weighted_average: bool = _default("training", "weighted_average")
    auto_anchors: bool = _default("training", "auto_anchors")
    auto_anchors_threshold: float = _default("training", "auto_anchors_threshold")

    def __post_init__(self):
        _check_choice("training.recipe", self.recipe, tuple(RECIPES))
        _check_choice("training.optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("training.box_loss", self.box_loss, BOX_LOSSES)
        _check_choice("training.lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _check_choice("training.keep_snapshots", self.keep_snapshots, KEEP_SNAPSHOTS)
        if self.ema is not None and not 0.0 < self.ema < 1.0:
            raise ValueError(f"training.ema must lie strictly between 0 and 1 (e.g. 0.9998), got {self.ema}")
        if self.warmup_steps < 0 or self.ema_warmup_steps < 1 or self.weight_decay < 0:
            raise ValueError("training.warmup_steps and training.weight_decay must be >= 0, training.ema_warmup_steps >= 1")


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """How a model is evaluated (``retinanet-evaluate`` and the per-epoch evaluation)."""

    score_threshold: float = _default("evaluation", "score_threshold")
    iou_threshold: float = _default("evaluation", "iou_threshold")
    max_detections: int = _default("evaluation", "max_detections")
    save_path: Optional[str] = _default("evaluation", "save_path")
    coco_metrics: bool = _default("evaluation", "coco_metrics")
    weighted_average: bool = _default("evaluation", "weighted_average")
    precision: str = _default("evaluation", "precision")


_SECTIONS = {
    "model": ModelConfig,
    "data": DataConfig,
    "training": TrainingConfig,
    "evaluation": EvaluationConfig,
}


@dataclasses.dataclass(frozen=True)
class RetinaNetConfig:
    """The whole configuration of a run.

    Attributes:
        model, data, training, evaluation: the four parts.
        preset: the name of the preset it was built on (e.g. 'demo'), or None.
        explicit: the settings the user gave, as 'section.name' (they win over a resumed snapshot's).
    """

    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = dataclasses.field(default_factory=EvaluationConfig)
    preset: Optional[str] = None
    explicit: FrozenSet[str] = frozenset()

    @classmethod
    def build(cls, settings: Optional[Mapping[str, Any]] = None, preset: Optional[str] = None) -> "RetinaNetConfig":
        """Defaults, then the recipe's settings (``settings['training.recipe']``, else the preset's), then the preset's,
        then ``settings``.

        Args:
            settings: {'section.name': value} the user chose, e.g. {'model.backbone': 'resnet101'}.
            preset: a name of :data:`keras_retinanet.config.defaults.CONFIG_PRESETS`, or None.

        Raises:
            ValueError: an unknown preset, section or setting.
        """
        if preset is not None and preset not in CONFIG_PRESETS:
            raise ValueError(f"unknown preset '{preset}'; presets: {', '.join(sorted(CONFIG_PRESETS))}")
        preset_values = CONFIG_PRESETS[preset] if preset else {}
        recipe = dict(settings or {}).get("training.recipe") or preset_values.get("training", {}).get("recipe")
        if recipe is not None and recipe not in RECIPES:
            raise ValueError(f"unknown recipe '{recipe}'; recipes: {', '.join(RECIPES)}")
        values = {section: {} for section in _SECTIONS}
        # defaults < the recipe < the preset < the user's settings
        for layer in (RECIPES[recipe] if recipe else {}, preset_values):
            for section, overrides in layer.items():
                values[section].update(overrides)
        if recipe is not None:
            values["training"]["recipe"] = recipe
        settings = dict(settings or {})
        for key, value in settings.items():
            section, name = _split_key(key)
            values[section][name] = value
        parts = {section: _SECTIONS[section](**fields) for section, fields in values.items()}
        return cls(preset=preset, explicit=frozenset(settings), **parts)

    def replace(self, **sections: Mapping[str, Any]) -> "RetinaNetConfig":
        """A copy with some settings changed, e.g. ``config.replace(training={'seed': 3})``."""
        changes = {}
        for section, fields in sections.items():
            if section not in _SECTIONS:
                raise ValueError(f"unknown configuration section '{section}'; sections: {', '.join(_SECTIONS)}")
            changes[section] = dataclasses.replace(getattr(self, section), **fields)
        return dataclasses.replace(self, **changes)

    def given(self, key: str) -> bool:
        """Whether the user set 'section.name' (rather than a default or the preset)."""
        return key in self.explicit

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON-able values (tuples become lists, anchors their parameters)."""
        result = {section: _plain(dataclasses.asdict(getattr(self, section))) for section in _SECTIONS}
        anchors = self.model.anchors
        result["model"]["anchors"] = anchors.to_dict() if anchors is not None else None
        result["preset"] = self.preset
        result["explicit"] = sorted(self.explicit)
        return result

    def to_json(self, indent: Optional[int] = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "RetinaNetConfig":
        """The inverse of :meth:`to_dict`; settings it does not know are an error (a newer file)."""
        parts = {}
        for section, section_class in _SECTIONS.items():
            fields = dict(values.get(section) or {})
            _check_names(section, section_class, fields)
            if section == "model" and fields.get("anchors") is not None:
                fields["anchors"] = AnchorConfig.from_dict(fields["anchors"])
            if section == "data" and fields.get("dataset") is not None:
                dataset = dict(fields["dataset"])
                _check_names("data.dataset", DatasetConfig, dataset)
                fields["dataset"] = DatasetConfig(**dataset)
            parts[section] = section_class(**fields)
        return cls(preset=values.get("preset"), explicit=frozenset(values.get("explicit") or ()), **parts)

    @classmethod
    def from_json(cls, text: str) -> "RetinaNetConfig":
        return cls.from_dict(json.loads(text))


def _check_choice(key: str, value, choices: Tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{key} must be one of {', '.join(choices)}, got {value!r}")


def _split_key(key: str) -> Tuple[str, str]:
    section, _, name = key.partition(".")
    if section not in _SECTIONS:
        raise ValueError(f"unknown configuration setting '{key}'; sections: {', '.join(_SECTIONS)}")
    _check_names(section, _SECTIONS[section], {name: None})
    return section, name


def _check_names(section: str, section_class, fields: Mapping[str, Any]):
    known = {field.name for field in dataclasses.fields(section_class)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(f"unknown configuration setting(s) {', '.join(f'{section}.{n}' for n in unknown)}")


def _plain(value):
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
