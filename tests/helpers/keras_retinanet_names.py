"""keras-retinanet 1.0.0's ``keras_retinanet.utils``: its modules and the names each defined or imported for use.

Read from keras-retinanet 1.0.0's source (``keras_retinanet/utils/*.py``, ``compute_overlap.pyx``). The
leading-underscore names are there because scripts written for keras-retinanet imported them.
"""

KERAS_RETINANET_UTILS = {
    "anchors": {
        "AnchorParameters", "anchor_targets_bbox", "anchors_for_shape", "bbox_transform", "compute_gt_annotations",
        "compute_overlap", "generate_anchors", "guess_shapes", "layer_shapes", "make_shapes_callback", "shift",
    },
    "coco_eval": {"evaluate_coco"},
    "colors": {"colors", "label_color"},
    "compute_overlap": {"compute_overlap"},
    "config": {"parse_anchor_parameters", "parse_pyramid_levels", "read_config_file"},
    "eval": {"_compute_ap", "_get_annotations", "_get_detections", "evaluate"},
    "gpu": {"setup_gpu"},
    "image": {
        "TransformParameters", "VisualEffect", "_check_range", "_clip", "_uniform", "adjust_brightness",
        "adjust_contrast", "adjust_hue", "adjust_saturation", "adjust_transform_for_image", "apply_transform",
        "compute_resize_scale", "preprocess_image", "random_visual_effect_generator", "read_image_bgr", "resize_image",
    },
    "model": {"freeze"},
    "tf_version": {
        "BLACKLISTED_TF_VERSIONS", "MINIMUM_TF_VERSION", "assert_tf_version", "check_tf_version", "tf_version",
        "tf_version_ok",
    },
    "transform": {
        "DEFAULT_PRNG", "_random_vector", "change_transform_origin", "colvec", "random_flip", "random_rotation",
        "random_scaling", "random_shear", "random_transform", "random_transform_generator", "random_translation",
        "rotation", "scaling", "shear", "transform_aabb", "translation",
    },
    "visualization": {"draw_annotations", "draw_box", "draw_boxes", "draw_caption", "draw_detections"},
}

# keras-retinanet names this package does not provide: layer_shapes / make_shapes_callback walked a Keras 2
# model's inbound nodes (Keras 3 has no such public graph; ``backbone.retinanet`` gives the shapes), _check_range,
# _clip and _uniform were private helpers whose signatures differ here, and the ``colors`` list is ``COLORS``.
NOT_PROVIDED = {
    "anchors": {"layer_shapes", "make_shapes_callback"},
    "colors": {"colors"},
    "image": {"_check_range", "_clip", "_uniform"},
}

# Names that stand in for a keras-retinanet name under another spelling: utils.colors' ``COLORS`` (a tuple of
# tuples) is keras-retinanet's ``colors`` list.
STAND_INS = {"colors": {"COLORS"}}


def allowed_names(module):
    """What may be imported from ``keras_retinanet.utils.<module>``: keras-retinanet's names and their stand-ins."""
    return KERAS_RETINANET_UTILS[module] | STAND_INS.get(module, set())


# keras-retinanet 1.0.0's ``keras_retinanet.preprocessing`` modules and the reader names users import from each
# (read from its source, ``keras_retinanet/preprocessing/*.py``).
KERAS_RETINANET_PREPROCESSING = {
    "generator": {"Generator"},
    "csv_generator": {"CSVGenerator"},
    "coco": {"CocoGenerator"},
    "pascal_voc": {"PascalVocGenerator", "voc_classes"},
    "open_images": {"OpenImagesGenerator", "get_labels"},
    "kitti": {"KittiGenerator", "kitti_classes"},
}
