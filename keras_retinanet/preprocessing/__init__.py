"""keras-retinanet 1.0.0's ``preprocessing`` module names only, each re-exporting its readers from
:mod:`keras_retinanet.readers`, which holds the code (as :mod:`keras_retinanet.utils` does for its modules).

``generator.Generator``, ``csv_generator.CSVGenerator``, ``coco.CocoGenerator``, ``pascal_voc.PascalVocGenerator``,
``open_images.OpenImagesGenerator`` and ``kitti.KittiGenerator``.
"""
