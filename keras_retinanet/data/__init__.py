"""Data: from image files and annotations to batches of network inputs and targets, for any dataset format.

The readers (their base class, each format's reader, the reader of a configured dataset and the demo dataset) are
:mod:`keras_retinanet.readers`, one floor up.

Modules, each with one job:

* ``image_io``: image files as uint8 BGR arrays, image sizes from file headers.
* ``input_transform``: ``InputTransform``, the one owner of resizing and the backbone's preprocessing.
* ``augmentation``, ``visual_effects``, ``affine``: ``Augmentation(image, annotations, rng)``, pure and seeded.
* ``boxes``: annotation boxes against their image (the one clipping rule).
* ``cropping``: ``TileCrop``, tiled training's random crops at native resolution with their boxes.
* ``batch_targets``: ``AnchorTargets``, anchors per input shape and their regression and classification targets.
* ``seeding``: random states keyed by (seed, position), so a batch does not depend on what ran before it.
* ``pipeline``: ``make_dataset``, a generator as a parallel, prefetching, resumable ``tf.data.Dataset``.
* ``diagnostics``: which annotations no anchor can learn.
"""
