"""The dataset readers, in one package: the reader base, keras-retinanet's readers of each annotation format, the
reader a configuration names, and the demo dataset.

The per-image code the readers share (transforms, targets, the tf.data pipeline) lives in :mod:`keras_retinanet.data`,
one floor down. keras-retinanet's module names (``keras_retinanet.preprocessing.csv_generator`` and the others)
re-export these readers under its names.

* ``reader.Reader``: what a reader implements (``size``, ``image_path``, ``load_annotations``, the class names) and
  the loading every reader shares; ``text_files``: the readers' text files, with errors naming file and line.
* ``generator.Generator``: the base every reader subclasses; composes the reader interface (``reader.Reader``),
  augmentation (``data.augmentation.Augmentation``), input preparation (``data.input_transform.InputTransform``)
  and anchor targets (``data.batch_targets.AnchorTargets``) into a ``keras.utils.PyDataset`` of batches.
* Readers: ``csv_generator.CSVGenerator``, ``coco.CocoGenerator``, ``pascal_voc.PascalVocGenerator``,
  ``open_images.OpenImagesGenerator``, ``kitti.KittiGenerator``.
* ``from_config``: ``configured_generator``, the reader of a configured dataset and subset, sized for a backbone.
* ``demo``: ``make_demo_dataset``, synthetic shapes written as CSV and COCO files; ``ensure_demo_dataset`` caches them.
"""
