"""Parameter counts of every backbone's RetinaNet (80 classes, default heads) and the
inference time of one 512x512 image for a few; writes a markdown table to stdout and the
figures to benchmarks/results/backbones.json (counts) or backbones_time.json (--time),
with bench_shared.write_result.

Run: python benchmarks/bench_backbones.py            (parameter counts of every backbone)
     python benchmarks/bench_backbones.py --time NAME ... (median of 5 inference times at 512x512)
"""
import os
import sys
import time

from bench_shared import median_seconds, write_result  # first: it reads the load average at the start

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_retinanet import models  # noqa: E402


def count(names):
    rows = {}
    for name in names:
        keras.utils.clear_session()
        start = time.time()
        model = models.backbone(name).retinanet(num_classes=80)
        build = time.time() - start
        backbone = models.backbone(name)
        trunk = backbone.backbone_layer_names(model)
        trunk_params = sum(int(np.prod(w.shape)) for n in trunk for w in model.get_layer(n).weights)
        rows[name] = {"parameters": int(model.count_params()), "trunk_parameters": trunk_params,
                      "build_s": round(build, 1)}
        print(f"| {name} | {model.count_params():,} | {trunk_params:,} | {build:.1f} |", flush=True)
    return rows


def timing(names, runs=5):
    image = np.random.default_rng(0).uniform(0, 255, (1, 512, 512, 3)).astype(np.float32)
    rows = {}
    for name in names:
        keras.utils.clear_session()
        backbone = models.backbone(name)
        model = models.convert_model(backbone.retinanet(num_classes=80))
        x = backbone.preprocess_image(image)
        seconds, times = median_seconds(lambda model=model, x=x: model.predict(x, verbose=0), runs)  # 2 warm-ups
        rows[name] = {"median_s": seconds, "runs": times, "fastest_s": min(times)}
        print(f"| {name} | {seconds * 1000:.0f} ms | {min(times) * 1000:.0f} ms |", flush=True)
    return rows


if __name__ == "__main__":
    if sys.argv[1:2] == ["--time"]:
        print("| backbone | median of 5 (512x512, batch 1, CPU) | fastest |\n|---|---|---|")
        write_result("backbones_time", {"image": [512, 512], "num_classes": 80, "rows": timing(sys.argv[2:])})
    else:
        names = sys.argv[1:] or models.backbone_names()
        print("| backbone | RetinaNet parameters (80 classes) | of which trunk | build s |\n|---|---|---|---|")
        write_result("backbones", {"num_classes": 80, "rows": count(names)})
