"""Input pipeline throughput on one CPU core: 512 px images, 10 boxes each, augmentation on.

Measures images per second of
  * each stage of ``Generator.compute_input_output`` (load, visual effect, transform, resize+preprocess, targets),
  * the generator called batch by batch (``generator[i]``),
  * ``data.pipeline.make_dataset`` (tf.data, parallel map + prefetch),
  * optionally (``--model-steps N``) the training step of a ResNet50 RetinaNet on the same batches,
and writes them as JSON (default ``benchmarks/results/input_pipeline.json``, bench_shared.write_result).

Run: ``python benchmarks/bench_input_pipeline.py [--images 24] [--image-min-side 800] [--model-steps 0]``
"""

import argparse
import json
import os
import sys
import tempfile
import time

from bench_shared import write_result  # first: it reads the load average at the start

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _pin_to_one_core():
    if hasattr(os, "sched_setaffinity"):
        core = sorted(os.sched_getaffinity(0))[0]
        os.sched_setaffinity(0, {core})
        return core
    return None


def _write_dataset(root, num_images, size, boxes_per_image, rng):
    import cv2

    lines = []
    for index in range(num_images):
        image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        image = cv2.GaussianBlur(image, (9, 9), 3)  # photo-like content compresses like a photo
        name = f"{index:04d}.jpg"
        for _ in range(boxes_per_image):
            w, h = rng.integers(24, 160, size=2)
            x, y = rng.integers(0, size - w), rng.integers(0, size - h)
            cv2.rectangle(image, (int(x), int(y)), (int(x + w - 1), int(y + h - 1)), tuple(int(c) for c in rng.integers(0, 256, 3)), -1)
            lines.append(f"{name},{x},{y},{x + w},{y + h},c{rng.integers(0, 5)}\n")
        cv2.imwrite(os.path.join(root, name), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    with open(os.path.join(root, "annotations.csv"), "w") as file:
        file.writelines(lines)
    with open(os.path.join(root, "classes.csv"), "w") as file:
        file.writelines(f"c{i},{i}\n" for i in range(5))


def _rate(count, seconds):
    return count / seconds if seconds > 0 else float("inf")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--image-size", type=int, default=512)
    parser.add_argument("--boxes", type=int, default=10)
    parser.add_argument("--image-min-side", type=int, default=800, help="training resize (keras-retinanet default 800)")
    parser.add_argument("--image-max-side", type=int, default=1333)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--model-steps", type=int, default=0, help="also time this many ResNet50 training steps")
    parser.add_argument("--output", default=None, help="write the JSON here (default: results/input_pipeline.json)")
    args = parser.parse_args(argv)

    core = _pin_to_one_core()
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import cv2

    cv2.setNumThreads(1)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from keras_retinanet.preprocessing.csv_generator import CSVGenerator
    from keras_retinanet.data.pipeline import make_dataset
    from keras_retinanet.data.visual_effects import random_visual_effect_generator
    from keras_retinanet.data.affine import random_transform_generator

    results = {"core": core, "images": args.images, "image_size": args.image_size, "boxes_per_image": args.boxes,
               "image_min_side": args.image_min_side, "image_max_side": args.image_max_side, "batch_size": args.batch_size}
    with tempfile.TemporaryDirectory() as root:
        _write_dataset(root, args.images, args.image_size, args.boxes, np.random.default_rng(0))

        def make_generator():
            return CSVGenerator(
                os.path.join(root, "annotations.csv"), os.path.join(root, "classes.csv"),
                transform_generator=random_transform_generator(
                    prng=np.random.RandomState(0), min_rotation=-0.1, max_rotation=0.1, min_translation=(-0.1, -0.1),
                    max_translation=(0.1, 0.1), min_shear=-0.1, max_shear=0.1, min_scaling=(0.9, 0.9),
                    max_scaling=(1.1, 1.1), flip_x_chance=0.5, flip_y_chance=0.5),
                visual_effect_generator=random_visual_effect_generator(prng=np.random.RandomState(0)),
                batch_size=args.batch_size, image_min_side=args.image_min_side, image_max_side=args.image_max_side,
            )

        generator = make_generator()
        generator[0]  # warm up (anchor cache, imports)

        # Stages, image by image.
        stages = dict(load=0.0, visual_effect=0.0, transform=0.0, resize_preprocess=0.0, targets=0.0)
        for index in range(generator.size()):
            group = [index]
            t = time.perf_counter()
            images = generator.load_image_group(group)
            annotations = generator.load_annotations_group(group)
            images, annotations = generator.filter_annotations(images, annotations, group)
            stages["load"] += time.perf_counter() - t
            t = time.perf_counter()
            images, annotations = generator.random_visual_effect_group(images, annotations)
            stages["visual_effect"] += time.perf_counter() - t
            t = time.perf_counter()
            images, annotations = generator.random_transform_group(images, annotations)
            stages["transform"] += time.perf_counter() - t
            t = time.perf_counter()
            images, annotations = generator.preprocess_group(images, annotations)
            stages["resize_preprocess"] += time.perf_counter() - t
            t = time.perf_counter()
            generator.compute_inputs(images)
            generator.compute_targets(images, annotations)
            stages["targets"] += time.perf_counter() - t
        results["stage_ms_per_image"] = {k: 1000 * v / generator.size() for k, v in stages.items()}

        start = time.perf_counter()
        for index in range(len(generator)):
            generator[index]
        results["generator_images_per_s"] = _rate(len(generator) * args.batch_size, time.perf_counter() - start)

        dataset = make_dataset(make_generator())
        for _ in dataset.take(1):
            pass
        start = time.perf_counter()
        count = sum(int(batch[0].shape[0]) for batch in dataset)
        results["tf_data_images_per_s"] = _rate(count, time.perf_counter() - start)

        if args.model_steps:
            import keras

            from keras_retinanet import losses, models

            model = models.backbone("resnet50").retinanet(num_classes=generator.num_classes())
            model.compile(loss={"regression": losses.smooth_l1(), "classification": losses.focal()},
                          optimizer=keras.optimizers.Adam(1e-5, clipnorm=0.001))
            batches = [generator[i] for i in range(min(len(generator), args.model_steps + 1))]
            model.train_on_batch(batches[0][0], batches[0][1])  # trace
            start = time.perf_counter()
            for inputs, targets in batches[1:]:
                model.train_on_batch(inputs, targets)
            results["model_train_images_per_s"] = _rate((len(batches) - 1) * args.batch_size, time.perf_counter() - start)

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

    print(json.dumps(results, indent=2))
    write_result("input_pipeline", results, output=args.output)


if __name__ == "__main__":
    import numpy as np

    main()
