"""A training run from its configuration, in the manner of detectron2's ``engine``.

    from keras_retinanet.config import RetinaNetConfig, DatasetConfig
    from keras_retinanet.engine.trainer import train

    config = RetinaNetConfig.build({"data.dataset": DatasetConfig(type="csv", annotations="train.csv", classes="classes.csv")})
    history = train(config)

Modules: ``run_setup`` (the run's configuration resolved once: native scale, resume, seed, batch-norm policy,
anchors; the readers), ``trainer`` (each piece built once from it: models, anchor targets, callbacks, the training
stream; ``model.fit``), ``initial_weights`` (--weights, ImageNet weights or
random), ``auto_anchors`` (--auto-anchors). The run's callbacks
(guard, evaluation, schedule, snapshots, the run folder's record) are :mod:`keras_retinanet.callbacks`'.
"""
