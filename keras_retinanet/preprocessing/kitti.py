"""keras-retinanet's ``preprocessing.kitti``: the KITTI reader. The code is :mod:`keras_retinanet.readers.kitti`."""

from ..readers.kitti import KittiGenerator, kitti_classes

__all__ = ["KittiGenerator", "kitti_classes"]
