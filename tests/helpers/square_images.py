"""An in-memory dataset for tests of the input pipeline and of distributed training."""

import cv2
import numpy as np

from keras_retinanet.preprocessing.generator import Generator

CLASS_NAMES = ("even", "odd")


class SquareImages(Generator):
    """Grey images of the given (height, width) shapes, each with one bright 32 px square; class = index % 2.

    The square sits near the centre, shifted right by ``index % 3`` px, so images of one shape differ too.
    Images are used at their own size (``no_resize`` unless given).
    """

    def __init__(self, shapes, **kwargs):
        self.shapes = shapes
        kwargs.setdefault("no_resize", True)
        super().__init__(**kwargs)

    def size(self):
        return len(self.shapes)

    def num_classes(self):
        return len(CLASS_NAMES)

    def has_label(self, label):
        return 0 <= label < len(CLASS_NAMES)

    def has_name(self, name):
        return name in CLASS_NAMES

    def name_to_label(self, name):
        return CLASS_NAMES.index(name)

    def label_to_name(self, label):
        return CLASS_NAMES[label]

    def image_path(self, image_index):
        return f"memory/{image_index}"

    def image_aspect_ratio(self, image_index):
        height, width = self.shapes[image_index]
        return width / height

    def box(self, image_index):
        """[x1, y1, x2, y2] of the image's square."""
        height, width = self.shapes[image_index]
        x1, y1 = (width - 32) // 2 + image_index % 3, (height - 32) // 2
        return [x1, y1, x1 + 32, y1 + 32]

    def load_image(self, image_index):
        image = np.full(self.shapes[image_index] + (3,), 40, np.uint8)
        x1, y1, x2, y2 = self.box(image_index)
        cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), (200, 210, 220), thickness=-1)
        return image

    def load_annotations(self, image_index):
        return {"labels": np.array([image_index % 2]), "bboxes": np.array([self.box(image_index)], np.float64)}
