"""keras-retinanet's ``preprocessing.open_images``: the Open Images reader. The code is
:mod:`keras_retinanet.readers.open_images`."""

from ..readers.open_images import OpenImagesGenerator, generate_images_annotations, get_labels

__all__ = ["OpenImagesGenerator", "generate_images_annotations", "get_labels"]
