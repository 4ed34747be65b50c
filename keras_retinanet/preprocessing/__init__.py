"""Dataset readers and input pipelines.

* ``generator.Generator``: the shared base (grouping, augmentation, resizing, batching, anchor targets),
  a ``keras.utils.PyDataset``.
* Readers: ``csv_generator.CSVGenerator``, ``coco.CocoGenerator``, ``pascal_voc.PascalVocGenerator``,
  ``open_images.OpenImagesGenerator``, ``kitti.KittiGenerator``.
* ``pipeline.make_dataset``: a generator as a parallel, prefetching ``tf.data.Dataset`` for ``model.fit``.
"""
