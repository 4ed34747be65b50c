"""Readers from the configuration: the reader of a :class:`DatasetConfig` for a subset, sized for a backbone."""

from typing import Optional

from ..config import DatasetConfig, RetinaNetConfig
from ..config.defaults import DATASET_SETS
from .coco import CocoGenerator
from .csv_generator import CSVGenerator
from .demo import ensure_demo_dataset
from .kitti import KittiGenerator
from .open_images import OpenImagesGenerator
from .pascal_voc import PascalVocGenerator

SUBSETS = ("train", "val", "eval")


def set_name(dataset: DatasetConfig, subset: str) -> str:
    """The set a subset reads: the one the configuration names, else the format's default (DATASET_SETS)."""
    named = {"train": dataset.train_set, "val": dataset.val_set, "eval": dataset.eval_set}[subset]
    return named or DATASET_SETS[dataset.type][subset]


def create_generator(dataset: DatasetConfig, subset: str, **kwargs):
    """The reader of a dataset for one subset.

    Args:
        dataset: where the data is.
        subset: 'train', 'val' (training's validation set) or 'eval' (the set other commands read).
        **kwargs: passed to the generator (batch size, image sides, augmentation, ...).

    Returns:
        a :class:`keras_retinanet.readers.generator.Generator`, or None when the dataset has
        no such subset (a CSV dataset without validation annotations).
    """
    if subset not in SUBSETS:
        raise ValueError(f"unknown subset '{subset}'; expected one of {', '.join(SUBSETS)}")
    kind = dataset.type
    if kind == "csv":
        if subset == "val":
            return CSVGenerator(dataset.val_annotations, dataset.classes, **kwargs) if dataset.val_annotations else None
        return CSVGenerator(dataset.annotations, dataset.classes, **kwargs)
    if kind == "demo":
        paths = ensure_demo_dataset(dataset)
        return CSVGenerator(paths[set_name(dataset, subset)], paths["classes"], **kwargs)
    name = set_name(dataset, subset)
    if kind == "coco":
        return CocoGenerator(dataset.path, name, **kwargs)
    if kind == "pascal":
        return PascalVocGenerator(dataset.path, name, image_extension=dataset.image_extension, **kwargs)
    if kind == "oid":
        return OpenImagesGenerator(
            dataset.path,
            subset=name,
            version=dataset.version,
            labels_filter=list(dataset.labels_filter) if dataset.labels_filter else None,
            annotation_cache_dir=dataset.annotation_cache_dir,
            parent_label=dataset.parent_label,
            **kwargs,
        )
    return KittiGenerator(dataset.path, subset=name, **kwargs)


def configured_generator(config: RetinaNetConfig, backbone, subset: str = "eval", **kwargs) -> Optional[object]:
    """The reader of a subset, sized and preprocessed for ``backbone`` as the configuration says, in file order.

    Args:
        config: its ``data`` gives the dataset and image sides, its ``model`` the anchors.
        backbone: the :class:`keras_retinanet.models.Backbone` whose preprocessing and feature shapes apply.
        subset: 'train', 'val' (training's validation set) or 'eval' (the set other commands read).
        **kwargs: further generator options, over these (batch size, shuffling, augmentation, seed).
    """
    options = dict(
        image_min_side=config.data.image_min_side,
        image_max_side=config.data.image_max_side,
        no_resize=config.data.no_resize,
        anchor_params=config.model.anchor_parameters,
        pyramid_levels=config.model.pyramid_levels,
        shuffle_groups=False,
        preprocess_image=backbone.preprocess_image,
        compute_shapes=backbone.feature_shapes,
    )
    options.update(kwargs)
    return create_generator(config.data.dataset, subset, **options)
