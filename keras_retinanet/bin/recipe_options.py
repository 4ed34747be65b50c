"""retinanet-train's recipe options: the named recipe and each of its pieces (head norm, box loss, optimizer, schedule,
weight average, augmentation for top-down imagery and scale jitter) and which snapshots stay.

Each option's ``dest`` is its configuration key (see :mod:`keras_retinanet.bin.common`); ``--recipe`` picks the
settings of :data:`keras_retinanet.config.defaults.RECIPES` that the other options (and the demo preset) override.
"""

import argparse

from ..config.defaults import BOX_LOSSES, HEAD_NORMS, KEEP_SNAPSHOTS, LR_SCHEDULES, OPTIMIZERS, RECIPES
from .arguments import default_of

OFF_WORDS = ("none", "off")


def ema_decay(text):
    """--ema: a decay strictly between 0 and 1, or 'none'/'off'."""
    if text.lower() in OFF_WORDS:
        return None
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a decay between 0 and 1 (e.g. 0.9998) or 'none', not '{text}'")
    return value


def scale_range(text):
    """--scale-jitter: 'MIN,MAX' factors (0 < MIN <= MAX), or 'none'/'off'."""
    if text.lower() in OFF_WORDS:
        return None
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        low = high = None
    if low is None or not 0.0 < low <= high:
        raise argparse.ArgumentTypeError(f"expected MIN,MAX factors with 0 < MIN <= MAX (e.g. 0.75,1.25), not '{text}'")
    return (low, high)


def non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _recipe_value(key):
    """The modern recipe's value of a 'section.name' setting, for help texts."""
    section, name = key.split(".")
    return RECIPES["modern"].get(section, {}).get(name, default_of(key))


def add_recipe_arguments(parser):
    """``--recipe`` and the options of its pieces; ``--keep-snapshots``."""
    parser.add_argument(
        "--recipe",
        dest="training.recipe",
        choices=tuple(RECIPES),
        help="The training recipe the options below start from: keras-retinanet's (the default: Adam, a plateau "
        "schedule, plain heads, smooth L1) or modern (GroupNorm heads, GIoU, AdamW, warm-up and cosine decay, a "
        "weight average, a gradient clip of 10; trainable BatchNorm from random weights). Each option given wins.",
    )
    parser.add_argument(
        "--head-norm",
        dest="model.head_norm",
        choices=HEAD_NORMS,
        help="Normalisation after each hidden convolution of both subnets: group (GroupNorm, 32 groups; the prior "
        f"initialisation kept) or none (default: {default_of('model.head_norm')}; modern: {_recipe_value('model.head_norm')}).",
    )
    parser.add_argument(
        "--box-loss",
        dest="training.box_loss",
        choices=BOX_LOSSES,
        help="Box regression loss: keras-retinanet's smooth L1 on the coded offsets, or 1 - GIoU of the decoded boxes "
        f"(default: {default_of('training.box_loss')}; modern: {_recipe_value('training.box_loss')}).",
    )
    parser.add_argument(
        "--optimizer",
        dest="training.optimizer",
        choices=OPTIMIZERS,
        help="adam, or adamw: decoupled weight decay (--weight-decay) of every weight but biases and norms "
        f"(default: {default_of('training.optimizer')}; modern: {_recipe_value('training.optimizer')}).",
    )
    parser.add_argument(
        "--weight-decay",
        dest="training.weight_decay",
        type=float,
        metavar="DECAY",
        help=f"AdamW's weight decay (default: {default_of('training.weight_decay')}; with --optimizer adamw).",
    )
    parser.add_argument(
        "--lr-schedule",
        dest="training.lr_schedule",
        choices=LR_SCHEDULES,
        help="plateau (keras-retinanet's: --lr lowered by --reduce-lr-factor when the loss stalls) or cosine (a "
        "linear warm-up over --warmup-steps, then cosine decay to 1%% of --lr at the last step) "
        f"(default: {default_of('training.lr_schedule')}; modern: {_recipe_value('training.lr_schedule')}).",
    )
    parser.add_argument(
        "--warmup-steps",
        dest="training.warmup_steps",
        type=non_negative_int,
        metavar="N",
        help=f"Warm-up steps of the cosine schedule (default: {default_of('training.warmup_steps')}; modern: "
        f"{_recipe_value('training.warmup_steps')}).",
    )
    parser.add_argument(
        "--ema",
        dest="training.ema",
        type=ema_decay,
        metavar="DECAY",
        help="Keep an exponential moving average of the weights with this decay (e.g. 0.9998), ramped up over "
        "--ema-warmup-steps; evaluation, the best model and every snapshot use the averaged weights ('none': off; "
        f"default: off; modern: {_recipe_value('training.ema')}).",
    )
    parser.add_argument(
        "--ema-warmup-steps",
        dest="training.ema_warmup_steps",
        type=int,
        metavar="N",
        help="The average's decay at step t is DECAY * (1 - exp(-t / N)) (ultralytics' ramp) "
        f"(default: {default_of('training.ema_warmup_steps')}; modern: {_recipe_value('training.ema_warmup_steps')}).",
    )
    parser.add_argument(
        "--top-down",
        dest="data.top_down",
        action="store_true",
        help="Augment top-down imagery (aerial, microscopy, documents): vertical flips and 90-degree turns too.",
    )
    parser.add_argument(
        "--scale-jitter",
        dest="data.scale_jitter",
        type=scale_range,
        metavar="MIN,MAX",
        help="Resize each training image by a random factor in MIN..MAX, then crop or pad it back to its size "
        "('none': off; default: off).",
    )
    parser.add_argument(
        "--keep-snapshots",
        dest="training.keep_snapshots",
        choices=KEEP_SNAPSHOTS,
        help="Which snapshots stay: all (every epoch's, keras-retinanet's), best (the best and the last epoch's) or "
        f"last (the last epoch's) (default: {default_of('training.keep_snapshots')}; demo: best).",
    )
