"""Datasets: keras-retinanet's readers of each annotation format, the reader a configuration names, the demo dataset.

The per-image code the readers share (transforms, targets, the tf.data pipeline) lives in :mod:`keras_retinanet.data`.

* ``generator.Generator``: the base every reader subclasses; composes the reader interface
  (``data.reader.Reader``), augmentation (``data.augmentation.Augmentation``), input preparation
  (``data.input_transform.InputTransform``) and anchor targets (``data.batch_targets.AnchorTargets``)
  into a ``keras.utils.PyDataset`` of batches.
* Readers: ``csv_generator.CSVGenerator``, ``coco.CocoGenerator``, ``pascal_voc.PascalVocGenerator``,
  ``open_images.OpenImagesGenerator``, ``kitti.KittiGenerator``.
* ``from_config``: ``configured_generator``, the reader of a configured dataset and subset, sized for a backbone.
* ``demo``: ``make_demo_dataset``, synthetic shapes written as CSV and COCO files; ``ensure_demo_dataset`` caches them.
"""
