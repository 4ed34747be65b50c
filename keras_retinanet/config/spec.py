"""The detector spec: what a model file says about how to use it.

Stored in every model this package builds and saves (training snapshots and inference
models, ``.keras`` and ``.h5``), so that a model can be used on its own: which backbone
(and so which preprocessing), the class names, the image sides it was trained at, its
anchors and head widths, and, for an inference model, its filter settings.
"""

import dataclasses
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .. import __version__
from ..anchors.generation import DEFAULT_PYRAMID_LEVELS, AnchorParameters
from ..errors import ModelError
from .anchors_ini import AnchorConfig
from .schema import RetinaNetConfig

FILTER_KEYS = (
    "nms", "class_specific_filter", "nms_threshold", "score_threshold", "max_detections", "max_candidates_per_level",
    "nms_method", "soft_nms_sigma",
)
# The percentiles (and the largest) of the training boxes' longer side a spec records as ``object_sizes``.
OBJECT_SIZE_KEYS = ("p50", "p90", "p95", "p99", "max")
# Filter settings that specs written before them lack, with the value such a file's filter has.
OPTIONAL_FILTER_KEYS = {"max_candidates_per_level": None, "nms_method": "hard", "soft_nms_sigma": 0.5}


@dataclasses.dataclass(frozen=True)
class DetectorSpec:
    """How to use a RetinaNet model.

    Attributes:
        backbone: backbone name (e.g. 'resnet50').
        preprocessing: the backbone's preprocessing mode ('caffe', 'tf' or 'none').
        class_names: the class names in label order (label i is ``class_names[i]``).
        image_min_side, image_max_side: the image sides the model was trained at.
        resize: whether images were resized (False: trained at their own size).
        tile: (height, width) of the crops the model was trained on (``retinanet-train --tile``), in the training
            images' own pixels, or None for whole images. Prediction does not tile by itself: a model trained on
            crops at their own scale (the default) sees a whole image at that scale too; ``tile=spec.tile``
            (``--tile``) bounds the memory of large images.
        anchors: {'sizes', 'strides', 'ratios', 'scales'} of the anchors.
        pyramid_levels: the pyramid levels the heads run on.
        pyramid_feature_size, classification_feature_size, regression_feature_size: channel widths.
        head_norm: the subnets' normalisation, 'none' (keras-retinanet's) or 'group' (GroupNorm); files written
            before it have 'none'.
        object_sizes: {'p50', 'p90', 'p95', 'p99', 'max'} of the longer side of the training boxes, in the pixels the
            network saw them (after the training resize; with tiled training, in the crops' pixels), written by
            ``retinanet-train``; None for files without it (older files, keras-retinanet's, models built in Python).
        filter: an inference model's filter settings ({'nms', 'class_specific_filter', 'nms_threshold',
            'score_threshold', 'max_detections', 'max_candidates_per_level', 'nms_method', 'soft_nms_sigma'}), or
            None for a training model.
        version: the keras_retinanet version that wrote it.
    """

    backbone: str
    preprocessing: str
    class_names: Tuple[str, ...]
    image_min_side: int
    image_max_side: int
    resize: bool = True
    tile: Optional[Tuple[int, int]] = None
    anchors: Optional[Mapping[str, Any]] = None
    pyramid_levels: Tuple[int, ...] = DEFAULT_PYRAMID_LEVELS
    pyramid_feature_size: int = 256
    classification_feature_size: int = 256
    regression_feature_size: int = 256
    head_norm: str = "none"
    object_sizes: Optional[Dict[str, float]] = None
    filter: Optional[Mapping[str, Any]] = None
    version: str = __version__

    def __post_init__(self):
        object.__setattr__(self, "class_names", tuple(str(name) for name in self.class_names))
        object.__setattr__(self, "pyramid_levels", tuple(int(level) for level in self.pyramid_levels))
        if self.tile is not None:
            object.__setattr__(self, "tile", tuple(int(side) for side in self.tile))
        anchors = self.anchors if self.anchors is not None else AnchorParameters.default.get_config()
        object.__setattr__(self, "anchors", AnchorParameters.from_config(dict(anchors)).get_config())
        if self.object_sizes is not None:
            sizes = {key: float(value) for key, value in dict(self.object_sizes).items()}
            missing = [key for key in OBJECT_SIZE_KEYS if key not in sizes]
            if missing:
                raise ValueError(f"detector spec: object sizes lack {', '.join(missing)}")
            object.__setattr__(self, "object_sizes", {key: sizes[key] for key in OBJECT_SIZE_KEYS})
        if self.filter is not None:
            settings = {**OPTIONAL_FILTER_KEYS, **self.filter}
            missing = [key for key in FILTER_KEYS if key not in settings]
            if missing:
                raise ValueError(f"detector spec: filter settings lack {', '.join(missing)}")
            object.__setattr__(self, "filter", {key: settings[key] for key in FILTER_KEYS})

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def anchor_parameters(self) -> AnchorParameters:
        return AnchorParameters.from_config(dict(self.anchors))

    @property
    def is_inference(self) -> bool:
        return self.filter is not None

    def name_of(self, label: int) -> str:
        """The class name of a label ('7' for a label the spec does not name)."""
        return self.class_names[label] if 0 <= label < len(self.class_names) else str(label)

    def with_filter(self, **settings) -> "DetectorSpec":
        """The spec of the inference model with these filter settings (see ``models.convert_model``)."""
        settings = {**OPTIONAL_FILTER_KEYS, **settings}
        return dataclasses.replace(self, filter={key: settings[key] for key in FILTER_KEYS})

    def replace(self, **changes) -> "DetectorSpec":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> Dict[str, Any]:
        values = dataclasses.asdict(self)
        values["class_names"] = list(self.class_names)
        values["pyramid_levels"] = list(self.pyramid_levels)
        values["tile"] = list(self.tile) if self.tile is not None else None
        values["anchors"] = dict(self.anchors)
        values["object_sizes"] = dict(self.object_sizes) if self.object_sizes is not None else None
        values["filter"] = dict(self.filter) if self.filter is not None else None
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "DetectorSpec":
        """The inverse of :meth:`to_dict`; settings a newer version added are left out."""
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})

    @classmethod
    def from_config(
        cls,
        config: RetinaNetConfig,
        class_names: Sequence[str],
        preprocessing: str,
        object_sizes: Optional[Dict[str, float]] = None,
    ) -> "DetectorSpec":
        """The spec of the training model a configuration builds, for a dataset's class names (and the training
        boxes' ``object_sizes``, when measured)."""
        model = config.model
        parameters = model.anchor_parameters or AnchorParameters.default
        return cls(
            backbone=model.backbone,
            preprocessing=preprocessing,
            class_names=tuple(class_names),
            image_min_side=config.data.image_min_side,
            image_max_side=config.data.image_max_side,
            resize=not config.data.no_resize,
            tile=config.data.tile,
            anchors=parameters.get_config(),
            pyramid_levels=tuple(model.pyramid_levels or DEFAULT_PYRAMID_LEVELS),
            pyramid_feature_size=model.pyramid_feature_size,
            classification_feature_size=model.classification_feature_size,
            regression_feature_size=model.regression_feature_size,
            head_norm=model.head_norm,
            object_sizes=object_sizes,
        )


def _flag(key: str) -> str:
    """The command-line flag of a setting: 'data.image_min_side' -> '--image-min-side'."""
    return "--" + key.split(".", 1)[1].replace("_", "-")


def reconcile(config: RetinaNetConfig, spec: DetectorSpec, source: str) -> Tuple[RetinaNetConfig, List[str]]:
    """The configuration to use a model with: what its spec says, where the user said nothing.

    A setting the user gave that contradicts the model (another backbone, other anchors)
    is an error; one that legitimately overrides it (image sides, thresholds) is kept,
    and a note says so.

    Args:
        config: the command's configuration.
        spec: the model's spec.
        source: the model file, for messages.

    Returns:
        (the configuration with the spec's settings, notes to print about overrides).

    Raises:
        ModelError: a setting contradicts the model.
    """
    model = config.model
    if config.given("model.backbone") and model.backbone != spec.backbone:
        raise ModelError(
            f"--backbone {model.backbone} contradicts {source}, which holds a {spec.backbone} RetinaNet; "
            "leave out --backbone (the file says which)"
        )
    if config.given("model.head_norm") and model.head_norm != spec.head_norm:
        raise ModelError(
            f"--head-norm {model.head_norm} contradicts {source}, whose subnets have head norm '{spec.head_norm}'; "
            "leave out --head-norm (the file says which)"
        )
    if config.given("model.anchors"):
        parameters = model.anchor_parameters or AnchorParameters.default
        levels = tuple(model.pyramid_levels or DEFAULT_PYRAMID_LEVELS)
        if parameters != spec.anchor_parameters or levels != spec.pyramid_levels:
            raise ModelError(
                f"--config {model.anchors.source}: its anchors ({parameters}, levels {list(levels)}) differ from "
                f"those {source} was trained with ({spec.anchor_parameters}, levels {list(spec.pyramid_levels)}); "
                "leave out --config (the file says which)"
            )
    model_changes = {
        "backbone": spec.backbone,
        "anchors": AnchorConfig(spec.anchor_parameters, spec.pyramid_levels, source=source),
        "pyramid_feature_size": spec.pyramid_feature_size,
        "classification_feature_size": spec.classification_feature_size,
        "regression_feature_size": spec.regression_feature_size,
        "head_norm": spec.head_norm,
    }
    for key, value in (spec.filter or {}).items():
        if not config.given(f"model.{key}"):
            model_changes[key] = value
    notes = []
    data_changes = {}
    for name in ("image_min_side", "image_max_side"):
        trained = getattr(spec, name)
        if not config.given(f"data.{name}"):
            data_changes[name] = trained
        elif getattr(config.data, name) != trained:
            notes.append(f"using {_flag('data.' + name)} {getattr(config.data, name)} ({source} was trained at {trained})")
    if not config.given("data.no_resize"):
        data_changes["no_resize"] = not spec.resize
    # A resumed run goes on cropping as the model was trained; predict and evaluate tile only when asked (--tile).
    if not config.given("data.tile"):
        data_changes["tile"] = spec.tile
    elif spec.tile is not None and tuple(config.data.tile) != spec.tile:
        notes.append(f"using --tile {config.data.tile[0]}x{config.data.tile[1]} ({source} was trained on "
                     f"{spec.tile[0]}x{spec.tile[1]} crops)")  # fmt: skip
    return config.replace(model=model_changes, data=data_changes), notes


def check_class_count(spec: DetectorSpec, class_names: Sequence[str], what: str, source: str) -> None:
    """A list of class names (a classes file, a dataset) must have as many classes as the model.

    Raises:
        ModelError: naming both counts.
    """
    if len(class_names) != spec.num_classes:
        raise ModelError(
            f"{what} has {len(class_names)} classes but {source} detects {spec.num_classes} "
            f"({', '.join(spec.class_names[:5])}{', ...' if spec.num_classes > 5 else ''})"
        )
