"""Every default of the package, in one table, and the named presets.

The values are keras-retinanet 1.0.0's. Function signatures that keras-retinanet
users call directly (``resize_image``, ``Generator``) take their defaults from here,
and so do the configuration dataclasses of :mod:`keras_retinanet.config.schema`.
"""

# Images: the smaller side is resized to IMAGE_MIN_SIDE unless the larger would pass IMAGE_MAX_SIDE.
IMAGE_MIN_SIDE = 800
IMAGE_MAX_SIDE = 1333

# The anchors' own defaults are defined where they are used (anchors sits below config) and listed here:
# the box coding divides the corner offsets (in anchor widths/heights) by BOX_CODING_STD; anchor matching makes an
# IoU at or above POSITIVE_OVERLAP a positive, below NEGATIVE_OVERLAP a negative; the default anchors are
# AnchorParameters.default (anchors.generation).
from ..anchors.box_coding import BOX_CODING_MEAN, BOX_CODING_STD  # noqa: E402,F401
from ..anchors.matching import NEGATIVE_OVERLAP, POSITIVE_OVERLAP  # noqa: E402,F401

# Numeric precisions a model can run in ('mixed': bfloat16 on CPU/TPU, float16 on GPU; 'auto': a 16-bit path only
# where the hardware runs it fast and the detections are kept, see inference/auto_precision.py).
PRECISIONS = ("float32", "mixed", "mixed_bfloat16", "mixed_float16", "auto")

# training.imagenet_weights: None is the backbone's own ImageNet weights (keras-retinanet's default, fetched by
# name through keras_retinanet.hub); NO_WEIGHTS is random initial weights (--no-weights).
NO_WEIGHTS = "none"
# When set, replaces that default for runs that name no weights: a path, weights name or URL, or 'none'
# (e.g. a machine without internet access, or a test suite that must not download).
IMAGENET_WEIGHTS_ENV = "KERAS_RETINANET_IMAGENET_WEIGHTS"
# training.imagenet_weights asking for the default on purpose: keras-retinanet's bare --imagenet-weights switch
# (keras.applications' weights='imagenet'). It wins over a preset's choice; IMAGENET_WEIGHTS_ENV replaces it as it
# replaces the default.
BACKBONE_IMAGENET_WEIGHTS = "imagenet"

# Where runs leave what they write unless told otherwise, relative to the working directory: keras-retinanet's
# snapshot folder (its --snapshot-path default). retinanet-train's run folders are RUNS_FOLDER/{backbone}_{dataset}
# (_2, _3, ...), retinanet-evaluate's records RUNS_FOLDER/evaluate/{model}_{dataset}.
RUNS_FOLDER = "snapshots"

# The choices of the training recipe's settings (see RECIPES): the subnets' normalisation, the box loss, the
# optimizer, the learning-rate schedule, and which snapshots a run keeps.
HEAD_NORMS = ("none", "group")
BOX_LOSSES = ("smooth_l1", "giou")
OPTIMIZERS = ("adam", "adamw")
LR_SCHEDULES = ("plateau", "cosine")
KEEP_SNAPSHOTS = ("all", "best", "last")

DEFAULTS = {
    "model": {
        "backbone": "resnet50",
        "pyramid_feature_size": 256,
        "classification_feature_size": 256,
        "regression_feature_size": 256,
        "freeze_backbone": False,
        "trainable_bn": False,
        # 'group': GroupNorm (32 groups) after each hidden convolution of both subnets; 'none': keras-retinanet's.
        "head_norm": "none",
        "anchors": None,  # keras-retinanet's anchors (AnchorParameters.default, levels P3-P7)
        "nms": True,
        "class_specific_filter": True,
        "nms_threshold": 0.5,
        "score_threshold": 0.05,
        "max_detections": 300,
        # None: every score above the threshold enters NMS (keras-retinanet's filter); N: each pyramid level's
        # N best only (torchvision's 1,000), bounded work that drops objects from crowded images.
        "max_candidates_per_level": None,
        # 'hard': keras-retinanet's NMS; 'soft': Gaussian Soft-NMS, sigma as TensorFlow's (exp(-IoU^2 / 2 sigma)).
        "nms_method": "hard",
        "soft_nms_sigma": 0.5,
    },
    "data": {
        "dataset": None,
        "image_min_side": IMAGE_MIN_SIDE,
        "image_max_side": IMAGE_MAX_SIDE,
        "no_resize": False,
        "batch_size": 1,
        "group_method": "ratio",
        "random_transform": False,
        # Top-down imagery (aerial, microscopy, documents): vertical flips and 90-degree rotations as well.
        "top_down": False,
        # (smallest, largest) factor of a random resize of each training image, then cropped or padded back to its
        # size (None: none).
        "scale_jitter": None,
        "skip_bad_images": False,
        "workers": 1,
        "max_queue_size": 10,
        # Tiled training: random crops of this (height, width) at native resolution (None: whole images), boxes
        # keeping less than tile_min_visibility of their area dropped, a crop around a box with tile_object_chance.
        "tile": None,
        "tile_min_visibility": 0.5,
        "tile_object_chance": 0.5,
    },
    "training": {
        # The named training recipe the other settings start from (RECIPES); keras-retinanet's is the default.
        "recipe": "keras-retinanet",
        "epochs": 50,
        "steps": 10000,  # None: one pass over the training set per epoch
        "lr": 1e-5,
        "optimizer_clipnorm": 0.001,
        "optimizer": "adam",  # 'adamw': decoupled weight decay (weight_decay), norms and biases excluded
        "weight_decay": 0.05,  # with optimizer 'adamw'
        "box_loss": "smooth_l1",  # 'giou': 1 - GIoU of the decoded boxes
        # 'plateau': keras-retinanet's (reduce_lr_*); 'cosine': linear warm-up over warmup_steps, then cosine decay
        # to lr * COSINE_FINAL_FRACTION at the last step
        "lr_schedule": "plateau",
        "warmup_steps": 0,
        "reduce_lr_patience": 2,
        "reduce_lr_factor": 0.1,
        # Decay of an exponential moving average of the weights, which evaluation and snapshots use (None: off); its
        # decay ramps up as decay * (1 - exp(-step / ema_warmup_steps)), as ultralytics' does.
        "ema": None,
        "ema_warmup_steps": 2000,
        "initial_epoch": 0,
        "seed": None,  # None: drawn at start and stored in the snapshots
        "deterministic": False,
        "mixed_precision": False,
        "strategy": "auto",
        "snapshot": None,
        "imagenet_weights": None,  # the backbone's ImageNet weights; NO_WEIGHTS: random
        "weights": None,
        "unsafe_load": False,
        "snapshot_path": None,  # None: the run folder (keras-retinanet's was './snapshots' itself)
        "run_dir": None,  # None: the first free one of snapshots/{backbone}_{dataset}, ..._2, ... (RUNS_FOLDER)
        "snapshots": True,
        # Which epochs' snapshots stay: 'all' (keras-retinanet's), 'best' (the best and the last), 'last'.
        "keep_snapshots": "all",
        "save_keras": False,
        "tensorboard_dir": "",
        "tensorboard_freq": "epoch",  # TensorBoard's update_freq: 'epoch', 'batch' or every N batches
        "evaluation": True,
        "compute_val_loss": False,
        "weighted_average": False,
        # Fit the anchors to the training set before training when they cover fewer of its annotations than
        # auto_anchors_threshold (IoU >= 0.5); off: keras-retinanet's behaviour (a warning only).
        "auto_anchors": False,
        "auto_anchors_threshold": 0.95,
    },
    "evaluation": {
        "score_threshold": 0.05,
        "iou_threshold": 0.5,
        "max_detections": 100,
        "save_path": None,
        "coco_metrics": False,
        "weighted_average": False,
        "precision": "float32",
    },
}

# The cosine schedule ends at this fraction of the learning rate.
COSINE_FINAL_FRACTION = 0.01

# Named training recipes (retinanet-train --recipe): settings that differ from DEFAULTS, by section. A preset's and
# the user's settings win over the recipe's.
RECIPES = {
    "keras-retinanet": {},
    # Today's RetinaNet practice (torchvision's retinanet_resnet50_fpn_v2 recipe; He et al., "Rethinking ImageNet
    # Pre-training"): GroupNorm heads, GIoU, AdamW, warm-up and cosine decay, an average of the weights, and a
    # gradient clip that only stops explosions (keras-retinanet's 0.001 clips nearly every step). From random weights
    # the backbone's BatchNorm trains too (see engine.run_setup's batch-norm policy). Scale jitter and the top-down
    # augmentation are options of their own: they pay off over long schedules and on their kind of imagery.
    "modern": {
        "model": {"head_norm": "group"},
        "training": {
            "optimizer": "adamw",
            "box_loss": "giou",
            "lr_schedule": "cosine",
            "warmup_steps": 100,
            "lr": 1e-4,
            "optimizer_clipnorm": 10.0,
            "ema": 0.9998,
            "ema_warmup_steps": 200,
        },
    },
}

# The settings a resumed run takes from its snapshot (its training state records them) unless given again: those
# of the recipe that the model's compile and the data it is fed depend on. The head norm is the spec's.
RECIPE_SETTINGS = ("training.recipe", "training.optimizer", "training.weight_decay", "training.box_loss",
                   "training.lr_schedule", "training.warmup_steps", "training.ema", "training.ema_warmup_steps",
                   "data.top_down", "data.scale_jitter")

# Named configuration presets (RetinaNetConfig.build(preset=...)): settings that differ from DEFAULTS, by section.
# Not hub.MODEL_PRESETS, which are published detectors by name.
CONFIG_PRESETS = {
    # The built-in demo dataset (160 px synthetic shapes): a small MobileNet that trains on a CPU in minutes.
    "demo": {
        "model": {
            "backbone": "mobilenet128_0.5",
            "pyramid_feature_size": 64,
            "classification_feature_size": 64,
            "regression_feature_size": 64,
            "trainable_bn": True,
        },
        "data": {"image_min_side": 160, "image_max_side": 160, "batch_size": 4},
        # trained from scratch (hence trainable BatchNorm), so the demo never downloads; keras-retinanet's recipe at
        # 1e-3 (the modern recipe took longer per step and to reach mAP 0.95 here: benchmarks/results/recipe.json's
        # demo_goal); the best and the last snapshot stay, not one per epoch
        "training": {"epochs": 20, "steps": None, "lr": 1e-3, "imagenet_weights": NO_WEIGHTS,
                     "keep_snapshots": "best"},
    },
}

# The sets each dataset format reads when the command line names none: training's, its validation's, and
# the one evaluation, prediction and calibration read. Pascal VOC's are keras-retinanet 1.0.0's (train/val, test).
DATASET_SETS = {
    "coco": {"train": "train2017", "val": "val2017", "eval": "val2017"},
    "pascal": {"train": "train", "val": "val", "eval": "test"},
    "oid": {"train": "train", "val": "validation", "eval": "validation"},
    "kitti": {"train": "train", "val": "val", "eval": "val"},
    "demo": {"train": "train", "val": "val", "eval": "val"},
}

# What `retinanet-train demo` generates: small images and objects the default anchors cover.
DEMO_DATASET = {
    "num_train": 400,
    "num_val": 100,
    "image_size": 160,
    "min_object_size": 32,
    "max_object_size": 96,
    "min_objects": 1,
    "max_objects": 4,
    "seed": 0,
}
