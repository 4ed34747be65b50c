"""The folder the docs' examples run in: small files under the names the examples use.

    annotations.csv, val.csv, classes.csv, images/   the demo's shapes in keras-retinanet's CSV format: 8 training
                                                      and 4 validation images of 160 px (make_demo_dataset)
    big/train.csv, big/val.csv, big/images/           4 crowded 480 px images (20-30 objects of 16-40 px) for tiles
    photo.jpg, photos/, clip.mp4                      320x240 scenes of the shapes; a 6-frame video of them
    big_image.jpg                                     one of the crowded images
    keras_retinanet_mobilenet128_0.25.h5              a file keras-retinanet 1.0.0 wrote (tests/data)

The trained model the guides use (the README's demo run, ``snapshots/mobilenet128_0.5_demo/``, and ``model.keras``,
its inference model) is added by the docs test's session fixture, which runs the README's set-up block.
"""

import os
import shutil

import cv2
from keras_retinanet.readers.demo import make_demo_dataset

from helpers.docs_blocks import ROOT

KERAS_RETINANET_FILE = "keras_retinanet_mobilenet128_0.25.h5"


def prepare_workspace(folder: str) -> str:
    """Write the files into ``folder`` (created); returns it."""
    os.makedirs(folder, exist_ok=True)
    make_demo_dataset(folder, num_train=8, num_val=4, image_size=160, seed=3)
    os.replace(os.path.join(folder, "train.csv"), os.path.join(folder, "annotations.csv"))
    shutil.rmtree(os.path.join(folder, "annotations"))  # the COCO copy: the examples use the CSV files

    make_demo_dataset(os.path.join(folder, "big"), num_train=2, num_val=2, image_size=480, min_object_size=16,
                      max_object_size=40, min_objects=20, max_objects=30, seed=4)  # fmt: skip
    shutil.copy(os.path.join(folder, "big", "images", "val", "000000.jpg"), os.path.join(folder, "big_image.jpg"))

    scenes = make_demo_dataset(os.path.join(folder, ".scenes"), num_train=6, num_val=0, image_size=(240, 320),
                               min_objects=2, max_objects=4, seed=5)  # fmt: skip
    frames = sorted(os.path.join(scenes.train_images, name) for name in os.listdir(scenes.train_images))
    shutil.copy(frames[0], os.path.join(folder, "photo.jpg"))
    os.makedirs(os.path.join(folder, "photos"))
    for frame in frames[1:3]:
        shutil.copy(frame, os.path.join(folder, "photos", os.path.basename(frame)))
    writer = cv2.VideoWriter(os.path.join(folder, "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 5, (320, 240))
    for frame in frames:
        writer.write(cv2.imread(frame))
    writer.release()
    shutil.rmtree(scenes.root)

    shutil.copy(os.path.join(ROOT, "tests", "data", KERAS_RETINANET_FILE), os.path.join(folder, KERAS_RETINANET_FILE))
    return folder


def copy_workspace(source: str, destination: str) -> str:
    """A doc's own copy of the prepared folder: files hard-linked (the package writes files under a new name and
    renames them, so a doc never changes the shared ones), folders made anew."""

    def link(src, dst):
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, destination, copy_function=link)
    return destination
