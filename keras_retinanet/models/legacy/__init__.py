"""keras-retinanet's file format (Keras 2.x ``.h5``), in one place: reading it, rebuilding its model, writing it.

* ``reader``: what a file holds, read without building anything (:func:`read_legacy_file` -> :class:`LegacyModelInfo`:
  backbone, classes, anchors, pyramid, paddings, filter, the Adam of a snapshot).
* ``builder``: the Keras 3 model rebuilt from it with this package's builders, every weight assigned by layer name
  (:func:`load_legacy_model`; ``models.load_model`` calls it for these files).
* ``writer``: a Keras 3 RetinaNet written in the format, for tf.keras 2.x and keras-retinanet 1.0.0
  (:func:`save_keras2_h5`; ``retinanet-convert-model --format h5-keras2``).

It sits inside :mod:`keras_retinanet.models`, above the backbones and builders it uses, because
``models.load_model`` (keras-retinanet's name) must open these files.
"""
