"""keras-retinanet's dataset readers (the code they share lives in :mod:`keras_retinanet.data`).

* ``generator.Generator``: the base every reader subclasses; composes the reader interface
  (``data.reader.Reader``), augmentation (``data.augmentation.Augmentation``), input preparation
  (``data.input_transform.InputTransform``) and anchor targets (``data.targets.AnchorTargets``)
  into a ``keras.utils.PyDataset`` of batches.
* Readers: ``csv_generator.CSVGenerator``, ``coco.CocoGenerator``, ``pascal_voc.PascalVocGenerator``,
  ``open_images.OpenImagesGenerator``, ``kitti.KittiGenerator``.
* ``pipeline.make_dataset`` (now ``data.pipeline``): a generator as a parallel, prefetching ``tf.data.Dataset``.
"""
